"""The config schema and the cross-field checks reject mistakes before any job runs."""

import copy

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO, run_snakemake, tiny_config

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def _default():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_fill_in():
    config = _default()
    del config["truth"]
    validate(config, SCHEMA)
    assert config["truth"] == {"sigma_um": 15.0, "rule": "otsu", "enrichment": 2.0}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["genes"].pop(), "too short"),
        (lambda c: c["genes"].__setitem__(1, "tissue"), "should not be valid"),
        (lambda c: c["training"].update(epochs=0), "less than the minimum"),
        (lambda c: c["training"].update(learing_rate=0.1), "learing_rate"),
        (lambda c: c["sections"]["train"].update(role="training"), "is not one of"),
        (lambda c: c["sections"]["train"].pop("image"), "image"),
        (lambda c: c["sections"]["test"].update(pixel_size_um=-1), "less than or equal"),
        (lambda c: c["patches"].update(sizes=[]), "should be non-empty"),
        (lambda c: c["truth"].update(rule="mean"), "is not one of"),
        (lambda c: c["training"]["per_size"].update({64: {"lr": 1}}), "lr"),
    ],
)
def test_schema_rejects_bad_config(mutate, message):
    config = _default()
    mutate(config)
    with pytest.raises(Exception, match=message):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["patches"].update(sizes=[32, 48]), "48 is not a multiple of"),
        (lambda c: c["sections"]["test"].update(role="train"), "no section has role: test"),
        (lambda c: c["training"].update(per_size={100: {"epochs": 3}}), "100 is not one of"),
        (lambda c: c["genes"].append("Snap25") or c["genes"].append("Snap25"), "non-unique"),
    ],
)
def test_snakemake_stops_early_with_a_clear_message(tmp_path, mutate, message):
    config = copy.deepcopy(tiny_config())
    mutate(config)
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def _user_sections(tmp_path, image_writer):
    """A config whose train section has no pixel_size_um and its own image (see image_writer)."""
    import numpy as np

    data = tmp_path / "data"
    data.mkdir(parents=True)
    image_writer(data / "img.ome.tif", np.zeros((64, 64), np.uint16))
    (data / "spots.csv").write_text("gene,x,y\nProx1,1,1\nMbp,2,2\n")
    config = copy.deepcopy(tiny_config())
    config["sections"]["train"] = {"role": "train", "image": "data/img.ome.tif",
                                   "spots": "data/spots.csv"}
    return config


def test_pixel_size_from_ome_metadata(tmp_path):
    import tifffile

    def ome(path, image):
        tifffile.imwrite(path, image, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.65,
                                                          "PhysicalSizeY": 0.65})

    import json

    result = run_snakemake(tmp_path, "--cores", "1", "results/sections/train/image.json",
                           config=_user_sections(tmp_path, ome))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "results/sections/train/image.json").read_text())
    assert summary["pixel_size_um"] == 0.65 and summary["metadata_pixel_size_um"] == 0.65


def test_missing_pixel_size_without_metadata_is_explained(tmp_path):
    import tifffile

    def plain(path, image):
        tifffile.imwrite(path, image)

    result = run_snakemake(tmp_path, "-n", config=_user_sections(tmp_path, plain))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "does not record its pixel size" in output
    assert "set 'pixel_size_um' for section 'train'" in output
