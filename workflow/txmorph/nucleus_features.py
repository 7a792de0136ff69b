"""Per-nucleus shape and texture features for the baseline (``txmorph.baseline``, feature set
``nuclei``), averaged over the baseline's windows.

Nuclei are segmented with a rule whose every step has a bounded reach, so that a section
painted tile by tile (each tile with the margin ``FeatureSettings.halo``) gets exactly the
values of the whole section:

1. centres: maxima of the image smoothed over a quarter nucleus, half a nucleus apart
   (``txmorph.baseline.nuclei_centres``), above a floor: ``THRESHOLD_FRACTION`` of the section's
   Otsu threshold (the Otsu threshold itself finds only the brightest nuclei);
2. foreground: the image lightly smoothed (``FOREGROUND_SIGMA`` pixels) above the same floor
   and above its own local mean over a box of ``2 * reach + 1`` (dim nuclei beside bright
   ones), plus the centres themselves;
3. each foreground pixel within ``reach`` (one nucleus diameter) of a centre goes to the
   nearest centre (ties: the centre with the smaller row offset, then column offset from the
   pixel, which does not depend on where a tile starts);
4. a nucleus keeps the connected piece (4-connected) of its pixels that holds its centre.

Every step is a per-pixel computation in a fixed order (no running sums, no flooding), so a
tile and the whole section agree bit for bit wherever the tile's margin covers the reach.

Per nucleus (``NUCLEUS_MEASURES``): ``area`` in units of a nominal nucleus (``pi d^2 / 4``),
``elongation`` ``1 - sqrt(l2 / l1)`` of the eigenvalues of its pixels' second moments (0 for a
disk, towards 1 for a line), ``solidity`` (its pixels over the area of the convex hull of their
squares), ``intensity`` (mean normalised intensity) and ``texture`` (the intensity's standard
deviation within the nucleus: chromatin texture).

Per pixel and window ``W`` (the patch convention of docs/CONVENTIONS.md), over the nuclei whose
centre lies in the ``W x W`` window: the mean of each measure, and ``no_nuclei`` (1 where the
window holds no centre, whose means are then 0) (``NUCLEUS_STATISTICS``).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from skimage.measure import label as connected_pieces

if TYPE_CHECKING:
    from txmorph.baseline import FeatureSettings

NUCLEUS_MEASURES = ("area", "elongation", "solidity", "intensity", "texture")
NUCLEUS_STATISTICS = tuple(f"nucleus_{m}" for m in NUCLEUS_MEASURES) + ("no_nuclei",)
FOREGROUND_SIGMA = 1.0  # pixels; the foreground's light smoothing
THRESHOLD_FRACTION = 0.5  # of the section's Otsu threshold: the floor of centres and foreground
_FOREGROUND_TRUNCATE = 4.0  # scipy's default: the smoothing reaches ceil(4 * sigma) pixels


def nucleus_reach(diameter_px: float) -> int:
    """How far (pixels) a nucleus's pixels may lie from its centre: one diameter.

    Parameters
    ----------
    diameter_px : float
        The nominal nucleus diameter in pixels.

    Returns
    -------
    int
        The radius of the disk a nucleus is confined to.
    """
    return max(1, int(math.ceil(diameter_px)))


def nucleus_margin(diameter_px: float) -> int:
    """Pixels beyond a nucleus centre (the centres' own reach aside) that its measures depend
    on: its pixels lie within ``reach`` of it and compete with centres within ``reach`` of them;
    their foreground depends on a box of ``reach`` and the light smoothing's reach.

    Parameters
    ----------
    diameter_px : float
        The nominal nucleus diameter in pixels.

    Returns
    -------
    int
        ``3 * reach`` plus the light smoothing's reach.
    """
    return 3 * nucleus_reach(diameter_px) + int(math.ceil(_FOREGROUND_TRUNCATE * FOREGROUND_SIGMA))


@functools.lru_cache(maxsize=8)
def _disk_offsets(reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dr, dc) within ``reach`` of the origin, nearest first, then by dr, then dc."""
    dr, dc = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    dr, dc = dr.ravel(), dc.ravel()
    inside = dr * dr + dc * dc <= reach * reach
    dr, dc = dr[inside], dc[inside]
    order = np.lexsort((dc, dr, dr * dr + dc * dc))
    return dr[order], dc[order]


def segment_nuclei(norm: np.ndarray, centres: np.ndarray, threshold: float,
                   settings: FeatureSettings) -> np.ndarray:
    """The nucleus of every pixel: index into ``centres``, -1 for none (steps 2-4 above).

    Parameters
    ----------
    norm : np.ndarray
        The normalised 2-D image (or tile).
    centres : np.ndarray
        (K, 2) int nucleus centres (row, col) in ``norm``.
    threshold : float
        The section's Otsu threshold (normalised units).
    settings : FeatureSettings
        The nucleus diameter.

    Returns
    -------
    np.ndarray
        int32, same shape as ``norm``.
    """
    height, width = norm.shape
    light = ndimage.gaussian_filter(np.asarray(norm, np.float32), FOREGROUND_SIGMA,
                                    mode="mirror", truncate=_FOREGROUND_TRUNCATE)
    reach = nucleus_reach(settings.nucleus_diameter_px)
    # The local mean by correlation, not uniform_filter: its running sums depend on where the
    # array starts, and a comparison must not.
    box = np.full(2 * reach + 1, 1 / (2 * reach + 1), np.float32)
    local = ndimage.correlate1d(ndimage.correlate1d(light, box, 0, mode="mirror"), box, 1,
                                mode="mirror")
    foreground = ((light > threshold * THRESHOLD_FRACTION) & (light > local)).ravel()
    owner = np.full(height * width, -1, np.int32)
    rows, cols = centres[:, 0], centres[:, 1]
    index = np.arange(len(centres), dtype=np.int32)
    for dr, dc in zip(*_disk_offsets(reach)):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        flat = r[inside] * width + c[inside]
        mine = index[inside]
        if dr or dc:
            free = foreground[flat] & (owner[flat] < 0)
            flat, mine = flat[free], mine[free]
        owner[flat] = mine  # distinct pixels: one offset from distinct centres
    owner = owner.reshape(height, width)
    if not len(centres):
        return owner
    pieces = connected_pieces(owner + 1, background=0, connectivity=1)
    keep = pieces == pieces[rows, cols][owner]
    return np.where((owner >= 0) & keep, owner, -1)


def measure_nuclei(norm: np.ndarray, owner: np.ndarray, centres: np.ndarray,
                   settings: FeatureSettings) -> np.ndarray:
    """(K, 5) measures of the nuclei of :func:`segment_nuclei` (``NUCLEUS_MEASURES``).

    Parameters
    ----------
    norm : np.ndarray
        The normalised 2-D image (or tile).
    owner : np.ndarray
        :func:`segment_nuclei`.
    centres : np.ndarray
        (K, 2) nucleus centres.
    settings : FeatureSettings
        The nucleus diameter (the unit of area).

    Returns
    -------
    np.ndarray
        float64, one row per centre.
    """
    k_all = len(centres)
    if k_all == 0:  # a tile without a nucleus (glass, or tissue too dim): nothing to measure
        return np.zeros((0, len(NUCLEUS_MEASURES)), np.float64)
    rr, cc = np.nonzero(owner >= 0)
    k = owner[rr, cc]
    if not len(k):  # centres with no pixel of their own (none holds its centre): unmeasurable
        return np.zeros((k_all, len(NUCLEUS_MEASURES)), np.float64)
    order = np.argsort(k, kind="stable")  # by nucleus, then row, then column
    rr, cc, k = rr[order], cc[order], k[order]
    dr = (rr - centres[k, 0]).astype(np.float64)  # relative to the centre: tile-independent
    dc = (cc - centres[k, 1]).astype(np.float64)
    value = np.asarray(norm, np.float64)[rr, cc]

    def total(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(k, weights, minlength=k_all)

    n = total()  # every nucleus holds at least its centre
    mean_r, mean_c = total(dr) / n, total(dc) / n
    # Second moments of the pixels as unit squares (+1/12): a single pixel is a small disk.
    var_r = total(dr * dr) / n - mean_r**2 + 1 / 12
    var_c = total(dc * dc) / n - mean_c**2 + 1 / 12
    cov = total(dr * dc) / n - mean_r * mean_c
    half_sum, half_diff = (var_r + var_c) / 2, np.sqrt(((var_r - var_c) / 2) ** 2 + cov**2)
    major, minor = half_sum + half_diff, np.maximum(half_sum - half_diff, 0.0)
    elongation = 1 - np.sqrt(minor / major)
    mean_v = total(value) / n
    texture = np.sqrt(np.maximum(total(value * value) / n - mean_v**2, 0.0))
    area = n / (math.pi * settings.nucleus_diameter_px**2 / 4)
    solidity = n / _hull_areas(dr, dc, k, k_all)
    return np.stack([area, elongation, solidity, mean_v, texture], axis=1)


def _hull_areas(dr: np.ndarray, dc: np.ndarray, k: np.ndarray, k_all: int) -> np.ndarray:
    """Area of the convex hull of each nucleus's pixel squares (pixels sorted by nucleus,
    row, column): from the corners of each row's first and last pixel."""
    row_start = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (dr[1:] != dr[:-1])])
    row_end = np.r_[row_start[1:], len(k)] - 1
    owner, row = k[row_start], dr[row_start]
    first, last = dc[row_start] - 0.5, dc[row_end] + 0.5
    corners = np.stack([np.stack([row - 0.5, first], 1), np.stack([row + 0.5, first], 1),
                        np.stack([row - 0.5, last], 1), np.stack([row + 0.5, last], 1)], 1)
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True])
    areas = np.empty(k_all)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        points = corners[lo:hi].reshape(-1, 2)
        areas[owner[lo]] = last[lo] - first[lo] if hi - lo == 1 else ConvexHull(points).volume
    return areas


