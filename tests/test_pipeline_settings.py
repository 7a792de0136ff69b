"""txmorph.pipeline: what workflow/rules/common.smk computes from the config, without Snakemake.

Params are cache keys and rerun triggers, so several tests pin values and key order exactly.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from txmorph import configcheck

from txmorph.errors import InputError
from txmorph.io.spots import VENDOR_KEYS
from txmorph.pipeline import problems, rawinputs, settings, targets

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
# The import keys as common.smk listed them by hand before they came from the schema: their
# order is that of import_params, a rerun trigger.
IMPORT_KEYS_BEFORE = (
    "level", "channel", "z_projection", "downsample", "region", "spots_format", "pixel_size_um",
    "units", "origin_um", "transform", "min_qv", "fov_positions", "columns",
    "spots_outside_image")


def validated(config: dict) -> dict:
    """``config`` with the schema's defaults filled in, as Snakemake's validate() leaves it."""
    config = copy.deepcopy(config)
    configcheck.fill_defaults(config, SCHEMA)
    return config


@pytest.fixture
def demo() -> dict:
    """The repository's config.yaml (the demo), validated."""
    return validated(yaml.safe_load((REPO / "config.yaml").read_text()))


def section_keys() -> list[str]:
    return list(SCHEMA["properties"]["sections"]["additionalProperties"]["properties"])


# --- one list of import keys ---------------------------------------------------------------


def test_import_keys_are_the_schemas_section_keys_in_order():
    keys = settings.import_keys(SCHEMA)
    assert keys == IMPORT_KEYS_BEFORE
    assert set(keys) | settings.NOT_IMPORT_KEYS == set(section_keys())
    assert settings.NOT_IMPORT_KEYS <= set(section_keys())  # no stale exclusion


def test_vendor_keys_are_import_keys():
    # The spot readers' options reach import_spots only through import_params.
    assert set(VENDOR_KEYS) <= set(settings.import_keys(SCHEMA))


def test_import_params_keep_the_key_order(demo):
    params = settings.import_params("train", demo["sections"]["train"],
                                    settings.import_keys(SCHEMA), 0.5)
    assert list(params) == [*IMPORT_KEYS_BEFORE, "name"]
    assert params["pixel_size_um"] == 0.5 and params["name"] == "train"
    assert params["transform"] is None and params["downsample"] == 1


# --- settings ------------------------------------------------------------------------------


def test_gene_groups_from_a_list_or_classes():
    assert settings.gene_groups({"genes": ["A", "B"]}) == {"A": ["A"], "B": ["B"]}
    assert settings.gene_groups({"genes": {"x": ("A", "B")}}) == {"x": ["A", "B"]}


def test_section_params_are_of_the_downsampled_image():
    assert settings.section_params("s", {"downsample": 4}, 0.25) == {"name": "s",
                                                                     "pixel_size_um": 1.0}
    assert settings.section_params("s", {}, 0.25)["pixel_size_um"] == 0.25


def test_side_files():
    assert settings.side_files({"transform": [[1, 0, 0], [0, 1, 0]]}) == []
    assert settings.side_files({"fov_positions": "f.csv", "transform": "t.csv"}) == ["f.csv",
                                                                                     "t.csv"]


def test_tissue_spots_input(demo):
    assert settings.tissue_spots_input(demo, "test") == "results/sections/test/spots.parquet"
    demo["sections"]["test"]["role"] = "predict"
    assert settings.tissue_spots_input(demo, "test") == []
    demo["tissue_mask"]["source"] = "dapi"
    assert settings.tissue_spots_input(demo, "train") == []


def test_check_and_truth_settings(demo):
    assert settings.check_settings(demo) == {
        "min_fraction_in_tissue": demo["checks"]["min_fraction_in_tissue"],
        "min_tissue_covered": demo["checks"]["min_tissue_covered"],
        "min_spots_per_region": demo["truth"]["min_spots_per_region"]}
    assert list(settings.truth_settings(demo)) == ["quantity", "sigma_um", "rule", "enrichment"]


def test_training_params_take_per_size_overrides_by_either_key(demo):
    base = settings.training_params(demo, "32")
    assert not set(base) & set(settings.NOT_TRAINING_PARAMS)
    assert base["learning_rate"] == demo["training"]["learning_rate"]
    demo["training"]["per_size"] = {64: {"learning_rate": 0.5}, "96": {"widths": [8]}}
    assert settings.training_params(demo, "64")["learning_rate"] == 0.5
    assert settings.training_params(demo, 96)["widths"] == [8]
    assert list(settings.training_params(demo, "64")) == list(base)  # overrides keep the order


def test_strides_and_baseline_windows(demo):
    # (size // network_input) * 2 ** len(widths): 32 // 32 * 4.
    assert settings.native_stride(demo, 32) == 4
    assert settings.native_stride(demo, "160") == 20
    assert settings.baseline_stride(demo) == 4
    demo["probmap"]["output_stride"] = 2
    assert settings.baseline_stride(demo) == 2
    assert settings.baseline_windows(demo) == [32, 96, 160]


