"""SpatialData out (one .zarr per section, read back with spatialdata) and in (a section given as
a SpatialData store gives the same canonical inputs and maps as its TIFF + CSV)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import REPO, run_snakemake, tiny_config

# `make test` installs the spatialdata extra; CI must run these tests, not skip them.
if os.environ.get("CI"):
    import spatialdata
else:
    spatialdata = pytest.importorskip("spatialdata", reason="the spatialdata extra is not installed")

from txmorph.errors import InputError  # noqa: E402
from txmorph.evaluate.metrics import grid_positions, label_map  # noqa: E402
from txmorph.probmap.mapsio import read_label_map  # noqa: E402
from txmorph.export.spatialdata import map_transform, probabilities_element  # noqa: E402
from txmorph.io.spatialdata import check_store_elements  # noqa: E402


def _level0(element):
    """Full resolution of an image element: the DataArray, or scale0 of a multiscale DataTree."""
    return element["scale0"].ds["image"] if hasattr(element, "children") else element


def _map_pixel_centres_on_image(transformation, rows, cols):
    """Where the centres of map pixels (rows, cols) land on the image, as (row, col) arrays."""
    matrix = np.asarray(transformation.to_affine_matrix(input_axes=("y", "x"),
                                                        output_axes=("y", "x")))
    centres = np.column_stack([rows + 0.5, cols + 0.5, np.ones(len(rows))])
    placed = centres @ matrix.T
    return placed[:, 0], placed[:, 1]


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5, 8, 20])
def test_map_transform_puts_each_map_pixel_on_its_patch_centre(stride):
    # Map pixel i describes the patch centred at input pixel i*s + s//2 (docs/CONVENTIONS.md),
    # whose centre is at i*s + s//2 + 0.5 in spatialdata's coordinates (pixel i spans [i, i+1)).
    index = np.arange(50, dtype=float)
    rows, cols = _map_pixel_centres_on_image(map_transform(stride), index, index[::-1])
    expected = grid_positions(10**6, stride, 50) + 0.5
    np.testing.assert_allclose(rows, expected, atol=1e-9)
    np.testing.assert_allclose(cols, expected[::-1], atol=1e-9)


def test_large_maps_and_image_are_multiscale_with_the_classes_at_every_level(tmp_path):
    from spatialdata.transformations import get_transformation

    from txmorph.export.spatialdata import SectionResults, build_spatialdata, write_spatialdata

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (1100, 700), dtype=np.uint8)
    probabilities = rng.random((3, 550, 350), dtype=np.float32)
    classes = ["background", "tissue", "Prox1", "Mbp"]
    results = SectionResults(
        name="s1", image=image, pixel_size_um=0.5, classes=classes,
        maps={"ensemble": (probabilities, ["tissue", "Prox1", "Mbp"], 2)},
        labels=rng.integers(1, 4, (550, 350)).astype(np.uint8), labels_stride=2)
    path = tmp_path / "s1.zarr"
    write_spatialdata(build_spatialdata(results), path)
    write_spatialdata(build_spatialdata(results), path)  # replaces an existing store
    store = spatialdata.read_zarr(path)
    assert set(store.labels) == {"labels_ensemble"} and not store.tables
    dapi, maps = store.images["dapi"], store.images["probabilities_ensemble"]
    assert [dapi[k].ds["image"].shape for k in sorted(dapi.children)] == [
        (1, 1100, 700), (1, 550, 350), (1, 275, 175)]
    assert sorted(maps.children) == ["scale0", "scale1"]  # 550 -> 275: the last above 256
    for level in maps.children.values():
        assert [str(c) for c in level.ds["image"].coords["c"].values] == ["tissue", "Prox1", "Mbp"]
    np.testing.assert_array_equal(maps["scale0"].ds["image"].values, probabilities)
    matrix = get_transformation(maps, "global").to_affine_matrix(("y", "x"), ("y", "x"))
    np.testing.assert_allclose(matrix, [[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])
    assert store.attrs["txmorph"]["pixel_size_um"] == 0.5
    assert store.attrs["txmorph"]["class_labels"] == {name: name for name in classes}
    assert not list(tmp_path.glob(".tmp-*"))
    # niches: their names with their genes travel with the store
    named = SectionResults(name="s2", image=image[:300, :300], pixel_size_um=0.5,
                           classes=["background", "tissue", "niche1"],
                           maps={"ensemble": (probabilities[:2, :150, :150],
                                              ["tissue", "niche1"], 2)},
                           class_labels={"background": "background", "tissue": "tissue",
                                         "niche1": "niche1 (Mbp, Plp1)"})
    write_spatialdata(build_spatialdata(named), tmp_path / "s2.zarr")
    labels = spatialdata.read_zarr(tmp_path / "s2.zarr").attrs["txmorph"]["class_labels"]
    assert labels["niche1"] == "niche1 (Mbp, Plp1)"


def _write_input_store(path, image, spots, *, image_name="nuclei", points_name="transcripts"):
    """A SpatialData store as spatialdata-io/sopa write them: the image in its own pixels with a
    transformation to `global` (here µm: 2 µm per pixel, corner at (10, 20) µm), the points in
    `global` µm, the gene in the points' feature_key column (named as in Xenium)."""
    from spatialdata.models import Image2DModel, PointsModel
    from spatialdata.transformations import Identity, Scale, Sequence, Translation

    to_um = Sequence([Scale([2.0, 2.0], axes=("x", "y")), Translation([10.0, 20.0], axes=("x", "y"))])
    points = pd.DataFrame({"x": spots["x"] * 2.0 + 10.0, "y": spots["y"] * 2.0 + 20.0,
                           "feature_name": spots["gene"].astype(str)})
    store = spatialdata.SpatialData(
        images={image_name: Image2DModel.parse(image[None], dims=("c", "y", "x"),
                                               c_coords=["DAPI"], transformations={"global": to_um})},
        points={points_name: PointsModel.parse(points, coordinates={"x": "x", "y": "y"},
                                               feature_key="feature_name",
                                               transformations={"global": Identity()})},
    )
    store.write(path)


