"""Reference ("truth") regions of a section, from its spots, by one definition per class.

The models never see these: they are painted from the DAPI image alone and then compared
with regions derived from the transcriptome of the test section. A class must mean the same
thing in every section, so the quantity thresholded compares between sections and the
threshold is fitted once, on the pooled training sections, then applied unchanged to every
section (training and test alike; it is kept with the models, so reused models apply it too):

1. **Share of local transcripts.** For each class (its genes' spots) and for all spots of
   the section (every gene), a Gaussian kernel density of bandwidth ``sigma_px`` on a coarse
   grid (:func:`spot_density`); the class's *share* is their ratio: the fraction of the
   transcripts around a pixel that are the class's. A share does not depend on the section's
   detection efficiency, panel size or cell density, and needs no edge correction (both
   densities lose the same kernel mass at the tissue border). Where fewer than about one
   transcript falls within the kernel the denominator is floored at that (no evidence, no
   share).
2. **Threshold, fitted once** (:func:`fit_thresholds`, ``rule``):

   - ``"otsu"`` (default, parameter-free): Otsu's threshold on the class's share over the
     tissue of all training sections pooled. Otsu splits a two-mode histogram wherever the
     gap is, whatever the area of each mode, so it separates expressing from non-expressing
     tissue for small and large regions alike; it is applied to the *linear* share (a
     region's blurred edge falls from the inside level to the outside level, and a linear
     threshold between the two finds the border half-way down, a log one drifts down the
     tail). Values above the 99.9th percentile are clipped before the histogram so one hot
     spot cannot stretch it. A class whose share is flat (no contrast) gets no region.
   - ``"enrichment"``: share >= ``enrichment`` x the class's share of all transcripts in the
     pooled training tissue (e.g. 2: twice as frequent among the local transcripts as
     overall).

   A test section then holds as much of a class as passes the training sections' threshold:
   half of it, all of it or none (a finding, scored as such), never a region re-drawn on the
   test section's own statistics.
3. **Overlaps.** A pixel above threshold for several classes goes to the one whose share is
   the highest multiple of its threshold (ties: the earlier class).
4. **Specks.** Connected pieces (8-connectivity) smaller than ``pi * (2 sigma)^2`` px (a disk of
   radius 2 sigma) are dropped back to general tissue, so isolated off-target spots do not
   make regions.

A class without spots in the tissue has an empty region (and no error): absence is a valid
observation for a test section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

RULES = ("otsu", "enrichment")
#: Otsu's histogram ignores the top 0.1 % of enrichment values (clipped, see docstring).
OTSU_CLIP_PERCENTILE = 99.9
#: Otsu's histogram uses at most this many tissue pixels (an even stride through them).
OTSU_MAX_SAMPLES = 2_000_000
#: What a class's threshold is on: its share of local transcripts, or its spots per µm².
QUANTITIES = ("share", "density")
#: Smallest kernel fraction inside tissue used for the density's edge correction (5x boost).
MIN_KERNEL_FRACTION = 0.2
#: Coarse bins count as tissue when at least this fraction of their pixels is (for fitting).
MIN_BIN_TISSUE = 0.5
#: The coarse grid's bin is about sigma / BIN_PER_SIGMA pixels (see ``spot_density``).
BIN_PER_SIGMA = 4.0


# --------------------------------------------------------------------------------------
# Kernel density on a coarse grid
# --------------------------------------------------------------------------------------


def _bin_factor(sigma_px: float) -> int:
    """Coarse-grid bin side: ~ sigma/4 px, so the kernel still spans >= 4 bins per sigma.

    Binning adds the variance of a uniform box (b^2 / 12 = sigma^2 / 192), i.e. the kernel
    widens by < 0.3 %; bilinear upsampling of a function that smooth is just as exact.
    """
    return max(1, int(sigma_px // BIN_PER_SIGMA))


def _coarse_shape(shape: tuple[int, int], b: int) -> tuple[int, int]:
    return (-(-shape[0] // b), -(-shape[1] // b))


def _coarse_counts(xy: np.ndarray, shape: tuple[int, int], b: int) -> np.ndarray:
    """Spot counts per b x b bin (float32); spots outside the image are ignored."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    cols = np.floor(xy[:, 0])
    rows = np.floor(xy[:, 1])
    keep = (
        np.isfinite(rows) & np.isfinite(cols)
        & (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    )
    cshape = _coarse_shape(shape, b)
    r = rows[keep].astype(np.int64) // b
    c = cols[keep].astype(np.int64) // b
    counts = np.bincount(r * cshape[1] + c, minlength=cshape[0] * cshape[1])
    return counts.reshape(cshape).astype(np.float32)


def _coarse_fraction(mask: np.ndarray, b: int) -> np.ndarray:
    """Fraction of each b x b bin covered by ``mask`` (float32; bins past the edge pad 0)."""
    cshape = _coarse_shape(mask.shape, b)
    if b == 1:
        return mask.astype(np.float32)
    padded = np.zeros((cshape[0] * b, cshape[1] * b), dtype=np.float32)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(cshape[0], b, cshape[1], b).mean(axis=(1, 3), dtype=np.float32)


def _smooth(coarse: np.ndarray, sigma_px: float, b: int) -> np.ndarray:
    """Gaussian filter on the coarse grid; outside the image counts as empty (mode constant)."""
    return ndimage.gaussian_filter(coarse, sigma=sigma_px / b, mode="constant", cval=0.0)


def _axis_weights(n_full: int, n_coarse: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear weights along one axis: full pixel p sits at coarse coordinate (p+0.5)/b-0.5."""
    pos = (np.arange(n_full, dtype=np.float64) + 0.5) / b - 0.5
    pos = np.clip(pos, 0.0, n_coarse - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_coarse - 1)
    w = (pos - lo).astype(np.float32)
    return lo, hi, w


def _upsample(coarse: np.ndarray, b: int, shape: tuple[int, int]) -> np.ndarray:
    """Separable bilinear upsampling of a coarse grid back to ``shape`` (float32).

    Done axis by axis so the only full-size temporaries are float32 images.
    """
    if b == 1:
        return coarse.astype(np.float32, copy=False)
    lo, hi, w = _axis_weights(shape[0], coarse.shape[0], b)
    rows = coarse[lo] * (1 - w)[:, None] + coarse[hi] * w[:, None]  # (H, w_coarse)
    lo, hi, w = _axis_weights(shape[1], coarse.shape[1], b)
    out = rows[:, lo] * (1 - w)[None, :]
    out += rows[:, hi] * w[None, :]
    return out.astype(np.float32, copy=False)


def spot_density(xy: np.ndarray, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian kernel density of spots, in spots per px^2, as a float32 ``shape`` image.

    ``xy`` is ``(N, 2)`` as ``(x, y)`` = (column, row) pixels (CONVENTIONS); a spot counts in
    pixel ``(floor(y), floor(x))``. Spots outside the image or with non-finite coordinates
    are ignored (clipping them onto the border would fake a dense rim). The kernel mass that
    falls outside the image is lost (plain kernel density, ``mode="constant"``).

    Why a coarse grid: the density is smooth at scale sigma, so it is binned into bins of
    ``b = max(1, floor(sigma / 4))`` px, filtered there with sigma / b, divided by b^2 and
    bilinearly upsampled. Cost and memory are O(H W / b^2) for the filter plus the float32
    output; the integral is preserved to within the upsampling error (< 1 % for b <= sigma/4).

    Parameters
    ----------
    xy : np.ndarray
        (N, 2) (x, y) spot positions, in pixels.
    shape : tuple[int, int]
        (rows, cols) of the image.
    sigma_px : float
        Kernel sigma, in pixels (> 0).

    Returns
    -------
    np.ndarray
        float32 ``shape`` density, in spots per px^2.

    Raises
    ------
    ValueError
        When ``sigma_px`` is not positive.
    """
    if sigma_px <= 0:
        raise ValueError(f"sigma_px must be > 0, got {sigma_px}")
    shape = (int(shape[0]), int(shape[1]))
    b = _bin_factor(sigma_px)
    coarse = _smooth(_coarse_counts(xy, shape, b), sigma_px, b) / np.float32(b * b)
    return _upsample(coarse, b, shape)


# --------------------------------------------------------------------------------------
# Regions and labels
# --------------------------------------------------------------------------------------


def min_region_area_px(sigma_px: float) -> float:
    """Default speck size: area of a disk of radius 2 sigma (see module docstring).

    Parameters
    ----------
    sigma_px : float
        Kernel density sigma, in pixels.

    Returns
    -------
    float
        ``pi (2 sigma)^2``, in pixels.
    """
    return math.pi * (2.0 * sigma_px) ** 2


def _in_mask(xy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The spots whose pixel lies inside ``mask`` ((x, y) rows kept)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    cols = np.floor(xy[:, 0])
    rows = np.floor(xy[:, 1])
    ok = (
        np.isfinite(rows) & np.isfinite(cols)
        & (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    )
    idx = np.flatnonzero(ok)
    inside = mask[rows[idx].astype(np.int64), cols[idx].astype(np.int64)]
    return xy[idx[inside]]


def _otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (1-D), 256-bin histogram; +inf if there is no contrast."""
    if values.size > OTSU_MAX_SAMPLES:
        values = values[:: -(-values.size // OTSU_MAX_SAMPLES)]
    lo = float(values.min())
    hi = float(np.percentile(values, OTSU_CLIP_PERCENTILE))
    if not hi - lo > 1e-6 * max(1.0, abs(hi)):
        # No contrast at all: nothing is expressed more here than there.
        return math.inf
    counts, edges = np.histogram(np.minimum(values, hi), bins=256, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    return float(threshold_otsu(hist=(counts, centres)))


def _remove_specks(region: np.ndarray, min_area_px: float) -> np.ndarray:
    """Drop 8-connected pieces smaller than ``min_area_px`` (in place, returned)."""
    if min_area_px <= 1 or not region.any():
        return region
    labels, n = ndimage.label(region, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return region
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes < min_area_px
    small[0] = False
    region[small[labels]] = False
    return region


def _coarse_values(
    tissue_mask: np.ndarray,
    spots_by_class: Mapping[str, np.ndarray],
    all_xy: np.ndarray,
    sigma_px: float,
    quantity: str = "share",
    pixel_size_um: float = 1.0,
) -> tuple[int, dict[str, np.ndarray]]:
    """(bin side b, {class: its quantity on the coarse grid}); only spots in the tissue count.

    ``share``: the class's kernel density over that of all spots. ``density``: the class's
    kernel density in spots per µm², edge-corrected (divided by the kernel's fraction inside
    the tissue, at most a 1 / ``MIN_KERNEL_FRACTION`` boost).
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    mask = tissue_mask.astype(bool, copy=False)
    b = _bin_factor(sigma_px)
    if quantity == "share":
        total = _smooth(_coarse_counts(_in_mask(all_xy, mask), mask.shape, b), sigma_px, b)
        # At least about one transcript within the kernel (1 / (2 pi sigma^2) per px^2, in
        # bin counts): a share needs transcripts to be a share of.
        floor = np.float32(b * b / (2.0 * math.pi * sigma_px**2))
        np.maximum(total, floor, out=total)
    else:
        total = _smooth(_coarse_fraction(mask, b), sigma_px, b)
        np.maximum(total, np.float32(MIN_KERNEL_FRACTION), out=total)
        total *= np.float32(b * b * pixel_size_um**2)  # bin counts -> spots per µm²
    values = {}
    for name, xy in spots_by_class.items():
        own = _smooth(_coarse_counts(_in_mask(xy, mask), mask.shape, b), sigma_px, b)
        values[name] = (own / total).astype(np.float32)
    return b, values


def coarse_shares(
    tissue_mask: np.ndarray,
    spots_by_class: Mapping[str, np.ndarray],
    all_xy: np.ndarray,
    sigma_px: float,
) -> tuple[int, dict[str, np.ndarray]]:
    """Each class's share of the local transcripts on the coarse grid (bin side, shares).

    As :func:`local_shares` before its upsampling: bins of ``b`` px (about sigma / 4), for
    callers that decide per bin (the niche partition, ``txmorph.niches``).

    Parameters
    ----------
    tissue_mask : np.ndarray
        2-D boolean tissue mask (H, W); only spots inside it count.
    spots_by_class : Mapping[str, np.ndarray]
        Per class, its (N, 2) (x, y) spot pixels.
    all_xy : np.ndarray
        (N, 2) (x, y) pixels of every spot of the section.
    sigma_px : float
        Kernel sigma, in pixels (> 0).

    Returns
    -------
    tuple[int, dict[str, np.ndarray]]
        The bin side ``b`` in pixels, and per class its float32 share on the
        ``ceil(H / b) x ceil(W / b)`` grid.
    """
    mask = _check(tissue_mask, sigma_px)
    return _coarse_values(mask, spots_by_class, all_xy, sigma_px)


def remove_specks(region: np.ndarray, min_area_px: float) -> np.ndarray:
    """Drop 8-connected pieces of a boolean ``region`` smaller than ``min_area_px`` (in place).

    Parameters
    ----------
    region : np.ndarray
        2-D boolean image, modified.
    min_area_px : float
        Smallest piece kept, in pixels of ``region``.

    Returns
    -------
    np.ndarray
        ``region``.
    """
    return _remove_specks(region, min_area_px)


def local_shares(
    tissue_mask: np.ndarray,
    spots_by_class: Mapping[str, np.ndarray],
    all_xy: np.ndarray,
    sigma_px: float,
) -> dict[str, np.ndarray]:
    """Each class's share of the local transcripts, full resolution (float32 ``(H, W)``).

    Parameters
    ----------
    tissue_mask : np.ndarray
        2-D boolean tissue mask (H, W); only spots inside it count.
    spots_by_class : Mapping[str, np.ndarray]
        Per class, its (N, 2) (x, y) spot pixels.
    all_xy : np.ndarray
        (N, 2) (x, y) pixels of every spot of the section (all genes).
    sigma_px : float
        Kernel sigma, in pixels (> 0).

    Returns
    -------
    dict[str, np.ndarray]
        Per class, its share (0..1) of the kernel density of all spots.
    """
    b, shares = coarse_shares(tissue_mask, spots_by_class, all_xy, sigma_px)
    return {name: _upsample(share, b, np.shape(tissue_mask)) for name, share in shares.items()}


def _check(tissue_mask: np.ndarray, sigma_px: float) -> np.ndarray:
    mask = np.asarray(tissue_mask)
    if mask.ndim != 2:
        raise ValueError(f"tissue_mask must be 2-D, got shape {mask.shape}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be > 0, got {sigma_px}")
    return mask.astype(bool, copy=False)


def fit_thresholds(
    sections: Sequence[tuple],
    rule: str = "otsu",
    enrichment: float = 2.0,
    quantity: str = "share",
    areas: Sequence[np.ndarray | None] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Each class's threshold on its quantity, fitted once on the pooled training sections.

    Parameters
    ----------
    sections : Sequence[tuple]
        Per training section ``(tissue_mask, spots_by_class, all_xy, sigma_px)`` or
        ``(..., pixel_size_um)`` (needed for ``quantity="density"``); every section names
        the same classes in the same order.
    rule : str
        ``"otsu"`` (Otsu on the pooled values over the tissue) or ``"enrichment"``
        (``enrichment`` x the class's pooled mean: its share of all tissue transcripts, or
        its spots per µm² of tissue).
    enrichment : float
        The multiple of the ``"enrichment"`` rule (> 0).
    quantity : str
        ``"share"`` (of local transcripts) or ``"density"`` (spots per µm²).
    areas : Sequence[np.ndarray or None] or None
        Per section, the (H, W) bool pixels that are the section's (``txmorph.blocks``; None:
        all): the values are computed from all of its tissue's spots, but only those inside
        the area are pooled and counted.

    Returns
    -------
    tuple[dict[str, float], dict[str, float]]
        Per class, its threshold on ``quantity`` (``inf`` where the training sections give
        no contrast: no spots, or flat values; such a class has no region anywhere), and its
        share of all transcripts in the pooled training tissue.

    Raises
    ------
    ValueError
        When ``rule`` or ``enrichment`` is invalid or no section is given.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule == "enrichment" and not enrichment > 0:
        raise ValueError(f"enrichment must be > 0, got {enrichment}")
    if not sections:
        raise ValueError("no training section to fit the class thresholds on")
    names = list(sections[0][1])
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in names}
    own_spots = dict.fromkeys(names, 0)
    all_spots = 0
    tissue_area_um2 = 0.0
    areas = list(areas) if areas is not None else [None] * len(sections)
    if len(areas) != len(sections):
        raise ValueError(f"{len(areas)} areas for {len(sections)} sections")
    for (tissue_mask, spots_by_class, all_xy, sigma_px, *pixel_size), area in zip(sections,
                                                                                  areas):
        mask = _check(tissue_mask, sigma_px)
        counted = mask if area is None else mask & np.asarray(area, dtype=bool)
        if not counted.any():
            continue
        pixel_size_um = float(pixel_size[0]) if pixel_size else 1.0
        tissue_area_um2 += float(counted.sum()) * pixel_size_um**2
        b, values = _coarse_values(mask, spots_by_class, all_xy, sigma_px, quantity,
                                   pixel_size_um)
        inside = _coarse_fraction(counted, b) >= MIN_BIN_TISSUE
        all_spots += len(_in_mask(all_xy, counted))
        for name in names:
            pooled[name].append(values[name][inside])
            own_spots[name] += len(_in_mask(spots_by_class[name], counted))
    thresholds, training_shares = {}, {}
    for name in names:
        training_shares[name] = own_spots[name] / all_spots if all_spots else 0.0
        values = np.concatenate(pooled[name]) if pooled[name] else np.zeros(0, np.float32)
        if own_spots[name] == 0 or values.size == 0:
            thresholds[name] = math.inf
        elif rule == "otsu":
            thresholds[name] = _otsu_threshold(values)
        elif quantity == "share":
            thresholds[name] = float(enrichment) * training_shares[name]
        else:  # enrichment over the class's mean density in the pooled training tissue
            thresholds[name] = float(enrichment) * own_spots[name] / tissue_area_um2
    return thresholds, training_shares


def gene_regions(
    tissue_mask: np.ndarray,
    spots_by_class: Mapping[str, np.ndarray],
    all_xy: np.ndarray,
    sigma_px: float,
    thresholds: Mapping[str, float],
    *,
    quantity: str = "share",
    pixel_size_um: float = 1.0,
    min_area_px: float | None = None,
) -> dict[str, np.ndarray]:
    """Each class's region inside the tissue (bool ``(H, W)`` per class, same order).

    See the module docstring: the class's quantity >= its fitted threshold,
    overlaps to the class furthest above its threshold, pieces below ``min_area_px`` (default
    ``pi (2 sigma)^2``) removed. Regions are disjoint and lie inside ``tissue_mask``.

    Parameters
    ----------
    tissue_mask : np.ndarray
        2-D boolean tissue mask (H, W).
    spots_by_class : Mapping[str, np.ndarray]
        Per class, its (N, 2) (x, y) spot pixels.
    all_xy : np.ndarray
        (N, 2) (x, y) pixels of every spot of the section (all genes).
    sigma_px : float
        Kernel density sigma, in pixels (> 0).
    thresholds : Mapping[str, float]
        Per class, its threshold (:func:`fit_thresholds`).
    quantity : str
        What the thresholds are on: ``"share"`` or ``"density"`` (spots per µm²).
    pixel_size_um : float
        Micrometres per pixel (for ``"density"``).
    min_area_px : float or None
        Smallest region piece kept, in pixels; None: :func:`min_region_area_px`.

    Returns
    -------
    dict[str, np.ndarray]
        Per class, in the order of ``spots_by_class``, its boolean (H, W) region; all False
        when the tissue is empty or the class has no spots in it.

    Raises
    ------
    ValueError
        When the mask is not 2-D, ``sigma_px`` is not positive or a class has no threshold.
    """
    mask = _check(tissue_mask, sigma_px)
    missing = [name for name in spots_by_class if name not in thresholds]
    if missing:
        raise ValueError(f"no fitted threshold for {missing}")
    if min_area_px is None:
        min_area_px = min_region_area_px(sigma_px)
    names = list(spots_by_class)
    regions = {name: np.zeros(mask.shape, dtype=bool) for name in names}
    if not mask.any() or not names:
        return regions
    b, values = _coarse_values(mask, spots_by_class, all_xy, sigma_px, quantity,
                               pixel_size_um)
    # Running winner: the class furthest above its threshold per pixel (-1: none).
    best = np.full(mask.shape, -np.inf, dtype=np.float32)
    winner = np.full(mask.shape, -1, dtype=np.int16)
    for k, name in enumerate(names):
        threshold = float(thresholds[name])
        if not math.isfinite(threshold) or not values[name].any():
            continue
        ratio = _upsample(values[name] / np.float32(max(threshold, 1e-12)), b, mask.shape)
        above = (ratio >= 1.0) & (ratio > best) & mask
        best[above] = ratio[above]
        winner[above] = k
        del ratio, above
    for k, name in enumerate(names):
        regions[name] = _remove_specks(winner == k, min_area_px)
    return regions


def truth_labels(
    tissue_mask: np.ndarray,
    spots_by_class: Mapping[str, np.ndarray],
    all_xy: np.ndarray,
    sigma_px: float,
    thresholds: Mapping[str, float],
    *,
    quantity: str = "share",
    pixel_size_um: float = 1.0,
    min_area_px: float | None = None,
) -> np.ndarray:
    """Reference label image (uint8 ``(H, W)``): 0 background, 1 tissue, 2 + i for class i.

    Background is everything outside ``tissue_mask``; general tissue is the mask minus all
    class regions (:func:`gene_regions`); classes are numbered in ``spots_by_class``'s order,
    which must be the class order ``["background", "tissue", *classes]``.

    Parameters
    ----------
    tissue_mask : np.ndarray
        2-D boolean tissue mask (H, W).
    spots_by_class : Mapping[str, np.ndarray]
        Per class, its (N, 2) (x, y) spot pixels.
    all_xy : np.ndarray
        (N, 2) (x, y) pixels of every spot of the section (all genes).
    sigma_px : float
        Kernel density sigma, in pixels (> 0).
    thresholds : Mapping[str, float]
        Per class, its threshold (:func:`fit_thresholds`).
    quantity : str
        What the thresholds are on: ``"share"`` or ``"density"`` (spots per µm²).
    pixel_size_um : float
        Micrometres per pixel (for ``"density"``).
    min_area_px : float or None
        Smallest region piece kept, in pixels; None: :func:`min_region_area_px`.

    Returns
    -------
    np.ndarray
        uint8 (H, W) labels.

    Raises
    ------
    ValueError
        When there are more than 253 classes, or as :func:`gene_regions`.
    """
    if len(spots_by_class) > 253:
        raise ValueError(f"at most 253 classes fit uint8 labels, got {len(spots_by_class)}")
    mask = np.asarray(tissue_mask).astype(bool, copy=False)
    regions = gene_regions(mask, spots_by_class, all_xy, sigma_px, thresholds,
                           quantity=quantity, pixel_size_um=pixel_size_um,
                           min_area_px=min_area_px)
    labels = mask.astype(np.uint8)  # 0 outside, 1 tissue
    for i, region in enumerate(regions.values()):
        labels[region] = 2 + i
    return labels
