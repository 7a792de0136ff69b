"""Dense class-probability maps over whole sections, and their ensemble across patch sizes.

Grid convention (docs/CONVENTIONS.md): with output stride ``s``, output pixel ``(i, j)`` is
the class probability of the patch centred at input pixel ``(i*s + s//2, j*s + s//2)``; the
grid has ``ceil(H/s) x ceil(W/s)`` pixels and the image is extended by reflection beyond its
borders. ``txmorph.probmap.dense`` evaluates the fully-convolutional ``PatchClassifier`` exactly at
these patches, at any stride down to 1 pixel, when its input starts ``S//2 - s//2`` pixels
before the image; so a map is computed tile by tile (memory bounded by the tile, not the
section) and equals per-patch classification.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from txmorph.errors import InputError
from txmorph.probmap.dense import computed_stride, dense_logits
from txmorph.probmap.grid import outputs_per_tile, probability_grid_shape, reflect_indices  # noqa: F401 (re-exported)
from txmorph.patches.intensity import normalise
from txmorph.train.model import INTENSITY_METHOD, PatchClassifier, fused_for_inference

_LOG_EVERY_SECONDS = 30.0


def _read_window(image: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image[rows][:, cols]`` with reflected indices, reading one bounding box only.

    Works for numpy arrays and for lazily read arrays (h5py datasets, memmaps) alike.
    """
    r_lo, r_hi = int(rows.min()), int(rows.max()) + 1
    c_lo, c_hi = int(cols.min()), int(cols.max()) + 1
    block = np.asarray(image[r_lo:r_hi, c_lo:c_hi])
    return block[np.ix_(rows - r_lo, cols - c_lo)]


def _check_metadata(model: PatchClassifier, metadata: dict[str, Any]) -> None:
    """Refuse a model whose metadata says it was trained with different input scaling."""
    norm = metadata.get("normalisation", {})
    method = norm.get("intensity_method", INTENSITY_METHOD)
    if method != INTENSITY_METHOD:
        raise InputError(
            f"the model was trained with intensity normalisation {method!r}, but this code "
            f"applies {INTENSITY_METHOD!r}; retrain the model with the current pipeline"
        )
    if metadata.get("patch_size", model.patch_size) != model.patch_size:
        raise ValueError(
            f"metadata patch_size {metadata['patch_size']} != model patch_size {model.patch_size}"
        )
    classes = metadata.get("classes")
    if classes is not None and len(classes) != model.n_classes:
        raise ValueError(f"{len(classes)} class names for a model with {model.n_classes} outputs")


