"""End-to-end: what the models learn. A training crop that lies wholly inside tissue has no
background class and still runs; gene groups form one class each; labels from regions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import tifffile

from conftest import run_snakemake, tiny_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def inside_tissue_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("inside_tissue")
    config = tiny_config()
    # The tiny demo's training section cropped to a window inside its tissue (no glass).
    config["sections"]["train"]["region"] = {"x": [100, 312], "y": [100, 280]}
    config["genes"] = {"granule": ["Prox1"], "myelin": ["Mbp", "Olig2"]}
    config["patches"]["labels"] = "regions"
    result = run_snakemake(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return workdir


def test_crop_inside_tissue_learns_no_background(inside_tissue_run):
    learned = json.loads((inside_tissue_run / "results/patches/classes.json").read_text())
    assert learned["classes"] == ["tissue", "granule", "myelin"]
    assert "tissue throughout" in learned["dropped"]["background"]
    assert learned["labels"] == "regions"
    mask = tifffile.imread(inside_tissue_run / "results/masks/train.tif")
    assert mask.all()  # tissue from transcripts: the crop is tissue throughout
    log = (inside_tissue_run / "results/logs/centres/centres.log").read_text()
    assert "background left out of the models" in log


def test_dice_covers_the_learned_classes_named_after_groups(inside_tissue_run):
    table = pd.read_csv(inside_tissue_run / "results/report/dice.csv")
    assert set(table["class"]) == {"background", "tissue", "granule", "myelin", "mean"}
    background = table[table["class"] == "background"]
    assert not background["evaluable"].any()
    assert background["note"].str.startswith("not learned").all()
    for name in ("tissue", "granule", "myelin"):
        rows = table[table["class"] == name]
        assert rows["evaluable"].all() and rows["dice"].between(0, 1).all(), name
    summary = (inside_tissue_run / "results/report/summary.md").read_text()
    assert "Models learned tissue, granule, myelin" in summary
    assert "`background` left out" in summary


def test_group_reference_regions_use_every_gene_of_the_group(inside_tissue_run):
    truth = tifffile.imread(inside_tissue_run / "results/truth/test.tif")
    assert (truth == 2).any() and (truth == 3).any()  # granule, myelin regions
