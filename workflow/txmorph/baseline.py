"""A non-CNN baseline: local intensity and nuclear-density statistics with logistic regression.

It answers "what do the CNNs add?": the same patch centres and labels as the CNNs
(``results/patches/size*.h5``), the same per-section intensity scaling, the same output grid
and the same Dice rule, but instead of a learned network a handful of hand-made features:

for each window side ``W`` (pixels; tied to the patch sizes, e.g. the smallest, middle and
largest) and every pixel, over the ``W x W`` window centred on it (the patch convention of
docs/CONVENTIONS.md: rows ``r - W//2 ... r - W//2 + W - 1``, reflection beyond the image):

- ``mean``: the mean normalised intensity (``txmorph.patches.intensity``);
- ``std``: its standard deviation (texture);
- ``above_otsu``: the fraction of pixels above the section's Otsu threshold (nuclear cover);
- ``nuclei``: local nuclear density, the number of nuclei (maxima of the image smoothed over
  about a nucleus, above the Otsu threshold, at least half a nucleus apart) per nucleus area.

These four are the feature set ``windows``. The set ``nuclei`` adds, per window, the mean shape
and texture of the nuclei centred in it (area, elongation, solidity, intensity, intensity
spread) from a local segmentation, and whether it holds none (``txmorph.nucleus_features``).

Features are standardised with the training mean and spread and classified by multinomial
logistic regression (softmax, L2 penalty, L-BFGS; deterministic). A section is painted tile by
tile, so memory is bounded by the tile, not the section.

Over 500 lines through its documentation only (about 240 of code): one model, its features,
fit, file and painter, which change together; the nucleus segmentation and its measures are
``txmorph.nucleus_features``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, optimize
from skimage.filters import threshold_otsu

from txmorph.nucleus_features import (NUCLEUS_STATISTICS, THRESHOLD_FRACTION, nucleus_margin,
                                      nucleus_window_maps)
from txmorph.outputs import atomic_path
from txmorph.patches.intensity import MAX_SAMPLES, normalise
from txmorph.probmap.grid import probability_grid_shape, reflect_indices

STATISTICS = ("mean", "std", "above_otsu", "nuclei")
FEATURE_SETS = ("windows", "nuclei")  # STATISTICS; STATISTICS and NUCLEUS_STATISTICS
# Version 2 stores the feature set; version 1 files (before it) are read as set `windows`.
FORMAT = "txmorph-baseline-2"
_FORMATS = {"txmorph-baseline-1": "windows", FORMAT: None}


@dataclass(frozen=True)
class FeatureSettings:
    """Window sides (pixels), the nucleus diameter (pixels of the section) and the feature set.

    Parameters
    ----------
    windows : tuple[int, ...]
        Sides of the square windows the statistics are taken over (from the patch sizes).
    nucleus_diameter_px : float
        A nucleus's diameter in pixels: sets the smoothing and the spacing of nucleus maxima.
    features : str
        ``windows`` (``STATISTICS``) or ``nuclei`` (also ``NUCLEUS_STATISTICS``).
    """

    windows: tuple[int, ...]
    nucleus_diameter_px: float
    features: str = "windows"

    def __post_init__(self) -> None:
        if not self.windows or any(int(w) < 1 for w in self.windows):
            raise ValueError(f"windows must be positive pixel sizes, got {self.windows}")
        if not self.nucleus_diameter_px > 0:
            raise ValueError(f"nucleus_diameter_px must be > 0, got {self.nucleus_diameter_px}")
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {self.features!r}")

    @property
    def sigma(self) -> float:
        """Gaussian smoothing before nuclei are found: a quarter of a nucleus diameter."""
        return max(0.5, self.nucleus_diameter_px / 4)

    @property
    def peak_distance(self) -> int:
        """Nuclei maxima are at least this far apart (pixels): half a diameter."""
        return max(1, int(round(self.nucleus_diameter_px / 2)))

    @property
    def halo(self) -> int:
        """Pixels around a box that its features depend on (set ``nuclei``: also a nucleus's
        extent, ``txmorph.nucleus_features.nucleus_margin``)."""
        extent = nucleus_margin(self.nucleus_diameter_px) if self.features == "nuclei" else 0
        return max(int(w) for w in self.windows) // 2 + int(math.ceil(4 * self.sigma)) \
            + self.peak_distance + 1 + extent


def window_sizes(patch_sizes: Sequence[int], n: int = 3) -> tuple[int, ...]:
    """Up to ``n`` window sides from the patch sizes: smallest, largest and (n=3) the middle.

    Parameters
    ----------
    patch_sizes : Sequence[int]
        ``patches.sizes``.
    n : int
        Most windows.

    Returns
    -------
    tuple[int, ...]
        Ascending, distinct window sides.
    """
    sizes = sorted({int(s) for s in patch_sizes})
    if not sizes:
        raise ValueError("no patch sizes")
    if n <= 1 or len(sizes) == 1:
        return (sizes[0],)
    picks = [sizes[0], sizes[-1]] if n == 2 else [sizes[0], sizes[len(sizes) // 2], sizes[-1]]
    return tuple(sorted(set(picks)))


def feature_names(settings: FeatureSettings) -> list[str]:
    """The names of the features, in the order of :func:`feature_maps`: ``{statistic}_{window}``
    (``STATISTICS`` window by window, then for set ``nuclei`` ``NUCLEUS_STATISTICS`` likewise).

    Parameters
    ----------
    settings : FeatureSettings
        The windows.

    Returns
    -------
    list[str]
        One name per feature.
    """
    names = [f"{stat}_{int(w)}" for w in settings.windows for stat in STATISTICS]
    if settings.features == "nuclei":
        names += [f"{stat}_{int(w)}" for w in settings.windows for stat in NUCLEUS_STATISTICS]
    return names


def section_threshold(image: Any, low: float, high: float) -> float:
    """Otsu's threshold of the section's normalised intensity (a regular subsample).

    Parameters
    ----------
    image : Any
        The raw 2-D section (array or sliceable like one).
    low, high : float
        Its intensity range (``txmorph.patches.intensity.intensity_range``).

    Returns
    -------
    float
        The threshold in normalised units.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    step = max(1, int(np.ceil(np.sqrt(height * width / MAX_SAMPLES))))
    sample = normalise(np.asarray(image[0:height:step, 0:width:step]), low, high)
    if np.ptp(sample) == 0:
        return float(sample.flat[0])
    return float(threshold_otsu(sample))


