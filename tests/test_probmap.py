"""Dense probability maps equal per-patch classification; resampling and ensembling."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from txmorph.errors import InputError
from txmorph.patches.intensity import intensity_range, normalise
from txmorph.probmap.mapsio import (
    BASELINE,
    ENSEMBLE,
    create_probability_dataset,
    read_probability_map,
)
from txmorph.train.model import INTENSITY_METHOD, PatchClassifier
from txmorph.probmap.paint import (
    ensemble_streamed,
    outputs_per_tile,
    paint_probabilities,
    probability_grid_shape,
    reflect_indices,
)

METADATA = {"normalisation": {"intensity_method": INTENSITY_METHOD}}


def resample_probabilities(prob: np.ndarray, stride_from: int, grid_shape_to: tuple[int, int],
                           stride_to: int) -> np.ndarray:
    """One (C, h, w) map resampled onto another grid stride: the streamed ensemble of one map."""
    out = np.zeros((prob.shape[0], *grid_shape_to), np.float32)
    ensemble_streamed([(np.asarray(prob, np.float32), stride_from)], out, stride_to)
    return out


def ensemble(maps: list[tuple[np.ndarray, int]], stride_to: int,
             grid_shape_to: tuple[int, int]) -> np.ndarray:
    """In-memory reference for the streamed ensemble: the mean of the resampled maps."""
    if not maps:
        raise ValueError("ensemble needs at least one map")
    resampled = [resample_probabilities(prob, stride, grid_shape_to, stride_to)
                 for prob, stride in maps]
    return sum(resampled[1:], resampled[0]) / np.float32(len(maps))


def _model(patch_size: int, trained: bool) -> PatchClassifier:
    torch.manual_seed(patch_size)
    model = PatchClassifier(patch_size, 4)
    if trained:  # a few steps so that BatchNorm stats and standardisation are non-trivial
        model.set_standardisation(0.4, 0.6)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(2):
            x = torch.rand(8, 1, patch_size, patch_size)
            loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 4, (8,)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def _check_locations(grid: tuple[int, int], rng: np.random.Generator, n_random: int) -> np.ndarray:
    """All four corners, points on every border, and random grid locations."""
    h, w = grid
    points = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]
    for _ in range(4):
        points += [(0, rng.integers(w)), (h - 1, rng.integers(w)),
                   (rng.integers(h), 0), (rng.integers(h), w - 1)]
    points += [tuple(p) for p in rng.integers(0, (h, w), size=(n_random, 2))]
    return np.array(points, dtype=np.int64)


def _per_patch(model: PatchClassifier, image: np.ndarray, low: float, high: float,
               points: np.ndarray) -> np.ndarray:
    """Reference: reflect-pad, cut the patch centred at (i*s + s//2, j*s + s//2), classify."""
    size, s = model.patch_size, model.stride
    pad = size + s
    padded = np.pad(image, pad, mode="reflect")
    patches = []
    for i, j in points:
        top = i * s + s // 2 - size // 2 + pad
        left = j * s + s // 2 - size // 2 + pad
        patches.append(padded[top : top + size, left : left + size])
    x = torch.from_numpy(normalise(np.stack(patches), low, high))[:, None]
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).numpy()


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize(("patch_size", "shape"), [(32, (150, 133)), (64, (150, 133)), (64, (21, 30))])
def test_dense_map_equals_per_patch(patch_size: int, shape: tuple[int, int], trained: bool) -> None:
    rng = np.random.default_rng(patch_size + shape[0])
    image = (rng.random(shape) * 3000 + np.arange(shape[1]) * 7).astype(np.uint16)
    model = _model(patch_size, trained)
    low, high = intensity_range(image)
    grid = probability_grid_shape(shape, model.stride)
    out = np.full((4, *grid), np.nan, dtype=np.float32)
    messages: list[str] = []
    # tile_size = 5 strides: several tiles each way, so tile seams are checked too
    paint_probabilities(image, model, METADATA, (low, high), out, tile_size=5 * model.stride,
                        log=messages.append)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-5)
    points = _check_locations(grid, rng, 50)
    expected = _per_patch(model, image, low, high, points)
    got = out[:, points[:, 0], points[:, 1]].T
    assert np.abs(got - expected).max() <= 1e-5
    assert messages and "tiles" in messages[-1]


