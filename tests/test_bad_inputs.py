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


def test_training_class_from_three_spots_stops_before_patches(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files)
    spots_path = tmp_path / "data/train/spots.csv"
    spots = pd.read_csv(spots_path)
    mbp = spots.index[spots["gene"] == "Mbp"]
    spots.drop(mbp[3:]).to_csv(spots_path, index=False)  # 3 Mbp spots remain
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    text = output(result)
    assert "class 'Mbp' cannot be learnt" in text and "train: 3 spots" in text
    assert "truth.min_spots_per_region = 10" in text and "Traceback" not in text
    log = (tmp_path / "results/logs/check_section/train.log").read_text()
    assert "not learnt from this training section" in log
    assert not (tmp_path / "results/patches/centres.parquet").exists()
    assert not (tmp_path / "results/models/reference.json").exists()
    assert not (tmp_path / "results/report/dice.csv").exists()


def test_a_class_sparse_in_one_training_section_is_learnt_from_the_other(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files)
    # A second training section: the train section's image with 3 Mbp spots left.
    shutil.copytree(tmp_path / "data/train", tmp_path / "data/train2")
    spots_path = tmp_path / "data/train2/spots.csv"
    spots = pd.read_csv(spots_path)
    spots.drop(spots.index[spots["gene"] == "Mbp"][3:]).to_csv(spots_path, index=False)
    config["sections"]["train2"] = dict(config["sections"]["train"], image="data/train2/nuclei.tif",
                                        spots="data/train2/spots.csv")
    target = "results/models/reference.json"
    result = run_snakemake(tmp_path, "--cores", "1", target, "results/truth/train2.tif",
                           config=config)
    assert result.returncode == 0, output(result)[-3000:]
    import json

    reference = json.loads((tmp_path / target).read_text())
    assert reference["classes"]["Mbp"]["threshold"] is not None  # learnt from `train`
    assert reference["training_sections"] == ["train", "train2"]
    log = (tmp_path / "results/logs/reference/reference.log").read_text()
    assert "section train2: class Mbp too sparse for a region (3 spots" in log
    assert not (tifffile.imread(tmp_path / "results/truth/train2.tif") == 3).any()
    checks = json.loads((tmp_path / "results/sections/train2/checks.json").read_text())
    assert any(f["gene"] == "Mbp" and f["severity"] == "warning" for f in checks["findings"])


def test_saturated_training_image_is_an_error_or_a_visible_warning(tmp_path, demo_files):
    config = make_case(tmp_path, demo_files)
    image_path = tmp_path / "data/train/nuclei.tif"
    image = tifffile.imread(image_path)
    # x40 saturates 35 % of a 2048-px demo section's tissue; the tiny demo's dimmer nuclei
    # need x400 for as much (x40: 4 %, a warning).
    saturated = np.clip(image.astype(np.float64) * 400, 0, np.iinfo(image.dtype).max)
    tifffile.imwrite(image_path, saturated.astype(image.dtype))
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    text = output(result)
    assert "the image is saturated" in text and "data/train/nuclei.tif" in text
    assert "checks.on_failure: warn" in text and "Traceback" not in text
    assert not (tmp_path / "results/patches/centres.parquet").exists()
    # Turned into a warning: it runs, and says so in checks.json and summary.md.
    config["checks"]["on_failure"] = "warn"
    result = run_snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, output(result)[-3000:]
    checks = (tmp_path / "results/sections/train/checks.json").read_text()
    assert "the image is saturated" in checks and '"saturated"' in checks
    assert "the image is saturated" in (tmp_path / "results/report/summary.md").read_text()


def test_import_messages_name_the_config_file_that_defines_the_section(tmp_path, demo_files):
    import yaml

    config = make_case(tmp_path, demo_files)
    spots_path = tmp_path / "data/test/spots.csv"
    pd.read_csv(spots_path).rename(columns={"x": "col"}).to_csv(spots_path, index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    (tmp_path / "my.yaml").write_text(yaml.safe_dump({"sections": config["sections"]}))
    result = run_snakemake(tmp_path, "--cores", "1", "results/sections/test/spots.parquet",
                           "--configfile", str(tmp_path / "my.yaml"))
    assert result.returncode != 0
    text = output(result)
    assert "my.yaml" in text and "for this section in" in text and "in config.yaml" not in text