def nuclei_centres(norm: np.ndarray, threshold: float, settings: FeatureSettings) -> np.ndarray:
    """Boolean map of nucleus centres: local maxima of the smoothed image above ``threshold``.

    Parameters
    ----------
    norm : np.ndarray
        The normalised 2-D image (or tile).
    threshold : float
        :func:`section_threshold`.
    settings : FeatureSettings
        Smoothing and peak spacing.

    Returns
    -------
    np.ndarray
        bool, same shape as ``norm``.
    """
    smooth = ndimage.gaussian_filter(np.asarray(norm, np.float32), settings.sigma, mode="mirror")
    size = 2 * settings.peak_distance + 1
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size, mode="mirror")) & (smooth > threshold)
    return peaks


def feature_maps(norm: np.ndarray, threshold: float, settings: FeatureSettings) -> np.ndarray:
    """(F, H, W) float32 features of every pixel of a normalised image (``feature_names``).

    Beyond the image it is extended by reflection (``numpy.pad(mode="reflect")``); callers
    that need exact values near a box edge pass the box with a ``settings.halo`` margin.

    Parameters
    ----------
    norm : np.ndarray
        The normalised 2-D image (or tile with its halo).
    threshold : float
        :func:`section_threshold`.
    settings : FeatureSettings
        Windows and nucleus size.

    Returns
    -------
    np.ndarray
        (F, H, W) float32.
    """
    norm = np.asarray(norm, dtype=np.float64)
    if norm.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {norm.shape}")
    height, width = norm.shape
    if settings.features == "windows":  # the filters' own mirroring is the reflection
        return _block_feature_maps(norm, threshold, settings, np.arange(height), np.arange(width))
    halo = settings.halo
    rows = reflect_indices(np.arange(-halo, height + halo), height)
    cols = reflect_indices(np.arange(-halo, width + halo), width)
    return _block_feature_maps(norm[np.ix_(rows, cols)], threshold, settings,
                               np.arange(halo, halo + height), np.arange(halo, halo + width))