def test_baseline_feature_set_defaults_to_nuclei_and_is_one_the_baseline_knows(demo):
    from txmorph.baseline import FEATURE_SETS

    assert demo["baseline"]["features"] == "nuclei"
    bare = validated({k: v for k, v in yaml.safe_load((REPO / "config.yaml").read_text()).items()
                      if k != "baseline"})
    assert bare["baseline"] == {"features": "nuclei"}  # the schema's default, as config.yaml's
    assert SCHEMA["properties"]["baseline"]["properties"]["features"]["enum"] == list(FEATURE_SETS)


def test_probmap_memory_grows_with_tile_and_attempt(demo):
    # (384 + ceil(192 * (1024 + 32)^2 / 2^20)) MB at the native stride, doubled on a retry.
    assert settings.probmap_mem_mb(demo, "32", 1) == 589
    assert settings.probmap_mem_mb(demo, "32", 2) == 1178
    demo["probmap"]["output_stride"] = 1
    assert settings.probmap_mem_mb(demo, 32, 1) == 384 + 545


def test_seeds(demo):
    assert settings.demo_seed(demo, "train") == [1, zlib.crc32(b"train")]
    assert settings.probmap_seed(demo, "test", "64") is None
    demo["probmap"]["adapt_batchnorm"] = True
    assert settings.probmap_seed(demo, "test", "64") == [2020, zlib.crc32(b"test"), 64]


# --- targets -------------------------------------------------------------------------------


def test_section_lists(demo):
    demo["sections"]["new"] = {"role": "predict", "image": "new.tif"}
    assert targets.sections_with_role(demo, "train") == ["train"]
    assert targets.mapped_sections(demo) == ["test", "new"]
    assert targets.checked_sections(demo) == ["train", "test"]
    demo["models"] = "old/results/models"
    assert targets.checked_sections(demo) == ["test"]
    assert targets.model_names(demo) == ["size32", "size64", "size96", "size128", "size160",
                                         "ensemble"]


def test_demo_sections_are_recognised_by_their_folder(demo):
    assert targets.is_demo_section("test", demo["sections"]["test"])
    assert not targets.is_demo_section("train", demo["sections"]["test"])
    assert not targets.is_demo_section("mine", {"image": "data/mine.tif"})


def test_final_outputs_of_the_demo(demo):
    sizes = [32, 64, 96, 128, 160]
    models = [f"size{size}" for size in sizes] + ["ensemble"]
    assert targets.final_outputs(demo) == [
        "results/report/dice.csv", "results/report/summary.md",
        "results/report/demo_truth/test.csv",
        "results/report/patch_counts.csv", "results/report/training_curves.png",
        *[f"results/report/patches/size{size}.png" for size in sizes],
        "results/report/dice_chart.png",
        *[f"results/report/probmaps/test/{model}.png" for model in models],
        "results/labels/test.tif"]


def test_final_outputs_with_reused_models_predict_sections_and_spatialdata(demo):
    demo["models"] = "old/results/models"
    demo["sections"]["test"]["role"] = "predict"
    demo["export"]["spatialdata"] = True
    outputs = targets.final_outputs(demo)
    assert "results/report/dice_chart.png" not in outputs
    assert not [path for path in outputs if "patch" in path or "training" in path]
    assert "results/report/demo_truth/test.csv" not in outputs  # not scored
    assert outputs[-2:] == ["results/masks/test.tif", "results/spatialdata/test.zarr"]
    assert targets.spatialdata_export_sections(demo) == ["test"]


# --- problems ------------------------------------------------------------------------------


def test_a_valid_config_has_no_problems(demo):
    assert problems.config_problems(demo) == []
    assert problems.config_error([], "config.yaml") is None


def test_config_problems_in_order(demo):
    demo["sections"] = {"a": {"role": "train", "image": "a.tif"}}
    demo["patches"]["sizes"] = [32, 48]
    demo["genes"] = {"x": ["A", "B"], "y": ["B"]}
    demo["training"]["per_size"] = {"40": {}, 32: {"widths": [8]}}
    demo["training"]["pretrain"]["method"] = "simclr"
    found = problems.config_problems(demo)
    assert found == [
        "no section has role: test or predict (at least one is needed to apply the models to)",
        "section 'a' (role: train) has no `spots`: train sections need a spot table; give its "
        "path, or make the section `role: predict` to only map it",
        "patches.sizes: 48 is not a multiple of training.network_input (32); patches are "
        "average-pooled by an integer factor",
        "genes: B belong to more than one class; each gene may mark one class only",
        "training.per_size: '40' is not one of patches.sizes [32, 48]",
        "training.per_size: 32: widths [8] differ from training.widths, but training.pretrain "
        "trains one encoder for every size; drop the override or set "
        "training.pretrain.method: none"]
    assert problems.config_error(found[:2], "config.yaml + my.yaml") == (
        "Config error in config.yaml + my.yaml:\n  - " + found[0] + "\n  - " + found[1])


