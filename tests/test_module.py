"""txmorph as a Snakemake module (the form snakedeploy writes): from another folder, with the
user's config in config/config.yaml, every file of the workflow's own is found beside it."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, tiny_config

pytestmark = pytest.mark.e2e

MODULE_SNAKEFILE = f"""\
configfile: "config/config.yaml"


module txmorph:
    snakefile:
        "{REPO / 'Snakefile'}"
    config:
        config


use rule * from txmorph as txmorph_*
"""


def _deploy(folder, config: dict) -> None:
    (folder / "config").mkdir(parents=True)
    (folder / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "Snakefile").write_text(MODULE_SNAKEFILE)


def _snakemake(folder, *args: str, timeout: int = 600):
    # No --snakefile: the user's own Snakefile in the working directory, as users run it.
    return subprocess.run([*SNAKEMAKE, *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)


def test_module_runs_the_demo_like_the_checkout(tmp_path, tiny_run) -> None:
    _deploy(tmp_path, tiny_config())
    result = _snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for name in ("results/report/dice.csv", "results/models/reference.json"):
        assert (tmp_path / name).read_bytes() == (tiny_run / name).read_bytes(), name
    assert (tmp_path / "results/logs/train/size32.log").is_file()
    assert not (tmp_path / "workflow").exists()  # nothing of the workflow copied in


def test_module_dry_runs_the_merfish_example(tmp_path) -> None:
    data = REPO.parent / "shared" / "data" / "vizgen_mouse_brain"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    config = yaml.safe_load((REPO / "resources/vizgen_mouse_brain/config.yaml").read_text())
    for section in config["sections"].values():
        for key in ("image", "spots"):
            section[key] = str((REPO / section[key]).resolve())
    _deploy(tmp_path, config)
    result = _snakemake(tmp_path, "-n", "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert "txmorph_train" in result.stdout