def test_missing_element_names_file_element_what_is_there_and_the_fix(tmp_path):
    store = tmp_path / "section.zarr"
    _write_input_store(store, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64),
                       pd.DataFrame({"gene": ["A"], "x": [1.0], "y": [2.0]}))
    assert check_store_elements("s1", store, {"images": None, "points": "transcripts"}) == {
        "images": "nuclei", "points": "transcripts"}
    with pytest.raises(InputError) as error:
        check_store_elements("s1", store, {"images": "morphology_focus"})
    message = str(error.value)
    for part in ("section 's1'", str(store), "no image element 'morphology_focus'",
                 "images 'nuclei'", "points 'transcripts'", "Set 'image_element'"):
        assert part in message, message


def test_image_element_level_channel_and_points_on_that_level(tmp_path):
    # A two-channel, two-level store: the channel is picked by name, the level by index, and
    # the points (in `global` µm) land on the full-resolution pixels of the image element.
    from spatialdata.models import Image2DModel, PointsModel
    from spatialdata.transformations import Identity, Scale

    from txmorph.io.spatialdata import open_spatialdata_image, read_points_on_image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4000, (2, 600, 520), dtype=np.uint16)
    spots = pd.DataFrame({"x": [0.5, 100.25, 519.9], "y": [3.0, 450.5, 599.0], "g": ["A", "B", "A"]})
    store = tmp_path / "two.zarr"
    spatialdata.SpatialData(
        images={"morphology": Image2DModel.parse(
            pixels, dims=("c", "y", "x"), c_coords=["polyT", "DAPI"], scale_factors=[2],
            transformations={"global": Scale([0.5, 0.5], axes=("x", "y"))})},
        points={"tx": PointsModel.parse(spots.assign(x=spots["x"] * 0.5, y=spots["y"] * 0.5),
                                        coordinates={"x": "x", "y": "y"}, feature_key="g",
                                        transformations={"global": Identity()})},
    ).write(store)
    with open_spatialdata_image(store, "morphology", channel="dapi")[0] as source:
        assert source.shape == (600, 520) and source.channel_name == "DAPI"
        np.testing.assert_array_equal(source.read(slice(10, 20), slice(5, 9)), pixels[1, 10:20, 5:9])
    source, full_width = open_spatialdata_image(store, "morphology", channel=1, level=1)
    assert source.shape == (300, 260) and full_width == 520
    with pytest.raises(InputError, match="channels.*Set 'channel'"):
        open_spatialdata_image(store, "morphology")
    with pytest.raises(InputError, match="no resolution level 2"):
        open_spatialdata_image(store, "morphology", channel="DAPI", level=2)
    placed = read_points_on_image(store, "tx", store, "morphology")
    assert placed.gene_column == "g" and placed.coordinate_system == "global"
    np.testing.assert_allclose(placed.spots[["x", "y"]], spots[["x", "y"]], atol=1e-12)
    assert list(placed.spots["gene"]) == ["A", "B", "A"]
    with pytest.raises(InputError, match="coordinate system 'aligned'"):
        read_points_on_image(store, "tx", store, "morphology", coordinate_system="aligned")