def test_paint_into_h5py_dataset(tmp_path) -> None:
    image = np.random.default_rng(1).random((70, 90)).astype(np.float32)
    model = _model(32, trained=True)
    grid = probability_grid_shape(image.shape, model.stride)
    ref = np.zeros((4, *grid), np.float32)
    paint_probabilities(image, model, METADATA, (0.0, 1.0), ref)
    with h5py.File(tmp_path / "p.h5", "w") as handle:
        handle.create_dataset("image", data=image)
        dset = handle.create_dataset("prob", shape=(4, *grid), dtype="f4", chunks=(4, 8, 8))
        paint_probabilities(handle["image"], model, METADATA, (0.0, 1.0), dset, tile_size=40)
        np.testing.assert_allclose(dset[...], ref, atol=1e-6)


def test_paint_checks_inputs() -> None:
    model = _model(32, trained=False)
    image = np.zeros((40, 40), np.uint8)
    with pytest.raises(ValueError, match="expected"):
        paint_probabilities(image, model, METADATA, (0, 1), np.zeros((4, 9, 10), np.float32))
    other = {"normalisation": {"intensity_method": "global_minmax"}}
    with pytest.raises(InputError, match="retrain"):
        paint_probabilities(image, model, other, (0, 1), np.zeros((4, 10, 10), np.float32))


def test_grid_shape_and_reflection() -> None:
    assert probability_grid_shape((100, 81), 4) == (25, 21)
    assert probability_grid_shape((1, 20), 20) == (1, 1)
    assert outputs_per_tile(1024, 4) == 256 and outputs_per_tile(1024, 20) == 51
    assert outputs_per_tile(3, 20) == 1
    for n in (1, 2, 3, 7):
        for pad in (0, 1, 5, 17):
            expected = np.pad(np.arange(n), pad, mode="reflect")
            assert np.array_equal(reflect_indices(np.arange(-pad, n + pad), n), expected)


def test_resample_identity_and_constant() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((3, 7, 9)).astype(np.float32)
    assert np.array_equal(resample_probabilities(prob, 8, (7, 9), 8), prob)
    const = np.full((2, 5, 6), 0.25, np.float32)
    for s_from, s_to, shape in [(20, 4, (25, 30)), (4, 20, (2, 2)), (8, 8, (9, 3))]:
        out = resample_probabilities(const, s_from, shape, s_to)
        assert out.shape == (2, *shape) and out.dtype == np.float32
        np.testing.assert_allclose(out, 0.25, atol=1e-7)


@pytest.mark.parametrize(("s_from", "s_to"), [(20, 4), (8, 4), (4, 20), (5, 3)])
def test_resample_reproduces_linear_ramp(s_from: int, s_to: int) -> None:
    h, w = 12, 15
    centres_r = np.arange(h) * s_from + s_from // 2
    centres_c = np.arange(w) * s_from + s_from // 2
    ramp = (0.1 + 0.002 * centres_r[:, None] - 0.001 * centres_c[None, :]).astype(np.float32)
    shape = probability_grid_shape((h * s_from, w * s_from), s_to)
    out = resample_probabilities(ramp[None], s_from, shape, s_to)[0]
    rows = np.arange(shape[0]) * s_to + s_to // 2
    cols = np.arange(shape[1]) * s_to + s_to // 2
    expected = 0.1 + 0.002 * rows[:, None] - 0.001 * cols[None, :]
    inside_r = (rows >= centres_r[0]) & (rows <= centres_r[-1])
    inside_c = (cols >= centres_c[0]) & (cols <= centres_c[-1])
    assert inside_r.sum() >= 2 and inside_c.sum() >= 2
    np.testing.assert_allclose(out[np.ix_(inside_r, inside_c)], expected[np.ix_(inside_r, inside_c)],
                               atol=1e-6)


def test_edge_values_extended() -> None:
    prob = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    out = resample_probabilities(prob, 20, (15, 20), 4)  # centres 2..58 vs source 10, 30, 50
    assert np.all(out[0, :2, 0] == prob[0, 0, 0])  # rows 2 and 6 lie before centre 10
    assert np.all(out[0, -2:, -1] == prob[0, -1, -1])


