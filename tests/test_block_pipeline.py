"""End to end: one demo section as a checkerboard of two sections (``blocks``), trained on one
set of blocks and scored on the other (the realbench block folds, txmorph.blocks)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from conftest import run_snakemake, tiny_config
from txmorph.blocks import OUTSIDE_AREA, checkerboard
from txmorph.io.canonical import read_labels

pytestmark = pytest.mark.e2e


def test_block_fold_trains_and_scores_on_disjoint_blocks(tmp_path):
    config = tiny_config()
    section = copy.deepcopy(config["sections"]["train"])
    # Both the demo's training image (the demo generates files by section name: "train").
    config["sections"] = {
        "train": {**section, "blocks": {"grid": [2, 2], "keep": "even"}},
        "test": {**copy.deepcopy(section), "role": "test",
                 "blocks": {"grid": [2, 2], "keep": "odd"}},
    }
    result = run_snakemake(tmp_path, "--cores", "2", "results/report/summary.md",
                           config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results"
    truth_a, truth_b = (read_labels(results / f"truth/{name}.tif") for name in ("train", "test"))
    even = checkerboard(truth_a.shape, (2, 2), "even")
    assert ((truth_a == OUTSIDE_AREA) == ~even).all() and ((truth_b == OUTSIDE_AREA) == even).all()
    # Every training centre keeps one largest patch size (64 px) from the test blocks.
    centres = pd.read_parquet(results / "patches/centres.parquet")
    distance = ndimage.distance_transform_edt(even)
    assert len(centres) and (distance[centres["row"], centres["col"]] >= 64).all()
    dice = pd.read_csv(results / "report/dice.csv")
    assert set(dice["section"]) == {"test"}
    ensemble = dice[(dice["model"] == "ensemble") & (dice["class"] == "mean")]
    assert ensemble["evaluable"].all() and 0 <= ensemble["dice"].iloc[0] <= 1
    assert (dice["model"] == "chance").any()
    assert "blocks {'grid': [2, 2], 'keep': 'odd'}: 50.0% of the image" in \
        (results / "logs/truth/test.log").read_text()
    assert (results / "report/test.png").is_file()

    # The fold's ceilings (workflow/benchmarks/ceiling.py) on its finished working directory:
    # the test blocks' own cross-validation and the in-sample bound, scored like the fold.
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow/benchmarks"))
    import ceiling

    lines: list[str] = []
    for in_sample, model in [(False, "ceiling"), (True, "ceiling_in_sample")]:
        rows = ceiling.fold_ceiling(tmp_path, cores=1, say=lines.append, in_sample=in_sample)
        assert set(rows["model"]) == {model} and set(rows["section"]) == {"test"}
        assert set(rows["class"]) == set(dice["class"])
        evaluable = rows["evaluable"].to_numpy(bool)
        assert (evaluable == dice[dice["model"] == "ensemble"]["evaluable"].to_numpy(bool)).all()
        assert ((rows["dice"][evaluable] >= 0) & (rows["dice"][evaluable] <= 1)).all()
    assert any("block 2/2" in line for line in lines) and any("in sample" in line for line in lines)