@pytest.mark.e2e
def test_missing_element_stops_the_run_before_any_job(tmp_path):
    store = tmp_path / "data/test.zarr"
    _write_input_store(store, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64),
                       pd.DataFrame({"gene": ["Prox1"], "x": [1.0], "y": [2.0]}))
    config = tiny_config()
    config["sections"]["test"] = {"role": "test", "image": str(store), "spots": str(store),
                                  "image_element": "nuclei", "points_element": "transcript",
                                  "pixel_size_um": 1.0}
    result = run_snakemake(tmp_path / "run", "-n", config=config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "no points element 'transcript'" in output, output[-3000:]
    assert "points 'transcripts'" in output and "points_element" in output
    assert "Traceback" not in output


@pytest.mark.e2e
def test_spatialdata_export_reads_back_in_the_image_coordinates(tiny_run, tmp_path):
    from spatialdata.transformations import get_transformation

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # keeps mtimes: only the export runs
    config = tiny_config()
    config["export"] = {"spatialdata": True}
    result = run_snakemake(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rule export_spatialdata:" in result.stderr
    assert "rule train:" not in result.stderr and "rule probmap:" not in result.stderr

    store = spatialdata.read_zarr(workdir / "results/spatialdata/test.zarr")
    models = ["size32", "size64", "ensemble"]
    assert set(store.images) == {"dapi", *(probabilities_element(m) for m in models)}
    assert set(store.labels) == {"labels_ensemble", "reference_regions"}
    assert set(store.tables) == {"dice"}

    image = tifffile.imread(workdir / "results/sections/test/image.tif")
    dapi = _level0(store.images["dapi"])
    assert dapi.shape == (1, *image.shape)
    np.testing.assert_array_equal(dapi.values[0], image)  # the image as used, unchanged

    learned = json.loads((workdir / "results/patches/classes.json").read_text())["classes"]
    for model in models:
        element = store.images[probabilities_element(model)]
        level0 = _level0(element)
        with h5py.File(workdir / f"results/probmaps/test/{model}.h5") as f:
            probabilities, stride = f["probabilities"][...], int(f.attrs["stride"])
        assert [str(c) for c in level0.coords["c"].values] == learned
        assert level0.shape == probabilities.shape
        np.testing.assert_array_equal(level0.values, probabilities)
        # Every map pixel lands on the image pixel its patch is centred on (CONVENTIONS).
        transformation = get_transformation(element, to_coordinate_system="global")
        rows = np.arange(probabilities.shape[1], dtype=float)
        cols = np.arange(probabilities.shape[2], dtype=float)
        placed_rows, _ = _map_pixel_centres_on_image(transformation, rows, np.zeros_like(rows))
        _, placed_cols = _map_pixel_centres_on_image(transformation, np.zeros_like(cols), cols)
        centre_rows = grid_positions(image.shape[0], stride, len(rows))
        centre_cols = grid_positions(image.shape[1], stride, len(cols))
        inside_rows, inside_cols = rows * stride + stride // 2 < image.shape[0], \
            cols * stride + stride // 2 < image.shape[1]  # the last may be clipped to the edge
        np.testing.assert_allclose(placed_rows[inside_rows], centre_rows[inside_rows] + 0.5)
        np.testing.assert_allclose(placed_cols[inside_cols], centre_cols[inside_cols] + 0.5)
        assert np.array_equal(np.floor(placed_rows[inside_rows]), centre_rows[inside_rows])

    classes = ["background", "tissue", "Prox1", "Mbp"]
    with h5py.File(workdir / "results/probmaps/test/ensemble.h5") as f:
        expected_labels = label_map(f["probabilities"][...], learned, classes)
        ensemble_stride = int(f.attrs["stride"])
    labels = store.labels["labels_ensemble"]
    np.testing.assert_array_equal(labels.values, expected_labels)
    # The export holds rule argmax_labels' label image itself: the two cannot disagree.
    label_image = read_label_map(workdir / "results/labels/test.tif")
    np.testing.assert_array_equal(labels.values, label_image.labels)
    assert labels.dtype == label_image.labels.dtype == np.uint8
    np.testing.assert_allclose(
        get_transformation(labels, "global").to_affine_matrix(("y", "x"), ("y", "x")),
        get_transformation(store.images["probabilities_ensemble"], "global").to_affine_matrix(
            ("y", "x"), ("y", "x")))
    assert ensemble_stride > 1
    reference = store.labels["reference_regions"]
    np.testing.assert_array_equal(reference.values,
                                  tifffile.imread(workdir / "results/truth/test.tif"))

    dice = store.tables["dice"]
    table = pd.read_csv(workdir / "results/report/dice/test.csv")
    assert list(dice.var_names) == ["dice"] and dice.n_obs == len(table)
    assert list(dice.obs["model"]) == list(table["model"])
    assert list(dice.obs["class"]) == list(table["class"])
    np.testing.assert_allclose(dice.X[:, 0], table["dice"].to_numpy(float), equal_nan=True)


@pytest.mark.e2e
def test_spatialdata_section_gives_the_same_inputs_and_maps_as_tiff_and_csv(tiny_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # models stay: only the test section reruns
    demo = workdir / "resources/demo/test"
    store = workdir / "data/test.zarr"
    _write_input_store(store, tifffile.imread(demo / "nuclei.tif"), pd.read_csv(demo / "spots.csv"))
    config = tiny_config()
    config["sections"]["test"] = {"role": "test", "image": "data/test.zarr",
                                  "image_element": "nuclei", "spots": "data/test.zarr",
                                  "points_element": "transcripts", "pixel_size_um": 1.0}
    targets = ["results/probmaps/test/ensemble.h5", "results/sections/test/checks.json"]
    result = run_snakemake(workdir, "--cores", "2", *targets, config=config)
    assert result.returncode == 0, result.stderr[-4000:]
    ran = result.stderr
    assert "rule import_spatialdata_image:" in ran and "rule import_spatialdata_points:" in ran
    assert "rule train:" not in ran and "rule patches:" not in ran and "rule import_image:" not in ran

    sections = Path("results/sections/test")
    # The canonical image: bitwise the one imported from the TIFF.
    np.testing.assert_array_equal(tifffile.imread(workdir / sections / "image.tif"),
                                  tifffile.imread(tiny_run / sections / "image.tif"))
    # The spots: same genes and order; coordinates through two transformations (pixel -> µm in
    # the store, µm -> pixel on import), so equal within float rounding.
    from_zarr = pd.read_parquet(workdir / sections / "spots.parquet")
    from_csv = pd.read_parquet(tiny_run / sections / "spots.parquet")
    assert list(from_zarr["gene"]) == list(from_csv["gene"])
    np.testing.assert_allclose(from_zarr[["x", "y"]], from_csv[["x", "y"]], rtol=0, atol=1e-9)
    summary = json.loads((workdir / sections / "spots.json").read_text())
    expected = json.loads((tiny_run / sections / "spots.json").read_text())
    assert summary["spots_per_gene"] == expected["spots_per_gene"]
    assert summary["format"] == "spatialdata" and summary["gene_column"] == "feature_name"
    assert summary["coordinate_system"] == "global"
    image_summary = json.loads((workdir / sections / "image.json").read_text())
    assert image_summary["shape"] == json.loads((tiny_run / sections / "image.json").read_text())["shape"]
    # The maps: bitwise the TIFF + CSV route's (same image, same models).
    for model in ["size32", "size64", "ensemble"]:
        with h5py.File(workdir / f"results/probmaps/test/{model}.h5") as new, \
                h5py.File(tiny_run / f"results/probmaps/test/{model}.h5") as old:
            np.testing.assert_array_equal(new["probabilities"][...], old["probabilities"][...])
    checks = json.loads((workdir / sections / "checks.json").read_text())
    assert not [f for f in checks["findings"] if f["severity"] == "error"]


def test_core_modules_do_not_import_spatialdata():
    # The TIFF/CSV route and the workflow's parsing (which imports txmorph.io.spatialdata to
    # check element names) must run where spatialdata is not installed, and importing the
    # export module does not import it either.
    code = ("import sys; import txmorph.io.spots, txmorph.io.images, txmorph.io.imagewrite, "
            "txmorph.io.canonical, txmorph.io.spatialdata, txmorph.export.spatialdata, "
            "txmorph.evaluate.metrics, txmorph.probmap.mapsio; print('spatialdata' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