def test_ensemble_mean_of_resampled_maps() -> None:
    rng = np.random.default_rng(2)
    fine = rng.dirichlet(np.ones(3), size=(25, 20)).transpose(2, 0, 1).astype(np.float32)
    coarse = rng.dirichlet(np.ones(3), size=(5, 4)).transpose(2, 0, 1).astype(np.float32)
    mixed = ensemble([(fine, 4), (coarse, 20)], 4, (25, 20))
    expected = (fine + resample_probabilities(coarse, 20, (25, 20), 4)) / 2
    np.testing.assert_allclose(mixed, expected, atol=1e-7)
    np.testing.assert_allclose(mixed.sum(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(ensemble([(fine, 4)], 4, (25, 20)), fine)
    with pytest.raises(ValueError):
        ensemble([], 4, (25, 20))


def test_streamed_ensemble_equals_in_memory(tmp_path) -> None:
    rng = np.random.default_rng(7)
    fine, coarse = rng.random((3, 26, 21)).astype(np.float32), rng.random((3, 6, 5)).astype(np.float32)
    expected = ensemble([(fine, 4), (coarse, 20)], 4, (26, 21))
    with h5py.File(tmp_path / "m.h5", "w") as handle:
        sources = [(handle.create_dataset("fine", data=fine), 4),
                   (handle.create_dataset("coarse", data=coarse), 20)]
        out = handle.create_dataset("out", shape=(3, 26, 21), dtype="f4")
        # blocks cross the coarse map's rows and columns
        ensemble_streamed(sources, out, 4, rows_per_band=5, cols_per_block=4)
        np.testing.assert_allclose(out[...], expected, atol=1e-6)


def test_paint_from_mapped_canonical_image(tmp_path) -> None:
    """The rule reads the canonical TIFF window by window; same map as from memory."""
    import tifffile

    from txmorph.io.canonical import MappedImage

    image = (np.random.default_rng(2).random((90, 70)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "image.tif", image, bigtiff=True)
    mapped = MappedImage(tmp_path / "image.tif")
    assert mapped.shape == image.shape and intensity_range(mapped) == intensity_range(image)
    model = _model(32, trained=True)
    grid = probability_grid_shape(image.shape, model.stride)
    expected = np.zeros((4, *grid), np.float32)
    got = np.zeros_like(expected)
    paint_probabilities(image, model, METADATA, (0.0, 4000.0), expected, tile_size=32)
    paint_probabilities(mapped, model, METADATA, (0.0, 4000.0), got, tile_size=32)
    assert np.array_equal(got, expected)
    tifffile.imwrite(tmp_path / "packed.tif", image, compression="zlib")
    with pytest.raises(ValueError, match="import_image"):
        MappedImage(tmp_path / "packed.tif")


@pytest.mark.parametrize("model, patch_size", [("size64", 64), (ENSEMBLE, None),
                                               (BASELINE, None)])
def test_map_files_say_which_model_made_them(tmp_path, model, patch_size):
    path = tmp_path / "map.h5"
    with h5py.File(path, "w") as f:
        create_probability_dataset(f, ["a", "b"], (3, 4), 8, model=model,
                                   patch_size=patch_size)[...] = 0.5
        assert ("patch_size" in f.attrs) == (patch_size is not None)
    prob_map = read_probability_map(path)
    assert (prob_map.model, prob_map.patch_size, prob_map.stride) == (model, patch_size, 8)
    assert prob_map.classes == ["a", "b"] and prob_map.probabilities.shape == (2, 3, 4)


@pytest.mark.parametrize("model, patch_size", [("size64", None), ("size64", 32),
                                               (ENSEMBLE, 64), ("", None)])
def test_map_file_model_and_patch_size_must_agree(tmp_path, model, patch_size):
    with h5py.File(tmp_path / "map.h5", "w") as f, pytest.raises(ValueError, match="patch"):
        create_probability_dataset(f, ["a", "b"], (3, 4), 8, model=model, patch_size=patch_size)


@pytest.mark.parametrize("name, patch_size, model, read_size", [
    ("ensemble", 0, ENSEMBLE, None), ("baseline", 0, BASELINE, None),
    ("size32", 32, "size32", 32)])
def test_map_files_written_before_the_model_marker_still_read(tmp_path, name, patch_size,
                                                              model, read_size):
    # Earlier files: no `model` attribute, patch_size 0 for any map that is not one CNN.
    path = tmp_path / f"{name}.h5"
    with h5py.File(path, "w") as f:
        f["probabilities"] = np.full((2, 3, 4), 0.5, np.float32)
        f.attrs["classes"], f.attrs["stride"], f.attrs["patch_size"] = ["a", "b"], 4, patch_size
    prob_map = read_probability_map(path)
    assert (prob_map.model, prob_map.patch_size, prob_map.stride) == (model, read_size, 4)


def test_adapted_batchnorm_statistics_are_the_target_sections() -> None:
    from txmorph.probmap.adapt import adapt_batchnorm, sample_patches

    model = _model(32, trained=True)
    before = [m.running_mean.clone() for m in model.modules()
              if isinstance(m, torch.nn.BatchNorm2d)]
    rng = np.random.default_rng(5)
    # A target section brighter and with another texture than anything trained on.
    image = (rng.random((120, 140)) * 2000 + 1500).astype(np.uint16)
    mask = np.zeros(image.shape, bool)
    mask[20:100, 30:120] = True
    low, high = intensity_range(image)
    patches = sample_patches(image, mask, 32, 300, low, high, np.random.default_rng(0))
    assert patches.shape == (300, 32, 32) and patches.dtype == np.float32
    adapted = adapt_batchnorm(model, patches, batch_size=300)  # one batch: exact statistics
    norms = [m for m in adapted.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # The first BatchNorm's statistics: those of its input over the target's patches.
    first_norm = next(i for i, m in enumerate(adapted.features)
                      if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        z = adapted.pool(torch.from_numpy(patches)[:, None])
        z = (z - adapted.input_mean) / adapted.input_std
        feature = adapted.features[:first_norm](z)
    np.testing.assert_allclose(norms[0].running_mean.numpy(),
                               feature.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(norms[0].running_var.numpy(),
                               feature.var(dim=(0, 2, 3), unbiased=True).numpy(), rtol=1e-4)
    # The trained model is untouched and the adapted one is another network.
    after = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not torch.allclose(norms[0].running_mean, before[0])
    # Painting with the adapted network equals patch-by-patch inference with it.
    grid = probability_grid_shape(image.shape, adapted.stride)
    out = np.full((4, *grid), np.nan, dtype=np.float32)
    paint_probabilities(image, adapted, METADATA, (low, high), out, tile_size=40)
    points = _check_locations(grid, rng, 40)
    expected = _per_patch(adapted, image, low, high, points)
    assert np.abs(out[:, points[:, 0], points[:, 1]].T - expected).max() <= 1e-5
    # Same seed, same patches; no tissue, no patches.
    again = sample_patches(image, mask, 32, 300, low, high, np.random.default_rng(0))
    assert np.array_equal(again, patches)
    assert len(sample_patches(image, np.zeros_like(mask), 32, 10, low, high, rng)) == 0


def test_weighted_ensemble_is_the_weighted_mean_and_skips_zero_weights() -> None:
    rng = np.random.default_rng(8)
    fine, coarse = rng.random((3, 26, 21)).astype(np.float32), rng.random((3, 6, 5)).astype(np.float32)
    alone_fine = ensemble([(fine, 4)], 4, (26, 21))
    alone_coarse = ensemble([(coarse, 20)], 4, (26, 21))
    out = np.zeros((3, 26, 21), np.float32)
    ensemble_streamed([(fine, 4), (coarse, 20)], out, 4, map_weights=[0.25, 0.75])
    np.testing.assert_allclose(out, 0.25 * alone_fine + 0.75 * alone_coarse, atol=1e-6)

    class Unreadable:  # a weight-0 map is never read
        shape = coarse.shape

        def __getitem__(self, item):
            raise AssertionError("a map of weight 0 was read")

    ensemble_streamed([(fine, 4), (Unreadable(), 20)], out, 4, map_weights=[1.0, 0.0])
    np.testing.assert_allclose(out, alone_fine, atol=1e-6)
    with pytest.raises(ValueError, match="summing to 1"):
        ensemble_streamed([(fine, 4), (coarse, 20)], out, 4, map_weights=[0.5, 0.6])
