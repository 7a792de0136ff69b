"""Exact dense evaluation of a ``PatchClassifier`` at any output stride, down to 1 pixel.

Run on a large image, the fully-convolutional classifier already gives the patch
classifications on its *native* grid: every strided layer (the ``d x d`` average pool, then
one 2x2 max-pool per conv block) multiplies the spacing of the patches it evaluates, to
``d * 2**blocks`` input pixels. A finer grid needs those strides removed without changing what
each output sees: *filter rarefaction* (Li et al. 2014; also "à trous" / dilated inference).
A rarefied pooling layer runs with stride 1, and every layer after it would need its kernels
dilated by the removed factor. Dilated kernels are slow on CPUs, so the equivalent
*space-to-batch* form is used instead (as TensorFlow's atrous convolution does): after the
stride-1 pooling, the ``f x f`` interleaved sub-grids ("phases") are moved into the batch
dimension, the rest of the network runs unchanged and undilated on each phase, and at the end
the phases are interleaved back (batch-to-space). Every output value is computed by the same
operations on the same pixels as the per-patch classifier, so the map equals per-patch
classification up to float rounding, while work shared by overlapping patches is done once.

Which strided layers are rarefied decides the output stride: it is the product of the
strides kept, which must be those of the first layers (``output_strides``: 1, d, 2d, 4d for
two blocks). Keeping early strides is also the cheap choice: they shrink the maps that the
later, wider layers see.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from txmorph.train.model import PatchClassifier


def stage_strides(model: PatchClassifier) -> list[int]:
    """Strides of the strided layers in order: the input average pool, then each max-pool.

    Parameters
    ----------
    model : PatchClassifier
        The CNN.

    Returns
    -------
    list[int]
        ``[d, 2, 2, ...]`` (d = patch_size / network_input).
    """
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    return [model.downsample] + [int(m.stride if isinstance(m.stride, int) else m.stride[0])
                                 for m in pools]


def output_strides(model: PatchClassifier) -> list[int]:
    """Output strides the model evaluates exactly without waste, ascending: 1, d, 2d, ...

    Only the strides of a *prefix* of the strided layers can be kept: a stride kept after a
    rarefied layer would space the outputs of each phase unevenly (offsets a + 6b, not 2k).

    Parameters
    ----------
    model : PatchClassifier
        The CNN.

    Returns
    -------
    list[int]
        The cumulative products of the prefixes of :func:`stage_strides`, starting at 1.
    """
    strides, products = stage_strides(model), [1]
    for k in range(len(strides)):
        products.append(math.prod(strides[: k + 1]))
    return sorted(set(products))


def computed_stride(model: PatchClassifier, output_stride: int) -> int:
    """The largest exactly computable stride dividing ``output_stride`` (see ``output_strides``).

    A map at ``output_stride`` is computed at this stride and every ``output_stride //
    computed`` th output kept: still exact, but with that factor squared of extra work.

    Parameters
    ----------
    model : PatchClassifier
        The CNN.
    output_stride : int
        The wanted stride.

    Returns
    -------
    int
        One of ``output_strides(model)``.
    """
    if output_stride < 1:
        raise ValueError(f"output stride must be >= 1, got {output_stride}")
    return max(s for s in output_strides(model) if output_stride % s == 0)


def rarefaction_plan(model: PatchClassifier, output_stride: int) -> list[bool]:
    """For each strided layer, whether it is rarefied (run at stride 1) to reach the stride.

    The strides of the first layers are kept as long as their product divides the output
    stride (keeping early strides saves the most work); every later layer is rarefied.

    Parameters
    ----------
    model : PatchClassifier
        The CNN.
    output_stride : int
        One of ``output_strides(model)``; another raises ``ValueError``.

    Returns
    -------
    list[bool]
        One flag per strided layer (:func:`stage_strides` order).
    """
    if output_stride not in output_strides(model):
        raise ValueError(
            f"output stride {output_stride} is not exactly computable for patch size "
            f"{model.patch_size}; possible: {output_strides(model)}"
        )
    kept, plan = 1, []
    for stride in stage_strides(model):
        keep = not any(plan) and output_stride % (kept * stride) == 0
        kept *= stride if keep else 1
        plan.append(not keep and stride > 1)
    return plan


def space_to_batch(z: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, h, w) -> (f*f*B, C, h/f, w/f); phase (a, b) = ``z[..., a::f, b::f]``.

    The result is channels_last (one copy), the layout the CPU convolutions want.

    Parameters
    ----------
    z : torch.Tensor
        (B, C, h, w), h and w multiples of ``factor``.
    factor : int
        The stride f whose phases move into the batch.

    Returns
    -------
    torch.Tensor
        (f*f*B, C, h/f, w/f), phase-major.
    """
    b, c, h, w = z.shape
    if h % factor or w % factor:
        raise AssertionError(f"space_to_batch: {h}x{w} not divisible by {factor}")
    z = z.permute(0, 2, 3, 1).reshape(b, h // factor, factor, w // factor, factor, c)
    z = z.permute(2, 4, 0, 1, 3, 5).reshape(factor * factor * b, h // factor, w // factor, c)
    return z.permute(0, 3, 1, 2)


def batch_to_space(z: torch.Tensor, factor: int) -> torch.Tensor:
    """Inverse of ``space_to_batch``: interleave the ``f*f`` phases back into one grid.

    Parameters
    ----------
    z : torch.Tensor
        (f*f*B, C, h, w), phase-major.
    factor : int
        The stride f.

    Returns
    -------
    torch.Tensor
        (B, C, h*f, w*f).
    """
    fb, c, h, w = z.shape
    b = fb // (factor * factor)
    z = z.permute(0, 2, 3, 1).reshape(factor, factor, b, h, w, c)
    z = z.permute(2, 3, 0, 4, 1, 5).reshape(b, h * factor, w * factor, c)
    return z.permute(0, 3, 1, 2)


def _box_mean(z: torch.Tensor, size: int) -> torch.Tensor:
    """Stride-1 ``size x size`` mean, separably (2*size instead of size**2 adds per pixel)."""
    z = F.avg_pool2d(z, (size, 1), stride=1)
    return F.avg_pool2d(z, (1, size), stride=1)


def _max2(z: torch.Tensor) -> torch.Tensor:
    """Stride-1 2x2 max-pool as two elementwise maxima (faster than ``max_pool2d`` on CPU)."""
    z = torch.maximum(z[..., :-1, :], z[..., 1:, :])
    return torch.maximum(z[..., :, :-1], z[..., :, 1:])


def _head(head: nn.Sequential, z: torch.Tensor) -> torch.Tensor:
    """The pooled head with its average moved after the final 1x1 conv.

    Both are linear, so they commute exactly (up to rounding); averaging the C class logits
    instead of the ``hidden`` features makes the pooling ``hidden / C`` times cheaper.
    Dropout is the identity in eval mode.
    """
    layers = [m for m in head if not isinstance(m, nn.Dropout)]
    pools = [m for m in layers if isinstance(m, nn.AvgPool2d)]
    if len(pools) != 1 or layers[-1] is pools[0] or not isinstance(layers[-1], nn.Conv2d):
        return head(z)  # an unexpected head: evaluate as it is
    for layer in layers:
        if layer is not pools[0]:
            z = layer(z)
    size = pools[0].kernel_size
    return _box_mean(z, size if isinstance(size, int) else size[0])


def dense_logits(model: PatchClassifier, x: torch.Tensor, output_stride: int) -> torch.Tensor:
    """Logits (N, C, n_r, n_c) of the patches whose top-left corners are ``(i*t, j*t)``.

    Every patch that fits in ``x`` on the stride-``t`` grid; equals ``model(patch)`` for each
    of them up to float rounding. The model should be in eval mode.

    Parameters
    ----------
    model : PatchClassifier
        The CNN (eval mode).
    x : torch.Tensor
        (N, 1, H, W) normalised images, H, W >= patch size.
    output_stride : int
        The stride t, one of ``output_strides(model)``.

    Returns
    -------
    torch.Tensor
        (N, C, n_r, n_c) logits, ``n_r = (H - S) // t + 1`` (likewise columns).
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected input (N, 1, H, W), got {tuple(x.shape)}")
    size, t = model.patch_size, int(output_stride)
    if x.shape[-2] < size or x.shape[-1] < size:
        raise ValueError(f"input {tuple(x.shape)} smaller than patch size {size}")
    plan = rarefaction_plan(model, t)
    n_rows, n_cols = (x.shape[-2] - size) // t + 1, (x.shape[-1] - size) // t + 1
    # Pad so that every stride-1 length divides by every factor: S - 1 + native * k pixels
    # give exactly k * native stride-1 outputs. Padded outputs are cropped off at the end.
    native = model.stride
    rows = size - 1 + native * math.ceil(n_rows * t / native)
    cols = size - 1 + native * math.ceil(n_cols * t / native)
    z = F.pad(x, (0, cols - x.shape[-1], 0, rows - x.shape[-2]))
    factors: list[int] = []
    strides = iter(zip(stage_strides(model), plan))

    def strided(z: torch.Tensor, kept_op, stride_one_op) -> torch.Tensor:
        stride, rarefy = next(strides)
        if not rarefy:
            return kept_op(z)
        factors.append(stride)
        return space_to_batch(stride_one_op(z), stride)

    d = model.downsample
    if d > 1:
        z = strided(z, lambda v: F.avg_pool2d(v, d), lambda v: _box_mean(v, d))
    else:
        next(strides)
    z = (z - model.input_mean) / model.input_std
    for layer in model.features:
        if isinstance(layer, nn.MaxPool2d):
            z = strided(z, layer, _max2)
        else:
            z = layer(z)
    z = _head(model.head, z)
    for factor in reversed(factors):
        z = batch_to_space(z, factor)
    return z[:, :, :n_rows, :n_cols]


def conv_flops_per_output(model: PatchClassifier, output_stride: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of all convolutions per output pixel of a dense pass.

    Parameters
    ----------
    model : PatchClassifier
        The CNN.
    output_stride : int
        One of ``output_strides(model)``.

    Returns
    -------
    float
        FLOPs per output pixel.
    """
    plan = rarefaction_plan(model, output_stride)
    # Pixels each layer evaluates per output: the product of the strides kept after it.
    kept_after = [math.prod(s for s, r in zip(stage_strides(model)[k + 1:], plan[k + 1:]) if not r)
                  for k in range(len(plan))]
    flops, stage = 0.0, 0
    for layer in list(model.features) + list(model.head):
        if isinstance(layer, nn.MaxPool2d):
            stage += 1
        elif isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            per = kept_after[stage] ** 2 if stage < len(plan) else 1
            flops += 2.0 * layer.in_channels * layer.out_channels * k * per
    return flops
