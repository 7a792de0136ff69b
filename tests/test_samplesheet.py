"""Sample sheets (`sections: config/sections.tsv`), section roles and reused-model checks:
the pure functions, without Snakemake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from txmorph.reuse import (INTENSITY_METHOD, MODEL_FORMAT, MODEL_FORMAT_VERSION, Expected,
                           ModelSetError, check_model_set, learned_classes_summary,
                           read_checkpoint_metadata)
from txmorph.roles import spots_problem
from txmorph.samplesheet import SheetError, read_section_sheet
from txmorph.train import model as model_module

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
CLASSES = ["background", "tissue", "Prox1", "Mbp"]


def sheet(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sections.tsv"
    path.write_text(text)
    return path


def read(tmp_path: Path, *lines: str) -> dict:
    return read_section_sheet(sheet(tmp_path, "\n".join(lines) + "\n"), SCHEMA)


def problem(tmp_path: Path, *lines: str) -> str:
    with pytest.raises(SheetError) as error:
        read(tmp_path, *lines)
    return str(error.value)


def test_sheet_gives_the_mapping_a_yaml_block_would(tmp_path):
    (tmp_path / "b.csv").write_text("gene,x,y\n")
    sections = read(
        tmp_path,
        "# one row per section",
        "name\trole\timage\tspots\tpixel_size_um\tcolumns\tregion.x\tchannel\tlevel",
        "brain1\ttrain\tdata/b1.tif\tdata/b1.csv\t0.325\t{gene: target, x: xc, y: yc}\t"
        "[0, 2301]\t0\t",
        "",
        "brain2\ttest\tdata/b2.tif\tdata/b2.csv\t0.325\t\t\tDAPI\t1",
        "new\tpredict\t123.tif\t\t1\t\t\t\t",
    )
    assert sections == yaml.safe_load("""
        brain1: {role: train, image: data/b1.tif, spots: data/b1.csv, pixel_size_um: 0.325,
                 columns: {gene: target, x: xc, y: yc}, region: {x: [0, 2301]}, channel: 0}
        brain2: {role: test, image: data/b2.tif, spots: data/b2.csv, pixel_size_um: 0.325,
                 channel: DAPI, level: 1}
        new: {role: predict, image: '123.tif', pixel_size_um: 1}
    """)
    assert list(sections) == ["brain1", "brain2", "new"]  # row order


def test_dotted_columns_nest(tmp_path):
    sections = read(tmp_path, "name\trole\timage\tspots\tcolumns.gene\tcolumns.x\tcolumns.y",
                    "s1\ttrain\ti.tif\ts.csv\ttarget\txc\tyc")
    assert sections["s1"]["columns"] == {"gene": "target", "x": "xc", "y": "yc"}


@pytest.mark.parametrize("lines, expected", [
    (("name\trole\tspots\tpixel_size_um", "s1\ttrain\ts.csv\t1"),
     "header (row 1): no column `image` (required columns: name, role, image)"),
    (("role\timage\tspots", "train\ti.tif\ts.csv"), "header (row 1): no column `name`"),
    (("name\trole\timage\tspots", "s1\ttrain\ti.tif\ts.csv", "s2\ttest\t\ts.csv"),
     "row 3 (section 's2'), column `image`: `image` is empty; this row needs it"),
    (("name\trole\timage\tspots", "s1\ttrain\ti.tif\ts.csv", "s1\ttest\tj.tif\tt.csv"),
     "row 3, column `name`: duplicate section name 's1' (also on row 2); names must be unique"),
    (("name\trole\timage\tspots", "s1\ttrain\ti.tif\ts.csv\tx"),
     "row 2: 5 tab-separated cells, the header has 4"),
    (("name\trole\timage\tspots\tpixel_size_um", "s1\ttrain\ti.tif\ts.csv\tabc"),
     "row 2 (section 's1'), column `pixel_size_um`: `pixel_size_um` is 'abc'"),
    (("name\trole\timage\tspots", "s1\ttraining\ti.tif\ts.csv"),
     "column `role`: `role` is 'training'; expected one of: train, test, predict"),
    (("name\trole\timage\tspot", "s1\ttrain\ti.tif\ts.csv"),
     "header (row 1): unknown column `spot`; did you mean `spots`?"),
    (("name\trole\timage\tspots", "s1\ttrain\ti.tif\t"),
     "row 2, column `spots`: section 's1' (role: train) has no `spots`"),
    (("name\trole\timage\tspots", "s 1\ttrain\ti.tif\ts.csv"),
     "row 2 (section 's 1'), column `name`: the name 's 1' is not a plain name"),
])
def test_bad_sheet_names_file_row_and_column(tmp_path, lines, expected):
    message = problem(tmp_path, *lines)
    assert message.startswith(f"Sample sheet error in {tmp_path / 'sections.tsv'}")
    assert expected in message


def test_missing_sheet(tmp_path):
    with pytest.raises(SheetError, match="sections.tsv .config `sections`. not found"):
        read_section_sheet(tmp_path / "sections.tsv", SCHEMA)


def test_predict_section_needs_no_spots_but_a_named_table_must_exist(tmp_path):
    assert spots_problem("new", {"role": "predict", "image": "i.tif"}) is None
    assert spots_problem("new", {"role": "predict", "spots": "here.csv"},
                         exists=lambda path: True) is None
    message = spots_problem("new", {"role": "predict", "spots": "gone.csv"},
                            exists=lambda path: False)
    assert "section 'new' (role: predict) names the spot table gone.csv, which does not exist" \
        in message and "leave `spots` out" in message
    assert "test sections need a spot table" in spots_problem("t", {"role": "test"})


def save_tiny_model(path: Path, size: int, classes=CLASSES, network_input: int = 32,
                    method: str = INTENSITY_METHOD) -> None:
    model = model_module.PatchClassifier(size, len(classes), network_input=network_input)
    model_module.save_model(path, model, {
        "classes": list(classes), "normalisation": {"intensity_method": method},
        "training": {"class_counts": [5] * len(classes)}})


@pytest.fixture()
def models_dir(tmp_path) -> Path:
    folder = tmp_path / "models"
    for size in (32, 64):
        save_tiny_model(folder / f"size{size}.pt", size)
    return folder


def test_metadata_read_without_torch_equals_torch_load(models_dir):
    assert INTENSITY_METHOD == model_module.INTENSITY_METHOD
    assert (MODEL_FORMAT, MODEL_FORMAT_VERSION) == (model_module.FORMAT_NAME,
                                                    model_module.FORMAT_VERSION)
    path = models_dir / "size64.pt"
    payload = torch.load(path, weights_only=True)
    read = read_checkpoint_metadata(path)
    assert read["metadata"] == payload["metadata"] and read["format"] == payload["format"]


def test_fitting_models_are_found(models_dir):
    found = check_model_set(models_dir, Expected(CLASSES, [64], 32))
    assert found.files == {64: models_dir / "size64.pt"} and found.classes == CLASSES
    assert found.baseline is None and "has no baseline.npz" in found.notes[0]
    # A model set without background (a training crop inside tissue) still fits.
    save_tiny_model(models_dir / "size32.pt", 32, classes=CLASSES[1:])
    assert check_model_set(models_dir, Expected(CLASSES, [32], 32)).classes == CLASSES[1:]
    summary = learned_classes_summary(CLASSES, read_checkpoint_metadata(
        models_dir / "size32.pt")["metadata"], str(models_dir))
    assert summary["classes"] == CLASSES[1:] and list(summary["dropped"]) == ["background"]



def test_models_of_earlier_runs_with_patches_network_input_still_load(tmp_path):
    # Runs before network_input moved to `training:` recorded it in their config snapshot
    # under `patches`; a model's own `network_input` (from the model) is what reuse checks.
    folder = tmp_path / "models"
    model = model_module.PatchClassifier(64, len(CLASSES), network_input=32)
    model_module.save_model(folder / "size64.pt", model, {
        "classes": list(CLASSES), "normalisation": {"intensity_method": INTENSITY_METHOD},
        "training": {"class_counts": [5] * len(CLASSES)},
        "config": {"patches": {"network_input": 32, "labels": "regions"}, "training": {}}})
    found = check_model_set(folder, Expected(CLASSES, [64], 32))
    assert found.files == {64: folder / "size64.pt"}
    loaded, metadata = model_module.load_model(folder / "size64.pt")
    assert loaded.network_input == 32 and metadata["config"]["patches"]["network_input"] == 32

@pytest.mark.parametrize("change, expected", [
    (lambda d: None, "models: no model for patch size 96 in"),
    (lambda d: save_tiny_model(d / "size96.pt", 96, classes=["background", "tissue", "Mbp",
                                                              "Prox1"]),
     "size96.pt was trained for the gene classes Mbp, Prox1, this config's `genes` give Prox1, "
     "Mbp; set `genes` to the models' classes (same names, same order)"),
    (lambda d: save_tiny_model(d / "size96.pt", 96, network_input=48),
     "size96.pt was trained with training.network_input 48, this config has 32"),
    (lambda d: save_tiny_model(d / "size96.pt", 96, method="global:0-100"),
     "size96.pt was trained with intensity normalisation 'global:0-100'"),
    (lambda d: (d / "size96.pt").write_text("not a model"), "size96.pt is not a txmorph model"),
])
def test_models_that_do_not_fit_say_what_differs(models_dir, change, expected):
    change(models_dir)
    with pytest.raises(ModelSetError) as error:
        check_model_set(models_dir, Expected(CLASSES, [32, 64, 96], 32))
    message = str(error.value)
    assert expected in message and len(message.splitlines()) == 1
    assert "remove `models:` from the config to train new models" in message


def test_baseline_is_reused_only_when_it_fits(models_dir):
    header = {"format": "x", "classes": CLASSES, "windows": [32, 64]}
    np.savez(models_dir / "baseline.npz", header=np.array(json.dumps(header)))
    assert check_model_set(models_dir, Expected(CLASSES, [32, 64], 32), [32, 64]).baseline \
        == models_dir / "baseline.npz"
    unfit = check_model_set(models_dir, Expected(CLASSES, [32, 64], 32), [32, 48, 64])
    assert unfit.baseline is None and "the baseline is not scored" in unfit.notes[0]


def test_the_readme_example_sheet_reads(tmp_path):
    text = (REPO / "docs/usage.md").read_text().split("## Many sections: a sample sheet")[1]
    example = text.split("```text\n")[1].split("```")[0]
    sections = read(tmp_path, *example.splitlines())
    assert [s["role"] for s in sections.values()] == ["train", "test", "predict", "predict"]
    assert sections["brain1"]["columns"] == {"gene": "target", "x": "xc", "y": "yc"}
    assert sections["dapi4"] == {"role": "predict", "image": "data/big.tif",
                                 "pixel_size_um": 0.325, "region": {"x": [0, 4000]}}


def test_this_runs_own_model_folder_is_refused(models_dir, monkeypatch):
    monkeypatch.chdir(models_dir.parent)
    with pytest.raises(ModelSetError, match="is this run's own model folder"):
        check_model_set("models", Expected(CLASSES, [32], 32), own_folder="models")