def test_training_needs_a_train_section(demo):
    demo["sections"]["train"]["role"] = "test"
    assert problems.config_problems(demo)[0].startswith("no section has role: train")
    demo["models"] = "old/results/models"
    assert problems.config_problems(demo) == []


def test_reused_weights_must_fit_the_ensemble_method(demo, tmp_path):
    demo["models"], demo["probmap"]["ensemble"] = str(tmp_path), "weighted"
    weights = tmp_path / "ensemble.json"
    assert problems.config_problems(demo) == [
        f"probmap.ensemble: weighted needs the weights fitted where the models were trained, "
        f"but {weights} does not exist; set probmap.ensemble to what the models were run "
        f"with, or mean"]
    weights.write_text(json.dumps({"method": "best"}))
    assert "was fitted as 'best'; set" in problems.config_problems(demo)[0]
    weights.write_text(json.dumps({"method": "weighted"}))
    assert problems.config_problems(demo) == []


def test_reused_model_set_is_an_input_error(demo, tmp_path):
    demo["models"] = str(tmp_path / "missing")
    with pytest.raises(InputError):
        problems.reused_model_set(demo)


# --- raw inputs ----------------------------------------------------------------------------


def test_fingerprints_of_missing_and_unreadable_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the fingerprint cache lies in the working directory
    table = tmp_path / "spots.csv"
    section = {"spots": str(table), "transform": [[1, 0, 0], [0, 1, 0]]}
    assert rawinputs.raw_input_fingerprint("s", section, "spots") is None  # made by a rule
    table.write_text("gene,x,y\n")
    found = rawinputs.spots_fingerprints("s", section)
    assert list(found) == ["spots"] and isinstance(found["spots"], str)
    section["fov_positions"] = str(table / "fovs.csv")  # below a file: not a missing file
    with pytest.raises(InputError, match=r"^section 's': the fov_positions file"):
        rawinputs.spots_fingerprints("s", section)


def test_pixel_size_from_config_or_image(tmp_path):
    assert rawinputs.pixel_size_of("s", {"pixel_size_um": 0.5, "image": "none.tif"}) == 0.5
    missing = tmp_path / "none.tif"
    with pytest.raises(InputError) as error:
        rawinputs.pixel_size_of("s", {"image": str(missing)})
    assert str(error.value) == (f"section 's': image {missing} not found; set 'pixel_size_um' "
                                "for section 's' in config.yaml")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((16, 16), np.uint16))
    with pytest.raises(InputError, match="does not record its pixel size"):
        rawinputs.pixel_size_of("s", {"image": str(plain)})


# --- the rule files ------------------------------------------------------------------------

RULES = REPO / "workflow/rules"


def test_common_smk_holds_no_logic():
    assert len((RULES / "common.smk").read_text().splitlines()) <= 150


def test_rule_files_define_no_functions():
    # Functions are common.smk's (thin) or the package's; spatialdata_common.smk holds the
    # helpers of spatialdata.smk, the one file that includes it.
    for path in RULES.glob("*.smk"):
        if path.name not in ("common.smk", "spatialdata_common.smk"):
            assert not re.search(r"^\s*def ", path.read_text(), re.M), path.name


def test_the_package_does_not_import_snakemake():
    # Nowhere, not even inside a function: common.smk turns the package's errors into
    # WorkflowError, and the Snakefile hands configcheck plain file lists.
    for path in (REPO / "workflow/txmorph").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) snakemake\b", path.read_text(), re.M), path


@pytest.mark.e2e
def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Congratulations" in result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_niches_replace_the_genes_and_their_mistakes_are_one_line_each(demo, tmp_path):
    assert problems.class_mode_problem({"genes": ["A", "B"]}, "config.yaml") is None
    assert problems.class_mode_problem({"niches": 4}, "config.yaml") is None
    both = problems.class_mode_problem({"genes": ["A", "B"], "niches": 4}, "my.yaml")
    assert both.startswith("Config error in my.yaml: both `genes`") and "remove one" in both
    demo["niches"], demo["genes"] = 3, None
    assert settings.gene_groups(demo) == {f"niche{i}": [f"niche{i}"] for i in (1, 2, 3)}
    assert settings.class_spots(demo, "test") == "results/niches/test.parquet"
    assert problems.config_problems(demo) == []
    demo["models"] = str(tmp_path)
    [reused] = problems.config_problems(demo)
    assert reused.startswith("niches with `models:`") and "role: predict" in reused
    demo["niches"] = None
    assert settings.class_spots(demo, "test") == "results/sections/test/spots.parquet"