def _block_feature_maps(norm: np.ndarray, threshold: float, settings: FeatureSettings,
                        rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(F, len(rows), len(cols)) features of a block at the pixels ``np.ix_(rows, cols)``,
    exact at ``settings.halo`` pixels inside it."""
    grid = np.ix_(rows, cols)
    above = (norm > threshold).astype(np.float64)
    nuclei = nuclei_centres(norm, threshold, settings).astype(np.float64)
    nucleus_area = math.pi * settings.nucleus_diameter_px**2 / 4
    squared = norm * norm
    maps = []
    for w in settings.windows:
        w = int(w)
        mean = ndimage.uniform_filter(norm, w, mode="mirror")
        mean_sq = ndimage.uniform_filter(squared, w, mode="mirror")
        std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
        cover = ndimage.uniform_filter(above, w, mode="mirror")
        density = ndimage.uniform_filter(nuclei, w, mode="mirror") * nucleus_area
        maps += [mean[grid], std[grid], cover[grid], density[grid]]
    if settings.features == "nuclei":
        seeds = nuclei_centres(norm, THRESHOLD_FRACTION * threshold, settings)
        maps += list(nucleus_window_maps(norm, seeds, threshold, settings, rows, cols))
    return np.stack(maps).astype(np.float32)


def _box_features(image: Any, rows: tuple[int, int], cols: tuple[int, int],
                  intensity: tuple[float, float], threshold: float,
                  settings: FeatureSettings, step: int = 1) -> np.ndarray:
    """Features of input rows ``rows[0]:rows[1]:step`` and columns ``cols[0]:cols[1]:step``
    (may reach past the image: it is extended by reflection), computed with a halo."""
    height, width = int(image.shape[0]), int(image.shape[1])
    halo = settings.halo
    row_index = reflect_indices(np.arange(rows[0] - halo, rows[1] + halo), height)
    col_index = reflect_indices(np.arange(cols[0] - halo, cols[1] + halo), width)
    r_lo, r_hi = int(row_index.min()), int(row_index.max()) + 1
    c_lo, c_hi = int(col_index.min()), int(col_index.max()) + 1
    block = np.asarray(image[r_lo:r_hi, c_lo:c_hi])[np.ix_(row_index - r_lo, col_index - c_lo)]
    return _block_feature_maps(normalise(block, *intensity).astype(np.float64), threshold,
                               settings, np.arange(halo, halo + rows[1] - rows[0], step),
                               np.arange(halo, halo + cols[1] - cols[0], step))


def features_at(image: Any, points: np.ndarray, intensity: tuple[float, float], threshold: float,
                settings: FeatureSettings, tile_size: int = 512) -> np.ndarray:
    """(N, F) features at ``points`` of a raw 2-D section.

    Points are grouped by ``tile_size`` tiles so memory is one tile's (plus its halo).

    Parameters
    ----------
    image : Any
        A numpy array or anything sliceable like one (``txmorph.io.canonical``).
    points : np.ndarray
        (N, 2) row, col.
    intensity : tuple[float, float]
        The section's (low, high) intensity range.
    threshold : float
        :func:`section_threshold`.
    settings : FeatureSettings
        Windows and nucleus size.
    tile_size : int
        Tile side in pixels.

    Returns
    -------
    np.ndarray
        (N, F) float32, rows in the order of ``points``.
    """
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    out = np.empty((len(points), len(feature_names(settings))), np.float32)
    if not len(points):
        return out
    keys = (points // int(tile_size))
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    bounds = np.flatnonzero(np.any(np.diff(keys[order], axis=0) != 0, axis=1)) + 1
    for group in np.split(order, bounds):
        chosen = points[group]
        r0, c0 = chosen.min(axis=0)
        r1, c1 = chosen.max(axis=0) + 1
        maps = _box_features(image, (int(r0), int(r1)), (int(c0), int(c1)), intensity,
                             threshold, settings)
        out[group] = maps[:, chosen[:, 0] - r0, chosen[:, 1] - c0].T
    return out


@dataclass
class BaselineModel:
    """Standardisation and softmax weights of the baseline, with what it needs to paint.

    Parameters
    ----------
    classes : list[str]
        The class names, one per output.
    settings : FeatureSettings
        The features it was fitted on.
    mean, scale : np.ndarray
        (F,) standardisation of the features.
    weights : np.ndarray
        (F, C) softmax weights.
    bias : np.ndarray
        (C,) softmax bias.
    info : dict[str, Any]
        What the fit reports (iterations, loss, ...), stored with the model.
    """

    classes: list[str]
    settings: FeatureSettings
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F, C)
    bias: np.ndarray  # (C,)
    info: dict[str, Any] = field(default_factory=dict)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Softmax logits of standardised features.

        Parameters
        ----------
        features : np.ndarray
            (N, F) features (``feature_names`` order).

        Returns
        -------
        np.ndarray
            (N, C) float64 logits.
        """
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return z @ self.weights + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities of (N, F) features.

        Parameters
        ----------
        features : np.ndarray
            (N, F) features.

        Returns
        -------
        np.ndarray
            (N, C) probabilities, rows summing to 1.
        """
        logits = self.logits(features)
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        return prob / prob.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most probable class of each row.

        Parameters
        ----------
        features : np.ndarray
            (N, F) features.

        Returns
        -------
        np.ndarray
            (N,) class indices into ``classes``.
        """
        return self.logits(features).argmax(axis=1)


def fit_logistic(features: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                 settings: FeatureSettings, l2: float = 1e-3, max_iter: int = 1000
                 ) -> BaselineModel:
    """Multinomial logistic regression on standardised features (mean cross-entropy plus
    ``l2/2 * |weights|^2``), minimised by L-BFGS from zero: deterministic.

    Parameters
    ----------
    features : np.ndarray
        (N, F) features.
    labels : np.ndarray
        (N,) class indices into ``classes``.
    classes : Sequence[str]
        The class names.
    settings : FeatureSettings
        The features' settings, kept with the model.
    l2 : float
        Weight penalty.
    max_iter : int
        Most L-BFGS iterations.

    Returns
    -------
    BaselineModel
        The fitted model.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.int64)
    n_classes = len(classes)
    if x.ndim != 2 or len(x) != len(y) or not len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    n, f = z.shape
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: f * n_classes].reshape(f, n_classes)
        b = theta[f * n_classes:]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_p = logits - log_norm
        value = -(onehot * log_p).sum() / n + 0.5 * l2 * (w * w).sum()
        delta = (np.exp(log_p) - onehot) / n
        grad = np.concatenate([(z.T @ delta + l2 * w).ravel(), delta.sum(axis=0)])
        return float(value), grad

    result = optimize.minimize(loss, np.zeros(f * n_classes + n_classes), jac=True,
                               method="L-BFGS-B", options={"maxiter": max_iter})
    theta = result.x
    model = BaselineModel(
        classes=list(classes), settings=settings, mean=mean, scale=scale,
        weights=theta[: f * n_classes].reshape(f, n_classes), bias=theta[f * n_classes:],
        info={"iterations": int(result.nit), "loss": float(result.fun), "l2": float(l2),
              "samples": int(n), "features": feature_names(settings)},
    )
    model.info["train_accuracy"] = float((model.predict(x) == y).mean())
    return model


def save_model(path: str | os.PathLike, model: BaselineModel) -> None:
    """Write the model as .npz (arrays plus a JSON header), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    model : BaselineModel
        What to write.
    """
    header = {"format": FORMAT, "classes": model.classes,
              "windows": [int(w) for w in model.settings.windows],
              "nucleus_diameter_px": float(model.settings.nucleus_diameter_px),
              "features": model.settings.features, "info": model.info}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, mean=model.mean, scale=model.scale, weights=model.weights,
                     bias=model.bias, header=np.array(json.dumps(header)))


def load_model(path: str | os.PathLike, nucleus_diameter_px: float | None = None
               ) -> BaselineModel:
    """Read a model written by ``save_model`` (or by the version before the feature sets:
    set ``windows``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    nucleus_diameter_px : float or None
        Overrides the stored diameter (a section with another pixel size).

    Returns
    -------
    BaselineModel
        The model.
    """
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        if header.get("format") not in _FORMATS:
            raise ValueError(f"{path}: not a txmorph baseline model of a format this pipeline "
                             f"reads ({header.get('format')!r}; reads {', '.join(_FORMATS)})")
        features = _FORMATS[header["format"]] or header["features"]
        diameter = nucleus_diameter_px or header["nucleus_diameter_px"]
        return BaselineModel(
            classes=list(header["classes"]),
            settings=FeatureSettings(tuple(header["windows"]), float(diameter), features),
            mean=data["mean"], scale=data["scale"], weights=data["weights"], bias=data["bias"],
            info=header["info"],
        )


def paint_baseline(image: Any, model: BaselineModel, intensity: tuple[float, float],
                   threshold: float, stride: int, out: Any, tile_size: int = 1024,
                   log: Callable[[str], None] | None = None) -> None:
    """Write class probabilities of the whole section into ``out`` (C, ceil(H/s), ceil(W/s)).

    Output pixel ``(i, j)`` is the prediction at input pixel ``(i*s + s//2, j*s + s//2)``
    (the grid of ``txmorph.probmap.paint``).

    Parameters
    ----------
    image : Any
        The raw 2-D section (array or sliceable like one).
    model : BaselineModel
        The fitted baseline.
    intensity : tuple[float, float]
        The section's (low, high) intensity range.
    threshold : float
        :func:`section_threshold` of the section.
    stride : int
        Input pixels per output pixel.
    out : Any
        (C, H', W') target accepting ``out[:, r0:r1, c0:c1] = block``.
    tile_size : int
        Tiles of about this many input pixels a side.
    log : Callable[[str], None] or None
        Progress messages.
    """
    if len(image.shape) != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    stride = int(stride)
    grid_h, grid_w = probability_grid_shape(image.shape, stride)
    n_classes = len(model.classes)
    if hasattr(out, "shape") and tuple(out.shape) != (n_classes, grid_h, grid_w):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected "
                         f"{(n_classes, grid_h, grid_w)}")
    per_tile = max(1, int(tile_size) // stride)
    start = time.perf_counter()
    for i0 in range(0, grid_h, per_tile):
        i1 = min(grid_h, i0 + per_tile)
        for j0 in range(0, grid_w, per_tile):
            j1 = min(grid_w, j0 + per_tile)
            rows = (i0 * stride + stride // 2, (i1 - 1) * stride + stride // 2 + 1)
            cols = (j0 * stride + stride // 2, (j1 - 1) * stride + stride // 2 + 1)
            maps = _box_features(image, rows, cols, intensity, threshold, model.settings, stride)
            prob = model.predict_proba(maps.reshape(maps.shape[0], -1).T)
            out[:, i0:i1, j0:j1] = prob.T.reshape(n_classes, i1 - i0, j1 - j0).astype(np.float32)
    if log:
        log(f"baseline: {grid_h}x{grid_w} map (stride {stride}) in "
            f"{time.perf_counter() - start:.1f}s")