def paint_probabilities(
    image: Any,
    model: PatchClassifier,
    metadata: dict[str, Any],
    intensity: tuple[float, float],
    out: Any,
    tile_size: int = 1024,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
    output_stride: int | None = None,
    tta: bool = False,
) -> None:
    """Write softmax class probabilities of the whole section into ``out`` (C, H', W').

    Each tile covers about ``tile_size`` x ``tile_size`` input pixels (``tile_size // stride``
    outputs a side) plus the patch margin (``outputs_per_tile``). An eval-mode copy of the
    model is used; ``model`` is not changed. Any stride is exact: it is computed at
    ``txmorph.probmap.dense.computed_stride`` (1, d, 2d or 4d) and subsampled, so strides other than
    those cost extra work.

    Parameters
    ----------
    image : Any
        The raw 2-D section (numpy array, memmap, ``canonical.MappedImage`` or h5py dataset).
    model : PatchClassifier
        The trained CNN.
    metadata : dict[str, Any]
        The model's metadata (``load_model``): its normalisation must be this pipeline's.
    intensity : tuple[float, float]
        The section's ``(low, high)`` from ``txmorph.patches.intensity.intensity_range``.
    out : Any
        Anything accepting ``out[:, r0:r1, c0:c1] = block`` (float32 blocks), e.g. an h5py
        dataset, of shape ``(C, *probability_grid_shape(image.shape, stride))``.
    tile_size : int
        Tile side in input pixels: bounds the memory.
    device : str or torch.device
        Where the model runs.
    log : Callable[[str], None] or None
        Progress messages.
    output_stride : int or None
        Input pixels per output pixel; None: the model's native stride, the cheapest.
    tta : bool
        Test-time augmentation: every output the mean of the probabilities of its patch under
        the 8 rotations and flips (``dihedral_mean``), exact on the dense path, 8 x the work.
    """
    if len(image.shape) != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    _check_metadata(model, metadata)
    height, width = int(image.shape[0]), int(image.shape[1])
    stride = int(output_stride or model.stride)
    patch = model.patch_size
    computed = computed_stride(model, stride)
    every = stride // computed  # keep every `every`-th computed output
    grid_h, grid_w = probability_grid_shape((height, width), stride)
    expected = (model.n_classes, grid_h, grid_w)
    if hasattr(out, "shape") and tuple(out.shape) != expected:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {expected}")
    say = log or (lambda message: None)
    low, high = intensity
    per_tile = outputs_per_tile(tile_size, stride)
    # First input row/column of output 0: the patch centred at s//2 starts at s//2 - S//2.
    offset = stride // 2 - patch // 2
    row_starts = range(0, grid_h, per_tile)
    col_starts = range(0, grid_w, per_tile)
    n_tiles = len(row_starts) * len(col_starts)
    dev = torch.device(device)
    # A fused copy (BatchNorm folded into the convs) in channels_last layout on the CPU:
    # same probabilities up to float rounding, 2-3x faster; the caller's model is untouched.
    net = fused_for_inference(model).to(dev)
    layout = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    net = net.to(memory_format=layout)
    say(
        f"patch {patch}: {height}x{width} image -> {grid_h}x{grid_w} map (stride {stride}, "
        f"computed at stride {computed}) in {n_tiles} tiles on {dev}"
    )
    start = last_log = time.perf_counter()
    done = 0
    with torch.inference_mode():
        for i0 in row_starts:
            i1 = min(grid_h, i0 + per_tile)
            rows = reflect_indices(np.arange(i0 * stride + offset,
                                             (i1 - 1) * stride + offset + patch), height)
            for j0 in col_starts:
                j1 = min(grid_w, j0 + per_tile)
                cols = reflect_indices(np.arange(j0 * stride + offset,
                                                 (j1 - 1) * stride + offset + patch), width)
                window = normalise(_read_window(image, rows, cols), low, high)
                x = torch.from_numpy(np.ascontiguousarray(window))[None, None]
                x = x.to(dev).contiguous(memory_format=layout)
                if tta:
                    prob = dihedral_mean(net, x, computed, layout)[0, :, ::every, ::every]
                else:
                    logits = dense_logits(net, x, computed)[:, :, ::every, ::every]
                    prob = torch.softmax(logits, dim=1)[0]
                block = np.ascontiguousarray(prob.to("cpu", torch.float32).numpy())
                if block.shape != (model.n_classes, i1 - i0, j1 - j0):
                    raise AssertionError(f"tile gave {block.shape}, expected "
                                         f"{(model.n_classes, i1 - i0, j1 - j0)}")
                out[:, i0:i1, j0:j1] = block
                done += 1
                now = time.perf_counter()
                if now - last_log >= _LOG_EVERY_SECONDS and done < n_tiles:
                    left = (now - start) / done * (n_tiles - done)
                    say(f"patch {patch}: {done}/{n_tiles} tiles, ~{left:.0f}s left")
                    last_log = now
    elapsed = time.perf_counter() - start
    say(
        f"patch {patch}: {n_tiles} tiles in {elapsed:.1f}s "
        f"({height * width / 1e6 / max(elapsed, 1e-9):.2f} Mpx/s)"
    )


