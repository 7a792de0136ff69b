"""Real data end to end: the Vizgen MERFISH mouse-brain crop in ../shared (skipped without it).

Runs the shipped example config (resources/vizgen_mouse_brain/config.yaml) as it is, with its
relative data paths made absolute for the temporary working directory: a JPEG DAPI image,
a MERSCOPE transcript table in micrometres, one section split into train and test regions,
downsampled by 4. About a minute and a half on 2 cores.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.e2e

DATA = REPO.parent / "shared" / "data" / "vizgen_mouse_brain"
CONFIG = REPO / "resources" / "vizgen_mouse_brain" / "config.yaml"


@pytest.fixture(scope="module")
def vizgen_run(tmp_path_factory):
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found: the real-data test reads the shared Vizgen crop there")
    config = yaml.safe_load(CONFIG.read_text())
    for section in config["sections"].values():
        for key in ("image", "spots"):
            section[key] = str((REPO / section[key]).resolve())
    workdir = tmp_path_factory.mktemp("vizgen")
    result = run_snakemake(workdir, "--cores", "2", "all", "gene_candidates", config=config,
                           timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return workdir, config


def test_sections_are_the_two_halves(vizgen_run):
    workdir, _ = vizgen_run
    left = json.loads((workdir / "results/sections/left/image.json").read_text())
    right = json.loads((workdir / "results/sections/right/image.json").read_text())
    assert left["source_shape"] == right["source_shape"] == [4143, 4603]
    assert left["shape"] == [1036, 576] and right["shape"] == [1036, 576]
    assert left["pixel_size_um"] == pytest.approx(0.108627 * 4)
    spots = {name: json.loads((workdir / f"results/sections/{name}/spots.json").read_text())
             for name in ("left", "right")}
    # Blank-* controls dropped; every transcript lands in exactly one half.
    assert spots["left"]["filtered"]["negative_controls"] == 337
    assert spots["left"]["spots_total"] + spots["right"]["spots_total"] == 80343 - 337
    assert spots["left"]["filtered"]["outside_region"] == spots["right"]["spots_total"]


def test_spots_sit_on_nuclei(vizgen_run):
    """The µm -> pixel mapping, crop and downsampling align spots with the DAPI signal."""
    workdir, _ = vizgen_run
    for name in ("left", "right"):
        image = tifffile.imread(workdir / f"results/sections/{name}/image.tif").astype(float)
        spots = pd.read_parquet(workdir / f"results/sections/{name}/spots.parquet")
        rows, cols = spots["y"].astype(int), spots["x"].astype(int)
        assert image[rows, cols].mean() > 1.3 * image.mean()
        shifted = image[np.clip(rows + 40, 0, image.shape[0] - 1), cols]  # 17 µm off
        assert image[rows, cols].mean() > 1.1 * shifted.mean()


def test_dice_table_and_gene_choice(vizgen_run):
    workdir, config = vizgen_run
    dice = pd.read_csv(workdir / "results/report/dice.csv")
    assert set(dice["section"]) == {"right"}
    assert set(dice["class"]) == {"background", "tissue", *config["genes"], "mean"}
    assert dice["dice"].dropna().between(0, 1).all()
    ensemble = dice[dice["model"] == "ensemble"].set_index("class")
    # The crop lies wholly inside the brain: tissue from the transcripts leaves no background,
    # so the models do not learn it and it is not evaluable, never a number.
    learned = json.loads((workdir / "results/patches/classes.json").read_text())
    assert learned["classes"] == ["tissue", *config["genes"]]
    assert not ensemble.loc["background", "evaluable"]
    assert ensemble.loc["background", "note"].startswith("not learned")
    assert ensemble.loc[["tissue", *config["genes"], "mean"], "evaluable"].all()
    assert ensemble.loc["mean", "dice"] > 0.25
    # The genes in the shipped config are the top-ranked pair of the gene_candidates target.
    ranking = pd.read_csv(workdir / "results/report/gene_candidates.csv")
    assert {ranking.iloc[0]["gene_a"], ranking.iloc[0]["gene_b"]} == set(config["genes"])
    # Then one row per niches: K, each K's niches named by their genes.
    niches = ranking[ranking["kind"] == "niches"]
    assert sorted(niches["niches"]) == [3, 4, 5, 6]
    assert (ranking["kind"] == "pair").sum() == len(ranking) - 4
    assert all(len(names.split("; ")) == k and names.startswith("niche1 (")
               for names, k in zip(niches["niche_names"], niches["niches"]))
