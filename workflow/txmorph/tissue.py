"""Tissue vs background: from the transcripts where a section has them, else from DAPI.

**From transcripts** (:func:`tissue_from_spots`, the default for sections with spots): tissue
is where transcripts are, background where there is no tissue. Every cell of measured tissue
yields transcripts of the panel; glass yields almost none. A pixel is background when it lies
in a disk of diameter ``gap_um`` (100 µm, about ten cell diameters) that holds (almost) no
transcript. The rule is absolute and in micrometres, so it draws the same line in every
section: it does not depend on the section's own density, so a nucleus-poor or
transcript-poor area of tissue stays tissue and a crop that lies wholly inside tissue is
wholly tissue (a relative cut, or a DAPI threshold, would call its sparse parts
"background"). Holes and specks smaller than ``min_area_um2`` are filled and removed, as for
DAPI.

**From DAPI** (:func:`tissue_mask`), for sections without spots and for the input checks:

Principle: tissue is where nuclei are *dense*, not where a pixel is bright. Single nuclei are
bright dots separated by dark cytoplasm/stroma, so the image is first turned into a local
nuclear density (block averaging, then a Gaussian over a few nucleus diameters) and only then
thresholded (Otsu). Every length is given in micrometres and converted with ``pixel_size_um``,
so the same defaults work for a 0.2 um/pixel Xenium image and a 1 um/pixel slide scan: a
nucleus is ~5-10 um whatever the pixel size.

Speed and memory: the morphology only needs a resolution of a fraction of the smoothing scale,
so all the work happens on a block-averaged copy whose pixels are ~``smoothing_um / 3`` wide (and
never more than ``MAX_WORK_SIDE`` per side); the mask is returned at full resolution by nearest
neighbour. The full image is read once, in strips, and never converted to float as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import fftconvolve
from skimage.filters import threshold_otsu
from skimage.morphology import disk

from txmorph.errors import InputError

# Working pixels per smoothing sigma: enough to resolve the Gaussian, few enough to be fast.
PIXELS_PER_SIGMA = 3.0
# The working copy is at most this many pixels per side (bounds time/memory for huge images).
MAX_WORK_SIDE = 4096
# Full-resolution pixels converted to float at once while block-averaging.
STRIP_PIXELS = 1 << 24
# Robust range of the working image; the dim end is the background level.
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.5
# Relative contrast (robust range / high level) below which the image is treated as featureless.
MIN_CONTRAST = 1e-3


def tissue_mask(
    image: np.ndarray,
    pixel_size_um: float,
    smoothing_um: float = 10.0,
    min_area_um2: float = 10000.0,
    *,
    max_hole_um2: float | None = None,
    closing_um: float | None = None,
) -> np.ndarray:
    """Boolean mask (same shape as ``image``) of the tissue in a 2-D nuclei image.

    Steps: block-average to the working resolution; scale by the 1st/99.5th percentiles;
    Gaussian smoothing; square root (compresses bright clusters of nuclei so that sparse,
    dim tissue is not thrown in with the background by Otsu); Otsu threshold; closing; fill
    small holes; remove small objects; nearest-neighbour back to full resolution.

    The border lies about half a ``smoothing_um`` outside the outermost nucleus centres (where
    their cells' cytoplasm ends): the price of the square root, which keeps sparse tissue.

    An image without contrast (constant, or a range below ``MIN_CONTRAST`` of its level) has no
    nuclei to tell tissue from background: the result is all background (all False).

    Parameters
    ----------
    image : np.ndarray
        2-D nuclei (DAPI) image.
    pixel_size_um : float
        Micrometres per image pixel (> 0).
    smoothing_um : float
        Gaussian sigma of the nuclear-density estimate, in µm: a few nucleus diameters, so
        that the gaps between nuclei count as tissue.
    min_area_um2 : float
        Tissue pieces smaller than this (µm²) are dropped (debris, stray nuclei).
    max_hole_um2 : float or None
        Holes smaller than this (µm²) inside tissue are filled; larger ones (lumens, tears,
        vessels) stay background. None: ``min_area_um2``.
    closing_um : float or None
        Radius (µm) of the morphological closing that bridges thin gaps and smooths the
        border. None: ``smoothing_um``.

    Returns
    -------
    np.ndarray
        Boolean mask of the shape of ``image``; True is tissue.

    Raises
    ------
    ValueError
        When ``image`` is not 2-D.
    InputError
        When a length or area is not a valid number.
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    for name, value in (("pixel_size_um", pixel_size_um), ("smoothing_um", smoothing_um)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"config.yaml: '{name}' is {value!r}; it must be a positive number.")
    if not (math.isfinite(min_area_um2) and min_area_um2 >= 0):
        raise InputError(f"config.yaml: 'min_area_um2' is {min_area_um2!r}; it must be 0 or more.")
    height, width = image.shape
    if image.size == 0:
        return np.zeros(image.shape, dtype=bool)
    max_hole_um2 = min_area_um2 if max_hole_um2 is None else max_hole_um2
    closing_um = smoothing_um if closing_um is None else closing_um

    factor = work_factor(image.shape, pixel_size_um, smoothing_um)
    work = block_mean(image, factor)
    work_um = pixel_size_um * factor
    small = _work_mask(work, work_um, smoothing_um, min_area_um2, max_hole_um2, closing_um)
    return upsample_nearest(small, factor, (height, width))


def work_factor(shape: tuple[int, ...], pixel_size_um: float, smoothing_um: float) -> int:
    """Integer block size so that a working pixel is ~smoothing/3 and the copy stays small.

    Parameters
    ----------
    shape : tuple[int, ...]
        Shape of the full-resolution image.
    pixel_size_um : float
        Micrometres per image pixel.
    smoothing_um : float
        Gaussian sigma of the density estimate, in µm.

    Returns
    -------
    int
        Block size (>= 1), large enough that no side of the copy exceeds ``MAX_WORK_SIDE``.
    """
    by_scale = int(smoothing_um / (PIXELS_PER_SIGMA * pixel_size_um))
    by_size = math.ceil(max(shape) / MAX_WORK_SIDE)
    return max(1, by_scale, by_size)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks (float32); edge blocks average what they have.

    Done in strips of rows so that a 20000 x 20000 uint16 image is never copied to float whole.

    Parameters
    ----------
    image : np.ndarray
        (H, W) image.
    factor : int
        Block side, in pixels.

    Returns
    -------
    np.ndarray
        float32 ``(ceil(H/factor), ceil(W/factor))`` block means.
    """
    if factor == 1:
        return image.astype(np.float32)
    height, width = image.shape
    out_h, out_w = math.ceil(height / factor), math.ceil(width / factor)
    full_w = (width // factor) * factor
    out = np.empty((out_h, out_w), dtype=np.float32)
    rows_per_strip = max(1, STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows_per_strip):
        strip = image[top : top + rows_per_strip].astype(np.float32)
        n = strip.shape[0]
        n_full = (n // factor) * factor
        o = top // factor
        if n_full:
            body = strip[:n_full].reshape(n_full // factor, factor, width).sum(axis=1)
            _finish_rows(body, out[o : o + n_full // factor], factor, factor, full_w)
        if n_full < n:  # last, partial block row
            rest = strip[n_full:].sum(axis=0, keepdims=True)
            last = o + n_full // factor
            _finish_rows(rest, out[last : last + 1], factor, n - n_full, full_w)
    return out


def _finish_rows(rows: np.ndarray, out: np.ndarray, factor: int, n_rows: int, full_w: int) -> None:
    """Sum ``rows`` (already summed over ``n_rows`` image rows) over column blocks, then average."""
    width = rows.shape[1]
    k = full_w // factor
    if k:
        out[:, :k] = rows[:, :full_w].reshape(rows.shape[0], k, factor).sum(axis=2) / (n_rows * factor)
    if full_w < width:
        out[:, k] = rows[:, full_w:].sum(axis=1) / (n_rows * (width - full_w))


def upsample_nearest(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Each working pixel back to its ``factor x factor`` block of the full-resolution grid.

    Parameters
    ----------
    small : np.ndarray
        The working-resolution image.
    factor : int
        Block side, in full-resolution pixels.
    shape : tuple[int, int]
        Full-resolution (rows, cols).

    Returns
    -------
    np.ndarray
        The image at ``shape``, of the dtype of ``small`` (a new array).
    """
    if factor == 1:
        return small[: shape[0], : shape[1]].copy()
    rows = np.minimum(np.arange(shape[0]) // factor, small.shape[0] - 1)
    cols = np.minimum(np.arange(shape[1]) // factor, small.shape[1] - 1)
    return small[rows][:, cols]


def _work_mask(
    work: np.ndarray,
    work_um: float,
    smoothing_um: float,
    min_area_um2: float,
    max_hole_um2: float,
    closing_um: float,
) -> np.ndarray:
    """The mask at the working resolution (``work_um`` micrometres per pixel)."""
    low, high = np.percentile(work, [LOW_PERCENTILE, HIGH_PERCENTILE])
    scale = max(abs(float(high)), abs(float(low)), 1e-12)
    if not np.isfinite([low, high]).all() or (high - low) <= MIN_CONTRAST * scale:
        return np.zeros(work.shape, dtype=bool)
    scaled = np.clip((work - np.float32(low)) / np.float32(high - low), 0.0, 1.0)
    density = ndi.gaussian_filter(scaled, sigma=smoothing_um / work_um, mode="reflect")
    value = np.sqrt(density)
    if float(value.max()) - float(value.min()) <= 1e-6:
        return np.zeros(work.shape, dtype=bool)
    mask = value > threshold_otsu(value)

    radius = int(round(closing_um / work_um))
    if radius >= 1:
        # Pad so that the closing does not erode tissue touching the image border.
        footprint = disk(radius)
        padded = np.pad(mask, radius, mode="edge")
        mask = ndi.binary_closing(padded, structure=footprint)[radius:-radius, radius:-radius]
    pixel_area = work_um * work_um
    mask = _fill_small_holes(mask, max_hole_um2 / pixel_area)
    return _remove_small_objects(mask, min_area_um2 / pixel_area)


def _remove_small_objects(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    """Drop 8-connected components with fewer than ``min_pixels`` pixels."""
    if min_pixels <= 1 or not mask.any():
        return mask
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def _fill_small_holes(mask: np.ndarray, max_pixels: float) -> np.ndarray:
    """Fill background components (4-connected) smaller than ``max_pixels`` pixels.

    Background touching the image border is never a hole, whatever its size.
    """
    if max_pixels <= 1:
        return mask
    labels, n = ndi.label(~mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    fill = sizes < max_pixels
    fill[0] = False
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill[border] = False
    return mask | fill[labels]


#: Working pixels per ``gap_um`` of the transcript-gap rule (a 100 µm gap: 5 µm pixels).
GAP_PIXELS = 20
#: A disk holding at most this many transcripts counts as empty: stray detections on glass
#: (a few per disk) must not make glass tissue, while tissue holds tens to thousands per disk.
GAP_STRAY_SPOTS = 2


def tissue_from_spots(
    xy: np.ndarray,
    shape: tuple[int, int],
    pixel_size_um: float,
    gap_um: float = 100.0,
    min_area_um2: float = 10000.0,
) -> np.ndarray:
    """Boolean tissue mask of ``shape`` from spot positions ``xy`` ((N, 2) as (x, y) pixels).

    Background is where there is no tissue: every pixel covered by a disk of diameter
    ``gap_um`` that holds at most ``GAP_STRAY_SPOTS`` transcripts; all else is tissue. The
    rule is in micrometres and absolute, so it means the same in every section whatever its
    transcript density or panel: a nucleus-poor area of tissue (sparse transcripts, but
    transcripts) stays tissue, a crop wholly inside tissue is wholly tissue, and the border
    lies at the outermost transcripts (the disks reach up to them). Holes and pieces smaller
    than ``min_area_um2`` are then filled and removed. No spots: all background.

    Parameters
    ----------
    xy : np.ndarray
        (N, 2) (x, y) spot positions in pixels; those outside the image are ignored.
    shape : tuple[int, int]
        (rows, cols) of the image.
    pixel_size_um : float
        Micrometres per image pixel (> 0).
    gap_um : float
        Diameter (µm, > 0) of the transcript-free disks that make background.
    min_area_um2 : float
        Holes and tissue pieces smaller than this (µm²) are filled and removed.

    Returns
    -------
    np.ndarray
        Boolean (rows, cols) mask; True is tissue.

    Raises
    ------
    InputError
        When a setting is not a valid number.
    """
    for name, value in (("pixel_size_um", pixel_size_um), ("gap_um", gap_um)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"config: '{name}' is {value!r}; it must be a positive number.")
    height, width = int(shape[0]), int(shape[1])
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    factor = max(1, int(gap_um / (GAP_PIXELS * pixel_size_um)),
                 math.ceil(max(height, width) / MAX_WORK_SIDE))
    work_shape = (-(-height // factor), -(-width // factor))
    cols, rows = np.floor(xy[:, 0]), np.floor(xy[:, 1])
    keep = (np.isfinite(rows) & np.isfinite(cols) & (rows >= 0) & (rows < height)
            & (cols >= 0) & (cols < width))
    if not keep.any():
        return np.zeros((height, width), dtype=bool)
    index = (rows[keep].astype(np.int64) // factor) * work_shape[1] + cols[keep].astype(np.int64) // factor
    counts = np.bincount(index, minlength=work_shape[0] * work_shape[1]).reshape(work_shape)
    work_um = pixel_size_um * factor
    radius = 0.5 * gap_um / work_um  # working pixels
    footprint = disk(max(1, int(round(radius)))).astype(np.float32)
    # Transcripts in the disk around every working pixel (outside the image holds none).
    in_disk = fftconvolve(counts.astype(np.float32), footprint, mode="same")
    empty_centres = in_disk < GAP_STRAY_SPOTS + 0.5
    if empty_centres.any():
        background = ndi.distance_transform_edt(~empty_centres) <= radius
    else:
        background = np.zeros(work_shape, dtype=bool)
    pixel_area = work_um * work_um
    # Background pieces smaller than min_area_um2 are filled even where they touch the image
    # border: glass is empty over large areas, a tissue's lumen or tear rarely is.
    small = _remove_small_objects(background, min_area_um2 / pixel_area)
    small = _remove_small_objects(~small, min_area_um2 / pixel_area)
    return upsample_nearest(small, factor, (height, width))


def section_tissue(
    source: str,
    dapi: np.ndarray,
    xy: np.ndarray | None,
    pixel_size_um: float,
    gap_um: float = 100.0,
    min_area_um2: float = 10000.0,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """The tissue a section's later rules use, as config ``tissue_mask.source`` says.

    ``spots``: from the transcripts (:func:`tissue_from_spots`); ``dapi``: the DAPI mask;
    ``spots_and_dapi``: where both are tissue. A section without spots (``xy`` None) takes
    the DAPI mask whatever the source. Rule tissue_mask writes this mask; rule
    gene_candidates makes the same one.

    Parameters
    ----------
    source : str
        ``spots``, ``dapi`` or ``spots_and_dapi``.
    dapi : np.ndarray
        Boolean (rows, cols) DAPI tissue mask (:func:`tissue_mask`).
    xy : np.ndarray or None
        (N, 2) (x, y) spot positions in pixels, or None for a section without spots.
    pixel_size_um : float
        Micrometres per image pixel.
    gap_um, min_area_um2 : float
        The settings of :func:`tissue_from_spots`.
    log : Callable[[str], None] or None
        Receives what each mask covers.

    Returns
    -------
    np.ndarray
        Boolean (rows, cols) mask; True is tissue.
    """
    say = log or (lambda message: None)
    if source == "dapi" or xy is None:
        say("tissue from DAPI: %.1f%% of the image" % (100 * dapi.mean()))
        return dapi
    mask = tissue_from_spots(xy, dapi.shape, pixel_size_um, gap_um=gap_um,
                             min_area_um2=min_area_um2)
    say("tissue from %d spots covers %.1f%% of the image (background: transcript-free gaps of "
        "%.3g µm); DAPI: %.1f%%" % (len(xy), 100 * mask.mean(), gap_um, 100 * dapi.mean()))
    if source == "spots_and_dapi":
        mask &= dapi
        say("where DAPI agrees: %.1f%% of the image" % (100 * mask.mean()))
    return mask
