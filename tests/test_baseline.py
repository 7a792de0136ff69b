"""The non-CNN baseline: features, fitting, painting, saving (txmorph.baseline)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy import ndimage

from txmorph.baseline import (FORMAT, FeatureSettings, STATISTICS, feature_maps, feature_names,
                              features_at, fit_logistic, load_model, nuclei_centres,
                              paint_baseline, save_model, section_threshold,
                              window_sizes)
from txmorph.nucleus_features import (NUCLEUS_STATISTICS, measure_nuclei, nucleus_window_maps,
                                      segment_nuclei)
from txmorph.patches.intensity import intensity_range, normalise
from txmorph.probmap.mapsio import BASELINE, create_probability_dataset, read_probability_map
from txmorph.probmap.paint import probability_grid_shape

SETTINGS = FeatureSettings(windows=(8, 24), nucleus_diameter_px=6.0)
NUCLEI = FeatureSettings(windows=(8, 24), nucleus_diameter_px=6.0, features="nuclei")


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


@pytest.mark.parametrize("settings", [SETTINGS, NUCLEI], ids=["windows", "nuclei"])
def test_features_at_equal_whole_image_features_at_every_tiling(settings):
    rng = np.random.default_rng(1)
    image = _two_textures(rng, shape=(70, 90))
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    whole = feature_maps(normalise(image, *intensity), threshold, settings)
    assert whole.shape == (len(feature_names(settings)), 70, 90)
    points = np.concatenate([rng.integers(0, (70, 90), (200, 2)), [[0, 0], [69, 89], [0, 89]]])
    for tile in (16, 37, 512):
        got = features_at(image, points, intensity, threshold, settings, tile_size=tile)
        np.testing.assert_allclose(got, whole[:, points[:, 0], points[:, 1]].T, atol=1e-5)


def test_nucleus_feature_names_and_settings():
    names = feature_names(NUCLEI)
    assert names[:8] == feature_names(SETTINGS)
    assert names[8:] == [f"{s}_{w}" for w in (8, 24) for s in NUCLEUS_STATISTICS]
    assert NUCLEUS_STATISTICS == ("nucleus_area", "nucleus_elongation", "nucleus_solidity",
                                  "nucleus_intensity", "nucleus_texture", "no_nuclei")
    # A nucleus reaches one diameter from its centre and competes with centres as far again.
    assert NUCLEI.halo >= SETTINGS.halo + 2 * 6
    with pytest.raises(ValueError, match="features"):
        FeatureSettings((8,), 6.0, features="cells")


def _shapes():
    """A bright disk, a bright 2:6 ellipse, a dim disk and a C (a disk missing a wedge)."""
    rows, cols = np.indices((60, 100))
    image = np.full(rows.shape, 100.0)
    image[(rows - 15) ** 2 + (cols - 15) ** 2 <= 9] = 1000
    image[((rows - 15) / 2) ** 2 + ((cols - 50) / 6) ** 2 <= 1] = 1000
    image[(rows - 45) ** 2 + (cols - 20) ** 2 <= 9] = 600
    ring = ((rows - 45) ** 2 + (cols - 70) ** 2 <= 16) & ~((cols > 70) & (abs(rows - 45) <= 1))
    image[ring] = 1000
    return normalise(image, 100, 1000)


def test_nuclei_are_segmented_and_measured():
    norm = _shapes()
    centres = np.argwhere(nuclei_centres(norm, 0.25, NUCLEI))
    assert [tuple(c) for c in centres[:3]] == [(15, 15), (15, 50), (45, 20)]
    assert len(centres) == 4 and abs(centres[3] - (45, 70)).max() <= 2  # the C's, off-centre
    owner = segment_nuclei(norm, centres, 0.5, NUCLEI)
    area, elongation, solidity, intensity, texture = measure_nuclei(norm, owner, centres, NUCLEI).T
    nominal = np.pi * 3**2  # a 6-px nucleus
    for k, (r, c) in enumerate(centres):
        assert owner[r, c] == k and (owner == k).sum() * 1.0 == pytest.approx(area[k] * nominal)
    assert 0.9 < area[0] < 1.5 and area[1] > area[0]  # the ellipse: 3 * 5 px of axes
    assert elongation[0] < 0.05 and elongation[2] < 0.05 and elongation[1] > 0.4
    assert solidity[0] > 0.85 and solidity[3] < solidity[0]  # the C is not convex
    assert intensity[2] == pytest.approx(5 / 9, abs=1e-6) and texture[2] < 1e-6  # flat disk
    assert intensity[0] > intensity[2] and texture[0] > 0  # a bright nucleus with its rim
    # The background is no nucleus's, bar the rim that the light smoothing lifts.
    near = ndimage.binary_dilation(norm > 0.1, iterations=2)
    assert (owner[~near] == -1).all() and (owner[norm > 0.1] >= 0).all()


def test_windows_average_the_nuclei_centred_in_them():
    norm = _shapes()
    centre_map = nuclei_centres(norm, 0.25, NUCLEI)
    centres = np.argwhere(centre_map)
    measures = measure_nuclei(norm, segment_nuclei(norm, centres, 0.5, NUCLEI), centres, NUCLEI)
    rows, cols = np.arange(60), np.arange(100)
    settings = FeatureSettings((8, 40), 6.0, "nuclei")
    maps = nucleus_window_maps(norm, centre_map, 0.5, settings, rows, cols)
    assert maps.shape == (12, 60, 100)
    small = maps[:6]  # 8-px windows
    np.testing.assert_allclose(small[:5, 15, 15], measures[0])  # one nucleus in it
    assert small[5, 15, 15] == 0 and small[5, 30, 35] == 1  # the indicator where none is
    assert (small[:5, 30, 35] == 0).all()
    large = maps[6:]  # 40 px: rows 10..49 and columns 12..51 hold the first three
    np.testing.assert_allclose(large[:5, 30, 32], measures[:3].mean(axis=0))
    np.testing.assert_allclose(large[:5, 30, 80], measures[3])  # columns 60..99: the C only


@pytest.mark.parametrize("settings", [SETTINGS, NUCLEI], ids=["windows", "nuclei"])
def test_fit_predict_separates_two_textures_and_paints_them(settings):
    rng = np.random.default_rng(2)
    image = _two_textures(rng)
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    rows = rng.integers(0, 96, 400)
    cols = np.concatenate([rng.integers(0, 80, 200), rng.integers(112, 192, 200)])
    labels = (cols >= 96).astype(np.int64)
    points = np.stack([rows, cols], axis=1)
    features = features_at(image, points, intensity, threshold, settings)
    model = fit_logistic(features[::2], labels[::2], ["sparse", "dense"], settings)
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
                                               threshold, settings))
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


def test_nucleus_model_keeps_its_feature_set_and_old_files_read_as_windows(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, len(feature_names(NUCLEI))))
    model = fit_logistic(x, (x[:, 1] > 0).astype(int), ["background", "tissue"], NUCLEI)
    save_model(tmp_path / "nuclei.npz", model)
    loaded = load_model(tmp_path / "nuclei.npz")
    assert loaded.settings == NUCLEI
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))

    def rewrite(name, **changes):
        with np.load(tmp_path / "nuclei.npz") as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(str(arrays["header"]))
        header.update(changes)
        header.pop("features") if changes.get("format") == "txmorph-baseline-1" else None
        arrays["header"] = np.array(json.dumps(header))
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    # A file from before the feature sets (version 1, no `features`): the window statistics.
    old = load_model(rewrite("old.npz", format="txmorph-baseline-1"))
    assert old.settings.features == "windows" and FORMAT != "txmorph-baseline-1"
    with pytest.raises(ValueError, match="txmorph-baseline-9"):
        load_model(rewrite("future.npz", format="txmorph-baseline-9"))


def test_nucleus_features_are_exact_tile_by_tile_among_touching_nuclei():
    rng = np.random.default_rng(6)
    shape = (90, 110)
    rows, cols = np.indices(shape)
    image = rng.normal(200, 30, shape)
    for r, c, radius, value in zip(rng.uniform(0, 90, 60), rng.uniform(0, 110, 60),
                                   rng.uniform(2, 5, 60), rng.uniform(500, 1500, 60)):
        image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] += value  # clumps, overlaps
    image = np.clip(image, 0, 65535).astype(np.uint16)
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    whole = feature_maps(normalise(image, *intensity), threshold, NUCLEI)
    assert whole[9, 0:90:5, 0:110:5].max() > 0 and whole[-1].min() == 0  # nuclei everywhere
    points = np.stack(np.meshgrid(np.arange(0, 90, 3), np.arange(0, 110, 3)), -1).reshape(-1, 2)
    for tile in (9, 23, 64):
        got = features_at(image, points, intensity, threshold, NUCLEI, tile_size=tile)
        np.testing.assert_allclose(got, whole[:, points[:, 0], points[:, 1]].T, atol=1e-5)


def test_a_tile_without_nuclei_has_the_no_nuclei_flag_and_no_error():
    """Glass, or tissue too dim for a nucleus: no nucleus to measure (a niche run's empty tile)."""
    image = np.full((40, 50), 100.0)
    assert measure_nuclei(normalise(image, 100, 1000), np.full(image.shape, -1),
                          np.zeros((0, 2), np.int64), NUCLEI).shape == (0, 5)
    maps = feature_maps(normalise(image, 100, 1000), 0.25, NUCLEI)
    assert np.isfinite(maps).all()
    names = feature_names(NUCLEI)
    assert (maps[names.index("no_nuclei_8")] == 1).all()
