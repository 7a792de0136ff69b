"""The Snakemake HTML report and its figure functions (txmorph.report)."""

from __future__ import annotations

import base64
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import run_snakemake
from txmorph.report import (
    dice_chart,
    patch_counts,
    patch_gallery,
    probability_overlay,
    training_curves,
)

PNG = b"\x89PNG\r\n\x1a\n"
CLASSES = ["background", "tissue", "Prox1", "Mbp"]


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000
    assert not list(path.parent.glob(".tmp-*")), "temporary file left behind"


# Unit tests on small synthetic data.


def test_patch_counts():
    counts = patch_counts(np.array([0, 1, 1, 3]), CLASSES)
    assert counts.to_dict() == {"background": 1, "tissue": 2, "Prox1": 0, "Mbp": 1}
    with pytest.raises(ValueError):
        patch_counts(np.array([4]), CLASSES)


def test_patch_gallery(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [5, 3, 0, 12])  # a class without patches is an empty row
    images = rng.integers(0, 4000, size=(labels.size, 32, 32), dtype=np.uint16)
    patch_gallery(images, labels, CLASSES, tmp_path / "gallery.png", per_class=4, title="t")
    assert_png(tmp_path / "gallery.png")
    with pytest.raises(ValueError):
        patch_gallery(images[:3], labels, CLASSES, tmp_path / "bad.png")


def test_training_curves(tmp_path):
    epochs = np.arange(1, 6)
    table = pd.DataFrame({"epoch": epochs, "train_loss": 1 / epochs, "val_loss": 1.2 / epochs,
                          "train_accuracy": 1 - 0.5 / epochs, "val_accuracy": 1 - 0.6 / epochs})
    training_curves({"size32": table, "size64": table.head(3)}, tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    with pytest.raises(ValueError):
        training_curves({"size32": table.drop(columns="val_loss")}, tmp_path / "bad.png")


def test_probability_overlay(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.normal(100, 10, size=(50, 70)).astype(np.float32)
    logits = rng.normal(size=(4, 13, 18))  # stride 4: ceil(50/4) x ceil(70/4)
    probabilities = np.exp(logits) / np.exp(logits).sum(0)
    probability_overlay(image, probabilities, CLASSES, 4, tmp_path / "map.png", title="t")
    assert_png(tmp_path / "map.png")
    with pytest.raises(ValueError):
        probability_overlay(image, probabilities[:3], CLASSES, 4, tmp_path / "bad.png")


def test_dice_chart(tmp_path):
    rows = [("test", model, c, d) for model in ("size32", "size64", "ensemble")
            for c, d in zip([*CLASSES, "mean"], [0.9, 0.7, np.nan, 0.4, 0.6])]
    table = pd.DataFrame(rows, columns=["section", "model", "class", "dice"])
    two_sections = pd.concat([table, table.assign(section="other")])
    dice_chart(table, tmp_path / "one.png")
    dice_chart(two_sections, tmp_path / "two.png", reference=None)
    assert_png(tmp_path / "one.png")
    assert_png(tmp_path / "two.png")
    with pytest.raises(ValueError):
        dice_chart(table.drop(columns="dice"), tmp_path / "bad.png")


# End to end: the figures of a finished tiny run, and the HTML report built from them.

FIGURES = ["patch_counts.csv", "training_curves.png", "dice_chart.png", "dice.csv",
           "patches/size32.png", "patches/size64.png", "test.png",
           *[f"probmaps/test/{m}.png" for m in ("size32", "size64", "ensemble")]]


@pytest.mark.e2e
def test_report_figures_are_default_targets(tiny_run):
    for name in FIGURES:
        path = tiny_run / "results/report" / name
        assert path.exists(), name
        if name.endswith(".png"):
            assert_png(path)
    counts = pd.read_csv(tiny_run / "results/report/patch_counts.csv", index_col="class")
    assert list(counts.columns) == ["size32", "size64"]
    assert counts.loc[CLASSES].eq(40).all().all() and counts.loc["total"].eq(160).all()
    for rule in ("patch_gallery", "patch_counts", "training_curves", "probmap_figure",
                 "dice_chart"):
        logs = list((tiny_run / "results/logs" / rule).glob("*.log"))
        assert logs and all("finished in" in log.read_text() for log in logs), rule


@pytest.mark.e2e
def test_html_report(tiny_run):
    result = run_snakemake(tiny_run, "--report", "report.html", "--cores", "1")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ERROR" not in result.stderr, result.stderr[-4000:]  # e.g. a broken caption
    html = (tiny_run / "report.html").read_text()
    for name in FIGURES:
        assert f'"results/report/{name}"' in html, name
    # The overview renders the config; the captions are there.
    assert "Configuration in brief" in html and "Prox1, Mbp" in html
    assert "Andersson et al., ISBI 2020" in html
    # The Dice table is embedded whole (base64 data URL).
    match = re.search(r"data:text/csv;charset=utf8;filename=dice\.csv;base64,([A-Za-z0-9+/=]+)", html)
    assert match, "Dice table not embedded"
    embedded = base64.b64decode(match.group(1)).decode()
    assert embedded == (tiny_run / "results/report/dice.csv").read_text()
    assert embedded.startswith("section,model,class,dice")


@pytest.mark.e2e
def test_failing_report_rule_logs_its_error(tiny_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # keeps mtimes: only the figure reruns
    metrics = workdir / "results/models/size32.metrics.csv"
    pd.read_csv(metrics).drop(columns="val_loss").to_csv(metrics, index=False)
    result = run_snakemake(workdir, "--cores", "1", "results/report/training_curves.png")
    assert result.returncode != 0
    log = (workdir / "results/logs/training_curves/training_curves.log").read_text()
    assert "Traceback" in log and "need columns" in log and "val_loss" in log
    assert not (workdir / "results/report/training_curves.png").exists()
