"""End-to-end: using what was learned. Train on the demo's train section and map a third,
spot-free demo section (`role: predict`), with the sections from a sample sheet; add sections
to the sheet without retraining; reuse the trained models in another directory (`models:`).

One training run serves every test here (module fixture): the tiny demo, enlarged just enough
(512 px sections, 150 patches per class, 16 epochs) for maps that find both gene regions.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_snakemake, tiny_config
from txmorph.demo.layout import REGION_A, REGION_B
from txmorph.evaluate.metrics import dice_scores, sample_labels_on_grid
from txmorph.probmap.mapsio import read_label_map, read_probability_map

pytestmark = pytest.mark.e2e

MAPS = ("size32", "size64", "ensemble", "baseline")
TRAINING_RULES = ("centres", "patches", "train", "baseline_train")
HEADER = "name\trole\timage\tspots\tpixel_size_um\n"


def demo_row(name: str, role: str) -> str:
    spots = f"resources/demo/{name}/spots.csv" if role != "predict" else ""
    return f"{name}\t{role}\tresources/demo/{name}/nuclei.tif\t{spots}\t1.0\n"


def predict_config() -> dict:
    config = tiny_config()
    config["demo"].update(height=512, width=512)
    config["patches"].update(per_class=150)
    # Spatially held-out validation blocks are too few on a 512-px section to stop early well.
    # 16 epochs: with the tissue border at the outermost transcripts (tissue_mask.gap_um), 12
    # gave Prox1 0.74 / Mbp 0.61 on `new` against its true regions, 16 give 0.73 / 0.76.
    config["training"].update(epochs=16, patience=16, validation="random")
    # Augmentation slows learning more than 12 epochs on one 512-px section afford (Mbp Dice
    # on `new` 0.36 with the default augmentation, 0.73 without; intensity or blur alone 0.56
    # and 0.58). This test is about the predict route; the full demo, trained with it, reaches
    # Mbp 0.90 (docs/defaults.md).
    config["training"]["augment"] = {"intensity": 0.0, "blur_px": 0.0, "noise": 0.0}
    config["sections"] = "config/sections.tsv"
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run that trains on `train` and maps the spot-free `new` (sections from a sheet)."""
    workdir = tmp_path_factory.mktemp("predict_run")
    (workdir / "config").mkdir()
    (workdir / "config/sections.tsv").write_text(
        HEADER + demo_row("train", "train") + demo_row("new", "predict"))
    result = run_snakemake(workdir, "--cores", "2", "all", "export_all_ometiff",
                           config=predict_config())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return workdir


def jobs_of(result) -> dict[str, int]:
    """The job counts of a dry run (its 'Job stats' table)."""
    text = result.stdout + result.stderr
    table = text.split("Job stats:")[1].split("\n\n")[0] if "Job stats:" in text else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def output(result) -> str:
    return result.stdout + result.stderr


def test_predict_section_gets_maps_and_labels_that_find_the_true_regions(trained):
    for name in MAPS:
        prob_map = read_probability_map(trained / f"results/probmaps/new/{name}.h5")
        assert prob_map.classes == ["background", "tissue", "Prox1", "Mbp"]
        assert prob_map.model == name  # the explicit marker: size{S}, ensemble or baseline
        assert prob_map.patch_size == (int(name[4:]) if name.startswith("size") else None)
        assert np.allclose(prob_map.probabilities.sum(0), 1, atol=1e-4)
    labels = read_label_map(trained / "results/labels/new.tif")
    assert labels.classes == ["background", "tissue", "Prox1", "Mbp"] and labels.model == "ensemble"
    # The generator's true regions use the pipeline's class order (0 background, 1 tissue,
    # 2 gene A = Prox1, 3 gene B = Mbp).
    regions = tifffile.imread(trained / "resources/demo/new/regions.tif")
    reference = sample_labels_on_grid(regions, labels.stride, labels.labels.shape)
    dice = dice_scores(labels.labels.astype(np.int64), reference, 4)
    assert dice[REGION_A] >= 0.7 and dice[REGION_B] >= 0.7, dice
    for figure in ("probmaps/new/ensemble.png", "probmaps/new/size32.png", "new.png"):
        assert (trained / "results/report" / figure).read_bytes()[:4] == b"\x89PNG"
    assert "## Prediction-only section `new`" in (trained / "results/report/summary.md").read_text()
    with tifffile.TiffFile(trained / "results/export/new/ensemble.ome.tif") as exported:
        assert exported.is_ome and exported.series[0].shape[0] == 4


