"""Exact dense evaluation (filter rarefaction) and stride-1 probability maps per patch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from txmorph.probmap.dense import (
    batch_to_space,
    computed_stride,
    conv_flops_per_output,
    dense_logits,
    output_strides,
    rarefaction_plan,
    space_to_batch,
)
from txmorph.patches.intensity import intensity_range, normalise
from txmorph.probmap.paint import paint_probabilities, probability_grid_shape
from txmorph.train.model import INTENSITY_METHOD, PatchClassifier, fused_for_inference

METADATA = {"normalisation": {"intensity_method": INTENSITY_METHOD}}
DEFAULT_SIZES = [32, 64, 96, 128, 160]


def _model(patch_size: int) -> PatchClassifier:
    """Random weights with non-trivial BatchNorm statistics and standardisation."""
    torch.manual_seed(patch_size)
    model = PatchClassifier(patch_size, 4)
    model.set_standardisation(0.4, 0.6)
    generator = torch.Generator().manual_seed(patch_size)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


def test_strides_and_plan() -> None:
    model = _model(160)
    assert output_strides(model) == [1, 5, 10, 20]
    assert rarefaction_plan(model, 1) == [True, True, True]
    assert rarefaction_plan(model, 5) == [False, True, True]
    assert rarefaction_plan(model, 20) == [False, False, False]
    assert computed_stride(model, 4) == 1 and computed_stride(model, 15) == 5
    with pytest.raises(ValueError, match="possible"):
        rarefaction_plan(model, 4)
    assert output_strides(_model(32)) == [1, 2, 4]


def test_space_to_batch_round_trip() -> None:
    z = torch.arange(2 * 3 * 6 * 9, dtype=torch.float32).reshape(2, 3, 6, 9)
    phases = space_to_batch(z, 3)
    assert phases.shape == (18, 3, 2, 3)
    torch.testing.assert_close(phases[1 * 3 * 2 + 2 * 2 + 1], z[1, :, 1::3, 2::3])
    assert torch.equal(batch_to_space(phases, 3), z)


@pytest.mark.parametrize("patch_size", [32, 96])
def test_dense_logits_equal_per_patch_at_every_stride(patch_size: int) -> None:
    model = fused_for_inference(_model(patch_size))
    x = torch.rand(1, 1, patch_size + 29, patch_size + 17)
    for stride in output_strides(model):
        with torch.inference_mode():
            dense = dense_logits(model, x, stride)
            n_rows, n_cols = dense.shape[-2:]
            assert (n_rows, n_cols) == ((29 // stride) + 1, (17 // stride) + 1)
            for i in range(n_rows):
                crops = torch.cat([x[:, :, i * stride:i * stride + patch_size,
                                     j * stride:j * stride + patch_size] for j in range(n_cols)])
                torch.testing.assert_close(dense[0, :, i].T, model(crops), atol=1e-5, rtol=1e-5)


def test_flops_per_output_shrink_with_rarefaction() -> None:
    model = _model(64)
    per_output = [conv_flops_per_output(model, s) for s in output_strides(model)]
    assert per_output == sorted(per_output)  # coarser strides do more work per output
    # Stride 1: each conv evaluated once per output pixel.
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    expected = sum(2 * c.in_channels * c.out_channels * c.kernel_size[0] * c.kernel_size[1]
                   for c in convs)
    assert per_output[0] == expected


def _per_patch(model, image, low, high, points, stride) -> np.ndarray:
    size = model.patch_size
    pad = size + stride
    padded = np.pad(image, pad, mode="reflect")
    patches = [padded[i * stride + stride // 2 - size // 2 + pad:][:size,
                      j * stride + stride // 2 - size // 2 + pad:][:, :size] for i, j in points]
    x = torch.from_numpy(normalise(np.stack(patches), low, high))[:, None]
    with torch.inference_mode():
        return torch.softmax(model(x), dim=1).numpy()


@pytest.mark.parametrize("patch_size", DEFAULT_SIZES)
def test_stride_one_map_equals_per_patch(patch_size: int) -> None:
    """Every default size: max |dp| <= 1e-4 at random locations, corners and borders."""
    rng = np.random.default_rng(patch_size)
    shape = (83, 71)
    image = (rng.random(shape) * 3000 + np.arange(shape[1]) * 9).astype(np.uint16)
    model = _model(patch_size)
    low, high = intensity_range(image)
    out = np.full((4, *probability_grid_shape(shape, 1)), np.nan, dtype=np.float32)
    paint_probabilities(image, model, METADATA, (low, high), out, tile_size=32, output_stride=1)
    assert np.isfinite(out).all()
    h, w = shape
    border = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (0, 30), (h - 1, 11), (40, 0),
              (17, w - 1)]
    points = np.array(border + [tuple(p) for p in rng.integers(0, shape, size=(200, 2))])
    expected = _per_patch(model, image, low, high, points, 1)
    got = out[:, points[:, 0], points[:, 1]].T
    assert np.abs(got - expected).max() <= 1e-4


def test_subsampled_stride_is_exact() -> None:
    """A stride that is not computable directly (4 for size 96) is computed at 1, subsampled."""
    rng = np.random.default_rng(3)
    image = rng.random((50, 61)).astype(np.float32)
    model = _model(96)
    out = np.zeros((4, *probability_grid_shape(image.shape, 4)), np.float32)
    messages: list[str] = []
    paint_probabilities(image, model, METADATA, (0.0, 1.0), out, tile_size=24, output_stride=4,
                        log=messages.append)
    assert "computed at stride 1" in messages[0]
    points = np.array([(i, j) for i in range(out.shape[1]) for j in range(out.shape[2])])
    expected = _per_patch(model, image, 0.0, 1.0, points, 4)
    assert np.abs(out[:, points[:, 0], points[:, 1]].T - expected).max() <= 1e-4


@pytest.mark.parametrize("patch_size, stride", [(64, 8), (96, 4)])
def test_dihedral_mean_map_equals_per_patch_mean(patch_size: int, stride: int) -> None:
    """probmap.tta: each output is the mean over its own patch's 8 rotations and flips, on a
    non-square image, at a native and at a subsampled stride (tiles of uneven shapes)."""
    rng = np.random.default_rng(patch_size)
    image = (rng.random((57, 70)) * 3000 + np.arange(70) * 9).astype(np.uint16)
    model = _model(patch_size)
    with torch.no_grad():  # confident outputs, so that orientation shows in the probabilities
        model.head[-1].weight.mul_(100.0)
    low, high = intensity_range(image)
    out = np.zeros((4, *probability_grid_shape(image.shape, stride)), np.float32)
    paint_probabilities(image, model, METADATA, (low, high), out, tile_size=40,
                        output_stride=stride, tta=True)
    points = np.array([(i, j) for i in range(out.shape[1]) for j in range(out.shape[2])])
    size, pad = model.patch_size, model.patch_size + stride
    padded = np.pad(image, pad, mode="reflect")
    patches = np.stack([padded[i * stride + stride // 2 - size // 2 + pad:][:size,
                               j * stride + stride // 2 - size // 2 + pad:][:, :size]
                        for i, j in points])
    x = torch.from_numpy(normalise(patches, low, high))[:, None]
    with torch.inference_mode():
        views = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        views += [torch.flip(v, dims=(3,)) for v in views]
        expected = torch.stack([torch.softmax(model(v), dim=1) for v in views]).mean(0).numpy()
    plain = np.zeros_like(out)
    paint_probabilities(image, model, METADATA, (low, high), plain, tile_size=40,
                        output_stride=stride)
    assert np.abs(out[:, points[:, 0], points[:, 1]].T - expected).max() <= 1e-4
    assert np.abs(out - plain).max() > 5e-4  # the transforms do change a random model's map
