"""txmorph.pipeline.runconfig.settle: the one call from the merged config to the checked run
settings, without Snakemake."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO
from txmorph.configcheck import SCHEMA_FILE, Source
from txmorph.pipeline.runconfig import ConfigError, settle

SCHEMA = yaml.safe_load((REPO / SCHEMA_FILE).read_text())
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())


def _merged(*configs: dict) -> dict:
    merged: dict = {}
    for config in configs:
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **copy.deepcopy(value)}
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def test_sections_are_the_users_or_else_the_demos_and_defaults_are_filled() -> None:
    user = {"sections": {"b1": {"role": "train", "image": "a.tif", "spots": "a.csv"},
                         "b2": {"role": "test", "image": "b.tif", "spots": "b.csv"}},
            "genes": ["X", "Y"]}
    assert "sections" not in DEMO  # config.yaml leaves them to the schema's default
    config = _merged(DEMO, user)  # as Snakemake merges config.yaml and a --configfile
    settle(config, SCHEMA, [Source("config.yaml", DEMO, False), Source("my.yaml", user, True)])
    assert set(config["sections"]) == {"b1", "b2"}  # never mixed with the demo's
    assert config["sections"]["b1"]["spots_outside_image"] == "error"  # a schema default
    assert config["probmap"]["ensemble"] == "mean"
    demo = _merged(DEMO)
    settle(demo, SCHEMA, [Source("config.yaml", DEMO, False)])
    assert set(demo["sections"]) == {"train", "test"}
    assert demo["sections"]["train"]["image"] == "resources/demo/train/nuclei.tif"


def test_a_schema_mistake_names_the_file_and_the_key() -> None:
    user = {"patches": {"sizez": [32]}}
    config = _merged(DEMO, user)
    with pytest.raises(ConfigError, match=r"Config error in my.yaml: unknown key `patches.sizez`"):
        settle(config, SCHEMA, [Source("config.yaml", DEMO, False), Source("my.yaml", user, True)])


def test_mistakes_across_keys_are_reported_after_the_defaults() -> None:
    config = _merged(DEMO, {"patches": {"sizes": [32, 48]}})
    with pytest.raises(ConfigError, match="48 is not a multiple of training.network_input"):
        settle(config, SCHEMA, [Source("config.yaml", DEMO, False)])