def test_predict_section_has_no_spots_truth_or_dice_and_tissue_from_dapi(trained):
    assert not (trained / "results/report/dice/new.csv").exists()
    assert not (trained / "results/logs/dice").exists()  # no Dice job at all: no test section
    assert (trained / "results/report/dice.csv").read_text().strip() == \
        "section,model,class,dice,evaluable,note"
    for absent in ("results/sections/new/spots.parquet", "results/sections/new/checks.json",
                   "results/truth/new.tif"):
        assert not (trained / absent).exists(), absent
    mask = tifffile.imread(trained / "results/masks/new.tif")
    assert np.array_equal(mask, tifffile.imread(trained / "results/masks/new.dapi.tif"))
    assert 0 < mask.mean() < 1


def test_adding_sheet_rows_maps_them_without_retraining(trained):
    sheet = trained / "config/sections.tsv"
    original = sheet.read_text()
    try:
        # A predict row takes the image options too (here region and downsample).
        cropped = demo_row("new", "predict").rstrip("\n").split("\t")
        cropped[0] = "crop"
        with_crop = (original.replace("pixel_size_um\n", "pixel_size_um\tregion.x\tdownsample\n")
                     + "\t".join(cropped) + "\t[0, 256]\t2\n")
        sheet.write_text(with_crop + demo_row("test", "test") + demo_row("new2", "predict"))
        result = run_snakemake(trained, "-n", "--cores", "1")
        # The cropped and downsampled predict section's labels, made for real. (Not together
        # with the new test row: with a file target, Snakemake 9.27 skips jobs that lie
        # downstream of a rerun job behind an ancient() input, here the target's own chain.)
        sheet.write_text(with_crop)
        cropped_run = run_snakemake(trained, "--cores", "2", "results/labels/crop.tif")
    finally:
        sheet.write_text(original)
    assert result.returncode == 0, output(result)[-3000:]
    jobs = jobs_of(result)
    assert not set(TRAINING_RULES) & set(jobs), jobs
    assert jobs["probmap"] == 6 and jobs["dice"] == 1 and jobs["summary"] == 1
    assert jobs["import_spots"] == 1  # the test section's; never a predict section's
    assert "results/report/dice/new2.csv" not in output(result)
    assert cropped_run.returncode == 0, output(cropped_run)[-3000:]
    labels = read_label_map(trained / "results/labels/crop.tif")
    # 512 rows x 256 columns, downsampled by 2, on the size-32 model's grid (stride 4).
    assert labels.labels.shape == (256 // labels.stride, 128 // labels.stride)


def test_reused_models_train_nothing_and_give_identical_maps(trained, tmp_path):
    config = predict_config()
    config["models"] = str(trained / "results/models")
    config["sections"] = {"new": {"role": "predict", "pixel_size_um": 1.0,
                                  "image": str(trained / "resources/demo/new/nuclei.tif")}}
    dry = run_snakemake(tmp_path, "-n", "--cores", "1", config=config)
    assert dry.returncode == 0, output(dry)[-3000:]
    assert not set(TRAINING_RULES) & set(jobs_of(dry)), jobs_of(dry)
    assert jobs_of(dry)["reuse_model"] == 2
    # The maps and the summary (the other figures are drawn as in the first run).
    targets = [f"results/probmaps/new/{name}.h5" for name in MAPS] + ["results/report/summary.md"]
    result = run_snakemake(tmp_path, "--cores", "2", *targets, config=config)
    assert result.returncode == 0, output(result)[-3000:]
    for name in MAPS:
        here = read_probability_map(tmp_path / f"results/probmaps/new/{name}.h5")
        there = read_probability_map(trained / f"results/probmaps/new/{name}.h5")
        assert here.probabilities.tobytes() == there.probabilities.tobytes(), name
        assert (here.classes, here.stride) == (there.classes, there.stride)
    assert not (tmp_path / "results/patches").exists()
    for rule in TRAINING_RULES:
        assert not (tmp_path / "results/logs" / rule).exists(), rule
    assert "Models reused from" in (tmp_path / "results/report/summary.md").read_text()


def test_models_that_do_not_fit_the_config_stop_before_any_job(trained, tmp_path):
    config = predict_config()
    config["models"] = str(trained / "results/models")
    config["genes"] = ["Prox1", "Gfap"]
    config["patches"]["sizes"] = [32, 96]
    config["sections"] = {"new": {"role": "predict", "pixel_size_um": 1.0,
                                  "image": str(trained / "resources/demo/new/nuclei.tif")}}
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert "models: no model for patch size 96 in" in output(result)
    assert "(it has sizes: 32, 64)" in output(result) and "Traceback" not in output(result)
    config["patches"]["sizes"] = [32, 64]
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert re.search(r"models: \S+/size32\.pt was trained for the gene classes Prox1, Mbp, this "
                     r"config's `genes` give Prox1, Gfap; set `genes`", output(result))
    assert not (tmp_path / "results").exists()


def test_class_thresholds_travel_with_reused_models(trained, tmp_path):
    import json
    import shutil

    models = tmp_path / "models"
    shutil.copytree(trained / "results/models", models)
    reference = json.loads((models / "reference.json").read_text())
    assert reference["training_sections"] == ["train"]
    assert set(reference["classes"]) == {"Prox1", "Mbp"}
    # A definition that no pixel of the section meets: a refit on the section here would
    # redraw Prox1's region, the reused threshold must leave it empty.
    reference["classes"]["Prox1"]["threshold"] = 0.999
    (models / "reference.json").write_text(json.dumps(reference))
    config = predict_config()
    config["models"] = str(models)
    config["sections"] = {"train": {"role": "test", "pixel_size_um": 1.0,
                                    "image": str(trained / "resources/demo/train/nuclei.tif"),
                                    "spots": str(trained / "resources/demo/train/spots.csv")}}
    run = tmp_path / "run"
    run.mkdir()
    result = run_snakemake(run, "--cores", "2", "results/truth/train.tif", config=config)
    assert result.returncode == 0, output(result)[-3000:]
    assert json.loads((run / "results/models/reference.json").read_text()) == reference
    here = tifffile.imread(run / "results/truth/train.tif")
    there = tifffile.imread(trained / "results/truth/train.tif")
    assert (there == 2).any() and not (here == 2).any()
    assert ((here == 3) == (there == 3)).all()  # Mbp: the same threshold, the same region
    # Models without class definitions, or defined with another bandwidth: one line each.
    config["truth"] = {"sigma_um": 11.0}
    result = run_snakemake(run, "-n", config=config)
    assert result.returncode != 0
    assert "classes were defined with truth.sigma_um = 15.0, this config has 11.0" in output(result)
    del config["truth"]
    (models / "reference.json").unlink()
    result = run_snakemake(run, "-n", config=config)
    assert result.returncode != 0 and "has no reference.json" in output(result)
    assert "Traceback" not in output(result)


def test_bad_sections_stop_before_any_job(tmp_path):
    config = tiny_config()
    config["sections"]["new"] = {"role": "predict", "image": "data/new.tif",
                                 "spots": "data/new_spots.csv"}
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0 and "Traceback" not in output(result)
    assert "section 'new' (role: predict) names the spot table data/new_spots.csv, which does " \
        "not exist" in output(result)
    (tmp_path / "sections.tsv").write_text(HEADER + demo_row("train", "train")
                                           + demo_row("train", "predict"))
    config["sections"] = "sections.tsv"
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert "Sample sheet error in sections.tsv, row 3, column `name`: duplicate section name " \
        "'train' (also on row 2)" in output(result)
    assert not (tmp_path / "results").exists()
