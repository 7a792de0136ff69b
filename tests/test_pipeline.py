"""End-to-end: the tiny demo through every rule of the Snakemake workflow."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from conftest import run_snakemake, tiny_config

pytestmark = pytest.mark.e2e

RULES = ["demo_data", "import_image", "import_spots", "dapi_mask", "tissue_mask", "check_section",
         "centres", "patches", "train", "probmap", "ensemble", "baseline_train",
         "baseline_probmap", "truth", "dice", "summary", "inputs_checked", "argmax_labels"]


def test_every_rule_ran_and_logged(tiny_run):
    for rule in RULES:
        logs = list((tiny_run / "results/logs" / rule).glob("*.log"))
        assert logs, f"no log for rule {rule}"
        assert "finished in" in logs[0].read_text()


def test_patch_files(tiny_run):
    with h5py.File(tiny_run / "results/patches/size64.h5") as f:
        images, labels = f["images"], f["labels"][...]
        assert images.shape[1:] == (64, 64) and images.dtype == np.uint16
        assert np.bincount(labels).tolist() == [40, 40, 40, 40]
        assert list(f.attrs["classes"]) == ["background", "tissue", "Prox1", "Mbp"]
        assert f["centres"].shape == (len(labels), 2)
    with h5py.File(tiny_run / "results/patches/size32.h5") as f32:
        with h5py.File(tiny_run / "results/patches/size64.h5") as f64:
            assert np.array_equal(f32["centres"][...], f64["centres"][...])


def test_models_and_metrics(tiny_run):
    for size in (32, 64):
        checkpoint = torch.load(tiny_run / f"results/models/size{size}.pt", weights_only=True)
        assert checkpoint["metadata"]["patch_size"] == size
        metrics = pd.read_csv(tiny_run / f"results/models/size{size}.metrics.csv")
        assert {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= set(metrics)


def test_probability_maps(tiny_run):
    image = tifffile.imread(tiny_run / "resources/demo/test/nuclei.tif")
    for name in ("size32", "size64", "ensemble", "baseline"):
        with h5py.File(tiny_run / f"results/probmaps/test/{name}.h5") as f:
            probabilities = f["probabilities"][...]
            stride = int(f.attrs["stride"])
            assert list(f.attrs["classes"]) == ["background", "tissue", "Prox1", "Mbp"]
        assert probabilities.shape == (4, -(-image.shape[0] // stride), -(-image.shape[1] // stride))
        assert np.allclose(probabilities.sum(0), 1, atol=1e-4)


def test_dice_report(tiny_run):
    table = pd.read_csv(tiny_run / "results/report/dice.csv")
    assert list(table.columns) == ["section", "model", "class", "dice", "evaluable", "note"]
    assert set(table["model"]) == {"size32", "size64", "ensemble", "baseline", "chance"}
    assert table["evaluable"].all() and table["dice"].notna().all()  # the demo has every class
    # Chance: every pixel one class (the training section's most frequent), so exactly that
    # class scores above 0; it is the floor the models are read against.
    chance = table[(table["model"] == "chance") & (table["class"] != "mean")]
    reference = json.loads((tiny_run / "results/models/reference.json").read_text())
    frequent = max(reference["class_pixels"], key=reference["class_pixels"].get)
    assert list(chance.loc[chance["dice"] > 0, "class"]) == [frequent]
    assert reference["training_sections"] == ["train"]
    assert all(0 < entry["threshold"] for entry in reference["classes"].values())
    assert set(table["class"]) == {"background", "tissue", "Prox1", "Mbp", "mean"}
    assert table["dice"].dropna().between(0, 1).all()
    summary = (tiny_run / "results/report/summary.md").read_text()
    assert "ensemble" in summary and "test.png" in summary
    assert "## Input checks" in summary and "| `test` | test |" in summary
    assert (tiny_run / "results/report/test.png").read_bytes()[:4] == b"\x89PNG"


def test_nothing_left_to_do_after_a_complete_run(tiny_run):
    result = run_snakemake(tiny_run, "-n", "--cores", "1")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


BAD_SPOTS = {
    "missing column": ("gene,x\nProx1,1\n", "column"),
    "non-numeric coordinate": ("gene,x,y\nProx1,10,abc\nMbp,5,5\n", "not a number"),
    "unknown gene": ("gene,x,y\nSnap25,10,10\n", "Prox1"),
    "spot outside the image": ("gene,x,y\nProx1,10,10\nMbp,5000,5\n", "outside"),
    "empty table": ("gene,x,y\n", "no data rows"),
}


def _run_on_user_data(tmp_path, image, spots_text):
    """Run the tiny workflow on one image and spot table written by the test; return output."""
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "img.tif", image, photometric="rgb" if image.ndim == 3 else None)
    (data / "spots.csv").write_text(spots_text)
    config = tiny_config()
    for section in config["sections"].values():
        section.update(image="data/img.tif", spots="data/spots.csv")
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    return output


@pytest.mark.parametrize("case", sorted(BAD_SPOTS))
def test_bad_spots_stop_the_run_cleanly(tmp_path, case):
    text, message = BAD_SPOTS[case]
    image = np.random.default_rng(0).integers(0, 999, (200, 200)).astype(np.uint16)
    output = _run_on_user_data(tmp_path, image, text)
    assert "data/spots.csv" in output and message in output
    assert not list((tmp_path / "results").glob("sections/*/spots.*"))
    assert not list((tmp_path / "results").glob("patches/*"))


def test_rgb_image_stops_the_run_cleanly(tmp_path):
    colour = np.random.default_rng(0).integers(0, 255, (100, 100, 3)).astype(np.uint8)
    output = _run_on_user_data(tmp_path, colour, "gene,x,y\nProx1,10,10\nMbp,5,5\n")
    assert "data/img.tif" in output and "RGB" in output
    assert not list((tmp_path / "results").glob("sections/*/image.*"))
    assert not (tmp_path / "results/masks").exists()
