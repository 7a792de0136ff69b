"""The non-CNN baseline: features, fitting, painting, saving (txmorph.baseline)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from txmorph.baseline import (FeatureSettings, STATISTICS, feature_maps, feature_names,
                              features_at, fit_logistic, load_model, nuclei_centres,
                              paint_baseline, save_model, section_threshold,
                              window_sizes)
from txmorph.patches.intensity import intensity_range, normalise
from txmorph.probmap.mapsio import BASELINE, create_probability_dataset, read_probability_map
from txmorph.probmap.paint import probability_grid_shape

SETTINGS = FeatureSettings(windows=(8, 24), nucleus_diameter_px=6.0)


def _blobs(shape, centres, radius, value=1000.0, rng=None):
    """uint16 image of disks (nuclei) on a dim background with a little noise."""
    rows, cols = np.indices(shape)
    image = np.full(shape, 100.0)
    for r, c in centres:
        image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = value
    if rng is not None:
        image += rng.normal(0, 10, shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


def _two_textures(rng, shape=(96, 192)):
    """Left half: sparse small nuclei; right half: densely packed large nuclei."""
    sparse = [(r, c) for r in range(8, shape[0], 24) for c in range(8, shape[1] // 2, 24)]
    dense = [(r, c) for r in range(5, shape[0], 11) for c in range(shape[1] // 2 + 5, shape[1], 11)]
    left = _blobs(shape, sparse, 2, rng=rng)
    right = _blobs(shape, dense, 4, rng=rng)
    image = left.copy()
    image[:, shape[1] // 2:] = right[:, shape[1] // 2:]
    return image


def test_window_sizes_from_patch_sizes():
    assert window_sizes([32, 64, 96, 128, 160]) == (32, 96, 160)
    assert window_sizes([64, 32]) == (32, 64)
    assert window_sizes([48]) == (48,)
    assert window_sizes([32, 64, 96], n=2) == (32, 96)


def test_feature_names_and_shape():
    assert feature_names(SETTINGS) == [f"{s}_{w}" for w in (8, 24) for s in STATISTICS]
    maps = feature_maps(np.zeros((30, 40)), 0.5, SETTINGS)
    assert maps.shape == (8, 30, 40) and maps.dtype == np.float32


def test_features_of_a_constant_and_a_half_bright_image():
    flat = feature_maps(np.full((40, 40), 0.3), 0.5, SETTINGS)
    assert np.allclose(flat[0], 0.3) and np.allclose(flat[1], 0, atol=1e-6)
    assert np.allclose(flat[2], 0) and np.allclose(flat[3], 0)  # nothing above the threshold
    half = np.zeros((40, 40))
    half[:, 20:] = 1.0
    maps = feature_maps(half, 0.5, SETTINGS)
    # An 8-px window centred at column 20 covers columns 16..23: half bright.
    assert maps[0, 10, 20] == pytest.approx(0.5) and maps[2, 10, 20] == pytest.approx(0.5)
    assert maps[1, 10, 20] == pytest.approx(0.5)  # std of a 50/50 mix of 0 and 1
    assert maps[0, 10, 2] == pytest.approx(0) and maps[0, 10, 37] == pytest.approx(1)


def test_nuclei_are_counted_once_each():
    centres = [(10, 10), (10, 30), (30, 10), (30, 30), (20, 20)]
    image = normalise(_blobs((40, 40), centres, 3), 100, 1000)
    peaks = nuclei_centres(image, 0.5, SETTINGS)
    assert peaks.sum() == len(centres)
    assert all(peaks[r - 1:r + 2, c - 1:c + 2].any() for r, c in centres)


def test_section_threshold_splits_nuclei_from_background():
    image = _blobs((64, 64), [(16, 16), (40, 40)], 6, rng=np.random.default_rng(0))
    low, high = intensity_range(image)
    threshold = section_threshold(image, low, high)
    norm = normalise(image, low, high)
    assert norm[16, 16] > threshold > norm[0, 63]


def test_features_at_equal_whole_image_features_at_every_tiling():
    rng = np.random.default_rng(1)
    image = _two_textures(rng, shape=(70, 90))
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    whole = feature_maps(normalise(image, *intensity), threshold, SETTINGS)
    points = np.concatenate([rng.integers(0, (70, 90), (200, 2)), [[0, 0], [69, 89], [0, 89]]])
    for tile in (16, 37, 512):
        got = features_at(image, points, intensity, threshold, SETTINGS, tile_size=tile)
        np.testing.assert_allclose(got, whole[:, points[:, 0], points[:, 1]].T, atol=1e-5)


def test_fit_predict_separates_two_textures_and_paints_them():
    rng = np.random.default_rng(2)
    image = _two_textures(rng)
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    rows = rng.integers(0, 96, 400)
    cols = np.concatenate([rng.integers(0, 80, 200), rng.integers(112, 192, 200)])
    labels = (cols >= 96).astype(np.int64)
    points = np.stack([rows, cols], axis=1)
    features = features_at(image, points, intensity, threshold, SETTINGS)
    model = fit_logistic(features[::2], labels[::2], ["sparse", "dense"], SETTINGS)
    assert model.info["train_accuracy"] > 0.95
    assert (model.predict(features[1::2]) == labels[1::2]).mean() > 0.95
    prob = model.predict_proba(features)
    assert np.allclose(prob.sum(axis=1), 1)

    stride = 4
    grid = probability_grid_shape(image.shape, stride)
    out = np.zeros((2, *grid), np.float32)
    paint_baseline(image, model, intensity, threshold, stride, out, tile_size=40)
    centres = np.stack(np.meshgrid(np.arange(grid[0]) * stride + stride // 2,
                                   np.arange(grid[1]) * stride + stride // 2, indexing="ij"), -1)
    expected = model.predict_proba(features_at(image, centres.reshape(-1, 2), intensity,
                                               threshold, SETTINGS))
    np.testing.assert_allclose(out.reshape(2, -1).T, expected, atol=1e-5)
    label = out.argmax(axis=0)
    assert (label[:, : grid[1] // 2 - 4] == 0).mean() > 0.9
    assert (label[:, grid[1] // 2 + 4:] == 1).mean() > 0.9


def test_fit_is_deterministic_and_checks_labels():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 8))
    y = (x[:, 0] > 0).astype(int)
    a = fit_logistic(x, y, ["a", "b", "c"], SETTINGS)
    b = fit_logistic(x, y, ["a", "b", "c"], SETTINGS)
    assert np.array_equal(a.weights, b.weights)
    assert a.predict_proba(x)[:, 2].max() < 0.1  # a class without samples stays unlikely
    with pytest.raises(ValueError):
        fit_logistic(x, y + 5, ["a", "b"], SETTINGS)


def test_save_load_and_probability_map_format(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 8))
    model = fit_logistic(x, (x[:, 1] > 0).astype(int), ["background", "tissue"], SETTINGS)
    save_model(tmp_path / "baseline.npz", model)
    loaded = load_model(tmp_path / "baseline.npz", nucleus_diameter_px=9.0)
    assert loaded.classes == model.classes and loaded.settings.windows == (8, 24)
    assert loaded.settings.nucleus_diameter_px == 9.0
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))

    image = _two_textures(rng, shape=(40, 50))
    with h5py.File(tmp_path / "map.h5", "w") as f:
        out = create_probability_dataset(f, loaded.classes, probability_grid_shape(image.shape, 4),
                                         4, model=BASELINE)
        paint_baseline(image, loaded, intensity_range(image), 0.5, 4, out)
    prob_map = read_probability_map(tmp_path / "map.h5")
    assert prob_map.probabilities.shape == (2, 10, 13) and prob_map.stride == 4
    assert prob_map.model == BASELINE and prob_map.patch_size is None
    assert np.allclose(prob_map.probabilities.sum(axis=0), 1, atol=1e-5)
