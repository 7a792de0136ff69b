"""Shared fixtures: a tiny config for end-to-end runs through Snakemake."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# Snakemake's SLURM executor plugin runs `scontrol show config` whenever Snakemake starts. With
# SLURM's client installed but no controller up (CI installs SLURM for tests/test_slurm.py, which
# starts its cluster only for itself), that call blocks ~9 s, so every Snakemake start in the
# suite waited 9 s for nothing. Outside test_slurm, tests see an `scontrol` that fails at once
# (the plugin then falls back to its defaults); test_slurm puts the real PATH back.
REAL_PATH = os.environ.get("PATH", "")
_SHIMS = Path(tempfile.mkdtemp(prefix="txmorph-test-shims-"))
(_SHIMS / "scontrol").write_text("#!/bin/sh\necho 'scontrol disabled in tests' >&2\nexit 1\n")
(_SHIMS / "scontrol").chmod(0o755)
os.environ["PATH"] = f"{_SHIMS}{os.pathsep}{REAL_PATH}"


def demo_config() -> dict:
    """config.yaml with what it leaves to the schema's defaults: the demo's sections and genes."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    return {"sections": schema["properties"]["sections"]["default"],
            "genes": schema["properties"]["genes"]["default"],
            **yaml.safe_load((REPO / "config.yaml").read_text())}


def tiny_config() -> dict:
    """The default config shrunk to a run of about a minute: small sections, two sizes."""
    config = demo_config()
    config["demo"].update(height=320, width=320)
    config["patches"].update(sizes=[32, 64], per_class=40, min_per_class=5)
    config["training"].update(epochs=2, patience=1, batch_size=32)
    config["probmap"].update(tile_size=64, threads=1)
    return copy.deepcopy(config)


def run_snakemake(
    workdir: Path, *args: str, config: dict | None = None, timeout: int = 600,
    env: dict | None = None,
):
    """Run the workflow in ``workdir`` (writing ``config`` there first); returns the result."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, PYTHONHASHSEED="0", **(env or {}))
    return subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One complete tiny run of the whole pipeline, shared by the end-to-end tests."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    result = run_snakemake(workdir, "--cores", "2", config=tiny_config())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return workdir
