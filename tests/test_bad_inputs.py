"""End-to-end: inputs that are wrong in ways a reader cannot see stop with a clear message
before heavy work (or run with a warning and a not-evaluable score), and never leave an
output that looks complete. Each case starts from the tiny demo's files, altered."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_snakemake, tiny_config

pytestmark = pytest.mark.e2e

SECTIONS = ("train", "test")


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> Path:
    """The tiny demo's two sections (nuclei.tif, spots.csv), generated once."""
    workdir = tmp_path_factory.mktemp("demo_files")
    targets = [f"resources/demo/{s}/{f}" for s in SECTIONS for f in ("nuclei.tif", "spots.csv")]
    result = run_snakemake(workdir, "--cores", "2", *targets, config=tiny_config())
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "resources/demo"


def make_case(tmp_path: Path, demo_files: Path, **config_updates) -> dict:
    """Copy the demo files to ``tmp_path/data`` and return a config that reads them there."""
    config = tiny_config()
    for name in SECTIONS:
        shutil.copytree(demo_files / name, tmp_path / "data" / name)
        config["sections"][name].update(image=f"data/{name}/nuclei.tif",
                                        spots=f"data/{name}/spots.csv")
    for key, value in config_updates.items():
        config[key].update(value)
    return config


def output(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize("section, value", [("train", 0), ("test", 65535)])
def test_blank_image_is_refused_at_import(tmp_path, demo_files, section, value):
    config = make_case(tmp_path, demo_files)
    image = tmp_path / f"data/{section}/nuclei.tif"
    blank = np.full_like(tifffile.imread(image), value)
    tifffile.imwrite(image, blank)
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    text = output(result)
    assert "the image is blank" in text and f"every pixel is {value}" in text
    assert f"data/{section}/nuclei.tif" in text
    assert "tissue_exclusion_um" not in text  # not the old, wrong cause
    assert not (tmp_path / f"results/sections/{section}/image.tif").exists()
    assert not (tmp_path / "results/report/dice.csv").exists()
    assert not list((tmp_path / f"results/sections/{section}").glob(".tmp-*"))


def scale_spots(path: Path, factor: float) -> None:
    spots = pd.read_csv(path)
    spots[["x", "y"]] *= factor
    spots.to_csv(path, index=False)


def upscale_image(path: Path, factor: int) -> None:
    image = tifffile.imread(path)
    tifffile.imwrite(path, np.kron(image, np.ones((factor, factor), image.dtype)))


@pytest.mark.parametrize("alter", ["spots_at_half_scale", "image_at_twice_scale"])
def test_spots_and_image_at_different_scales_stop_before_training(tmp_path, demo_files, alter):
    config = make_case(tmp_path, demo_files)
    if alter == "spots_at_half_scale":
        scale_spots(tmp_path / "data/test/spots.csv", 0.5)
    else:
        upscale_image(tmp_path / "data/test/nuclei.tif", 2)
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    text = output(result)
    assert "section 'test'" in text and "input checks failed" in text
    assert "cover only a corner of the tissue" in text and "data/test/spots.csv" in text
    assert "pixel_size_um" in text  # what to check
    assert not (tmp_path / "results/sections/test/checks.json").exists()
    assert not list((tmp_path / "results").glob("models/*.pt"))
    assert not (tmp_path / "results/report/dice.csv").exists()


def test_scale_check_can_be_turned_into_a_warning(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files, checks={"on_failure": "warn"})
    scale_spots(tmp_path / "data/test/spots.csv", 0.5)
    target = "results/sections/test/checks.json"
    result = run_snakemake(tmp_path, "--cores", "1", target, config=config)
    assert result.returncode == 0, output(result)[-3000:]
    log = (tmp_path / "results/logs/check_section/test.log").read_text()
    assert "WARNING" in log and "cover only a corner" in log
    assert "cover only a corner" in (tmp_path / target).read_text()


def test_patch_larger_than_section_stops_before_patches(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files, patches={"sizes": [32, 384]})
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    text = output(result)
    assert "patch size(s) [384] px" in text and "320 px" in text
    assert "patches.sizes" in text
    assert not (tmp_path / "results/patches/size384.h5").exists()
    assert not (tmp_path / "results/patches/size32.h5").exists()


def test_sparse_test_gene_is_not_evaluable(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files)
    spots_path = tmp_path / "data/test/spots.csv"
    spots = pd.read_csv(spots_path)
    mbp = spots.index[spots["gene"] == "Mbp"]
    spots.drop(mbp[5:]).to_csv(spots_path, index=False)  # 5 Mbp spots remain
    result = run_snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, output(result)[-3000:]
    table = pd.read_csv(tmp_path / "results/report/dice.csv")
    mbp_rows = table[table["class"] == "Mbp"]
    assert mbp_rows["dice"].isna().all() and not mbp_rows["evaluable"].any()
    assert mbp_rows["note"].str.contains("truth.min_spots_per_region").all()
    prox1 = table[table["class"] == "Prox1"]
    assert prox1["evaluable"].all() and prox1["dice"].notna().all()
    # The mean leaves Mbp out.
    ensemble = table[table["model"] == "ensemble"].set_index("class")
    expected = ensemble.loc[["background", "tissue", "Prox1"], "dice"].mean()
    assert ensemble.loc["mean", "dice"] == pytest.approx(expected, abs=1e-3)
    summary = (tmp_path / "results/report/summary.md").read_text()
    assert "Mbp has 5 spots" in summary and "n/e" in summary
    log = (tmp_path / "results/logs/check_section/test.log").read_text()
    assert "not evaluable" in log
    truth = tifffile.imread(tmp_path / "results/truth/test.tif")
    assert not (truth == 3).any()  # no reference region drawn around 5 spots