def nucleus_window_maps(norm: np.ndarray, centre_map: np.ndarray, threshold: float,
                        settings: FeatureSettings, rows: np.ndarray, cols: np.ndarray
                        ) -> np.ndarray:
    """(6 * len(windows), len(rows), len(cols)) float64: per window, ``NUCLEUS_STATISTICS`` at
    the pixels ``np.ix_(rows, cols)`` of ``norm``.

    Exact only at least ``settings.halo`` pixels inside the array (beyond its edges the
    segmentation sees nothing and windows are cut); ``txmorph.baseline.feature_maps`` pads.

    Parameters
    ----------
    norm : np.ndarray
        The normalised 2-D image (or tile with its halo).
    centre_map : np.ndarray
        bool nucleus centres (step 1: ``txmorph.baseline.nuclei_centres`` at
        ``THRESHOLD_FRACTION * threshold``).
    threshold : float
        The section's Otsu threshold.
    settings : FeatureSettings
        Windows and nucleus diameter.
    rows, cols : np.ndarray
        The pixels wanted.

    Returns
    -------
    np.ndarray
        The maps, window by window.
    """
    centres = np.argwhere(centre_map)
    owner = segment_nuclei(norm, centres, threshold, settings)
    measures = measure_nuclei(norm, owner, centres, settings)
    # Window sums from integral images of the values placed at the centres (the counts are
    # integers: exact, wherever the array starts).
    placed = np.zeros((1 + len(NUCLEUS_MEASURES), norm.shape[0] + 1, norm.shape[1] + 1))
    placed[:, centres[:, 0] + 1, centres[:, 1] + 1] = np.c_[np.ones(len(centres)), measures].T
    integral = placed.cumsum(axis=1).cumsum(axis=2)
    rows, cols = np.asarray(rows), np.asarray(cols)
    maps = []
    for w in settings.windows:
        w = int(w)
        r0 = np.clip(rows - w // 2, 0, norm.shape[0])[:, None]
        r1 = np.clip(rows - w // 2 + w, 0, norm.shape[0])[:, None]
        c0 = np.clip(cols - w // 2, 0, norm.shape[1])[None, :]
        c1 = np.clip(cols - w // 2 + w, 0, norm.shape[1])[None, :]
        sums = integral[:, r1, c1] - integral[:, r0, c1] - integral[:, r1, c0] + integral[:, r0, c0]
        empty = sums[0] < 0.5
        means = np.where(empty, 0.0, sums[1:] / np.where(empty, 1.0, sums[0]))
        maps += [*means, empty.astype(np.float64)]
    return np.stack(maps)