def dihedral_mean(net: PatchClassifier, x: torch.Tensor, computed: int,
                  layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """The softmax probabilities of every patch of a window, averaged over the 8 rotations
    and flips of the window (``(1, C, h, w)``).

    Exact per patch: the window spans ``(n - 1) * computed + S`` pixels a side, so output ``j``
    of the flipped window is the flipped patch of output ``n - 1 - j``, and flipping (or
    rotating) the output back lines every patch up with its own transforms. The models are
    trained with these transforms as augmentation (``txmorph.train.augment``), so the mean
    only removes what is left of the orientation's noise.
    """
    total = None
    for quarter_turns in range(4):
        for flip in (False, True):
            view = torch.rot90(x, quarter_turns, dims=(2, 3))
            view = torch.flip(view, dims=(3,)) if flip else view
            prob = torch.softmax(dense_logits(net, view.contiguous(memory_format=layout),
                                              computed), dim=1)
            prob = torch.flip(prob, dims=(3,)) if flip else prob
            prob = torch.rot90(prob, -quarter_turns, dims=(2, 3))
            total = prob if total is None else total + prob
    return total / 8


def _linear_weights(n_to: int, stride_to: int, n_from: int, stride_from: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights placing target centres on the source grid, edges clamped."""
    centres = np.arange(n_to, dtype=np.float64) * stride_to + stride_to // 2
    u = (centres - stride_from // 2) / stride_from
    u = np.clip(u, 0.0, n_from - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, n_from - 1)
    return lo, hi, (u - lo).astype(np.float32)


def ensemble_streamed(
    maps: Sequence[tuple[Any, int]], out: Any, stride_to: int, rows_per_band: int = 256,
    cols_per_block: int = 1024, map_weights: Sequence[float] | None = None,
) -> None:
    """Mean of (prob, stride) maps, each bilinearly resampled onto ``out``'s grid, written
    block by block: memory is one block, not the section. With ``map_weights`` (one per map,
    >= 0, summing to 1) the weighted mean; maps of weight 0 are not read.

    Output pixel (i, j) takes each map's value at its patch centre ``(i*t + t//2, j*t + t//2)``
    interpolated between the source centres ``k*s + s//2``; beyond the outermost source
    centres the edge values are extended. Each block reads only the source rows and columns
    its bilinear weights touch.

    Parameters
    ----------
    maps : Sequence[tuple[Any, int]]
        (array-like (C, h, w), stride) pairs that support slicing (h5py datasets, numpy arrays).
    out : Any
        (C, H', W') target receiving ``out[:, r0:r1, c0:c1] = block``.
    stride_to : int
        The stride t of ``out``'s grid.
    rows_per_band, cols_per_block : int
        Output block size written at a time.
    map_weights : Sequence[float] or None
        Weight of each map; None: the plain mean.
    """
    if not maps:
        raise ValueError("ensemble needs at least one map")
    if map_weights is not None:
        map_weights = [float(w) for w in map_weights]
        if (len(map_weights) != len(maps) or min(map_weights) < 0
                or abs(sum(map_weights) - 1) > 1e-6):
            raise ValueError(f"map_weights must be {len(maps)} numbers >= 0 summing to 1, "
                             f"got {map_weights}")
        kept = [(m, w) for m, w in zip(maps, map_weights) if w > 0]
        maps, map_weights = [m for m, _ in kept], [w for _, w in kept]
    n_classes, n_rows, n_cols = (int(n) for n in out.shape)
    for prob, _ in maps:
        if int(prob.shape[0]) != n_classes:
            raise ValueError(f"maps disagree on the number of classes: {prob.shape[0]} vs "
                             f"{n_classes}")
    weights = [(_linear_weights(n_rows, stride_to, int(p.shape[1]), s),
                _linear_weights(n_cols, stride_to, int(p.shape[2]), s)) for p, s in maps]
    for r0 in range(0, n_rows, rows_per_band):
        r1 = min(n_rows, r0 + rows_per_band)
        for c0 in range(0, n_cols, cols_per_block):
            c1 = min(n_cols, c0 + cols_per_block)
            total = np.zeros((n_classes, r1 - r0, c1 - c0), np.float32)
            for k, ((prob, _), (row_w, col_w)) in enumerate(zip(maps, weights)):
                block = _resampled_block(prob, row_w, col_w, (r0, r1), (c0, c1))
                total += block if map_weights is None else np.float32(map_weights[k]) * block
            out[:, r0:r1, c0:c1] = total / np.float32(len(maps)) if map_weights is None else total


def _resampled_block(prob: Any, row_w: tuple, col_w: tuple, rows: tuple[int, int],
                     cols: tuple[int, int]) -> np.ndarray:
    """Target block ``rows x cols`` of one map, bilinearly resampled (weights precomputed)."""
    (lo, hi, w), (c_lo, c_hi, c_w) = row_w, col_w
    (r0, r1), (c0, c1) = rows, cols
    # lo, hi are non-decreasing: the block needs source rows lo[r0]..hi[r1-1] only.
    first, last = int(lo[r0]), int(hi[r1 - 1]) + 1
    left, right = int(c_lo[c0]), int(c_hi[c1 - 1]) + 1
    source = np.asarray(prob[:, first:last, left:right], dtype=np.float32)
    b_lo, b_hi, b_w = lo[r0:r1] - first, hi[r0:r1] - first, w[r0:r1][None, :, None]
    band = source[:, b_lo, :] * (1 - b_w) + source[:, b_hi, :] * b_w
    k_lo, k_hi, k_w = c_lo[c0:c1] - left, c_hi[c0:c1] - left, c_w[c0:c1][None, None, :]
    return band[:, :, k_lo] * (1 - k_w) + band[:, :, k_hi] * k_w
