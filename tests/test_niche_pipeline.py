"""`niches: K` end to end (issue 20): on two generated sections (the demo's generator, whose
regions are known) the joint clustering gives a region the same niche in both sections, a model
trained on one paints it on the other, and the niches are named in the outputs. Bad input stops
with one clear message each before any patch is cut."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_snakemake, tiny_config

pytest.importorskip("points2regions")

from txmorph.evaluate.metrics import dice_scores  # noqa: E402
from txmorph.io.canonical import read_labels  # noqa: E402
from txmorph.niches import match_regions  # noqa: E402

pytestmark = pytest.mark.e2e

REGION_A, REGION_B = 2, 3  # the demo generator's labels of the Prox1 and Mbp regions


def niche_config(k: int = 3) -> dict:
    """The tiny demo with niches in place of genes, on sections large enough for three niches."""
    config = tiny_config()
    del config["genes"]
    config["niches"] = k
    config["demo"].update(height=1024, width=1024)
    config["patches"].update(sizes=[64], per_class=150, min_per_class=20)
    config["training"].update(epochs=4, patience=2)
    return config


@pytest.fixture(scope="module")
def niche_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("niches")
    result = run_snakemake(workdir, "--cores", "2", config=niche_config())
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_a_region_is_the_same_niche_in_both_sections(niche_run):
    matched = {}
    for section in ("train", "test"):
        truth = read_labels(niche_run / f"results/truth/{section}.tif")
        regions = tifffile.imread(niche_run / f"resources/demo/{section}/regions.tif")
        mapping = match_regions(truth, regions)
        # the niche matched to each known region, and how well its map covers it
        for region in (REGION_A, REGION_B):
            niches = [niche for niche, r in mapping.items() if r == region]
            assert len(niches) == 1, (section, mapping)
            dice = dice_scores((truth == niches[0]).astype(np.uint8),
                               (regions == region).astype(np.uint8), 2)[1]
            assert dice > 0.6, (section, region, dice)
            matched.setdefault(region, set()).add(niches[0])
    assert all(len(niches) == 1 for niches in matched.values()), matched  # one meaning
    assert matched[REGION_A] != matched[REGION_B]
    summary = json.loads((niche_run / "results/niches/niches.json").read_text())
    names = [entry["name"] for entry in summary["classes"].values()]
    assert len(names) == 3
    a_name = names[next(iter(matched[REGION_A])) - 2]
    b_name = names[next(iter(matched[REGION_B])) - 2]
    assert "Prox1" in a_name and "Mbp" in b_name  # named by the genes that mark them


def test_a_model_trained_on_one_section_paints_the_niches_on_the_other(niche_run):
    dice = pd.read_csv(niche_run / "results/report/dice.csv")
    ensemble = dice[dice["model"] == "ensemble"].set_index("class")["dice"]
    chance = dice[dice["model"] == "chance"].set_index("class")["dice"]
    for niche in ("niche1", "niche2", "niche3"):
        assert ensemble[niche] > 0.4, ensemble.to_dict()
    assert ensemble["mean"] > chance["mean"] + 0.3
    learned = json.loads((niche_run / "results/patches/classes.json").read_text())
    assert learned["classes"] == ["background", "niche1", "niche2", "niche3"]
    assert "tissue" in learned["dropped"]  # the niches partition the tissue
    tissue = dice[(dice["model"] == "ensemble") & (dice["class"] == "tissue")]["note"].iloc[0]
    assert tissue.startswith("not learned") and "left out of every score" not in tissue


def test_the_niches_are_named_in_the_summary_and_the_class_definitions(niche_run):
    summary = (niche_run / "results/report/summary.md").read_text()
    assert "## Niches" in summary and "(Prox1" in summary and "(Mbp" in summary
    reference = json.loads((niche_run / "results/models/reference.json").read_text())
    assert set(reference["niches"]) == {"niche1", "niche2", "niche3"}
    log = (niche_run / "results/logs/niches/niches.log").read_text()
    assert "clustered jointly" in log and "(Mbp" in log


def test_the_ome_tiff_channels_carry_the_niche_names(niche_run):
    result = run_snakemake(niche_run, "--cores", "1", "results/export/test/ensemble.ome.tif")
    assert result.returncode == 0, result.stderr[-3000:]
    with tifffile.TiffFile(niche_run / "results/export/test/ensemble.ome.tif") as tif:
        assert "(Mbp" in tif.ome_metadata


def test_the_html_report_holds_the_niche_table(niche_run):
    result = run_snakemake(niche_run, "--report", "report.html", "--cores", "1")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ERROR" not in result.stderr, result.stderr[-4000:]  # e.g. a broken caption
    html = (niche_run / "report.html").read_text()
    assert '"results/report/niches.csv"' in html and "3 expression niches" in html
    table = pd.read_csv(niche_run / "results/report/niches.csv")
    assert list(table["niche"]) == ["niche1", "niche2", "niche3"]
    assert list(table.columns[-2:]) == ["share_train", "share_test"]


def _error(result) -> str:
    return result.stdout + result.stderr


def test_genes_and_niches_together_are_refused(tmp_path):
    config = niche_config()
    config["genes"] = ["Prox1", "Mbp"]
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert "both `genes`" in _error(result) and "remove one of the two keys" in _error(result)


def test_fewer_than_two_niches_are_refused(tmp_path):
    result = run_snakemake(tmp_path, "-n", config=niche_config(k=1))
    assert result.returncode != 0 and "niches" in _error(result)
    assert "minimum" in _error(result) or "at least 2" in _error(result)


def _rerun_niches(niche_run: Path, workdir: Path, config: dict):
    """The finished niche run copied, with another config: only rule niches (and what follows
    it) reruns, on the same imported sections."""
    shutil.copytree(niche_run, workdir, ignore=shutil.ignore_patterns("report.html"))
    shutil.rmtree(workdir / "results/niches")
    return run_snakemake(workdir, "--cores", "2", "results/niches/niches.json", config=config)


def test_more_niches_than_the_spots_hold_stop_before_patches(niche_run, tmp_path):
    result = _rerun_niches(niche_run, tmp_path / "run", niche_config(k=40))
    assert result.returncode != 0
    assert "niches: 40 is more than these spots support" in _error(result)
    assert not (tmp_path / "run/results/niches/niches.json").exists()  # nothing half-written


def test_a_section_too_sparse_for_the_scale_stops_before_patches(niche_run, tmp_path):
    config = niche_config()
    config["truth"]["sigma_um"] = 1.0
    result = _rerun_niches(niche_run, tmp_path / "run", config)
    assert result.returncode != 0
    assert "too few spots for niches at truth.sigma_um = 1" in _error(result)
    assert "section train" in _error(result) or "section test" in _error(result)
