"""Re-running only what changed, caching between workflows, determinism and interruptions."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, SNAKEMAKE, run_snakemake, tiny_config

pytestmark = pytest.mark.e2e


def _planned_outputs(workdir: Path) -> set[str]:
    """The outputs a dry run would (re)create, e.g. {'results/models/size64.pt', ...}."""
    result = run_snakemake(workdir, "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = set()
    for line in (result.stdout + result.stderr).splitlines():
        match = re.match(r"\s+output: (.*)", line)
        if match:
            outputs.update(path.strip() for path in match.group(1).split(","))
    return outputs


def _copy_run(tiny_run: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # copy2 keeps modification times
    return workdir


def _edit_config(workdir: Path, edit) -> None:
    path = workdir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_changing_one_sizes_training_reruns_only_that_size(tiny_run, tmp_path):
    workdir = _copy_run(tiny_run, tmp_path)
    _edit_config(workdir, lambda c: c["training"]["per_size"].update({64: {"learning_rate": 0.002}}))
    planned = _planned_outputs(workdir)
    assert {"results/models/size64.pt", "results/probmaps/test/size64.h5",
            "results/probmaps/test/ensemble.h5", "results/report/dice/test.csv"} <= planned
    assert not any("patches/" in p or "size32" in p for p in planned), planned


def test_changing_the_genes_reruns_from_patches_on(tiny_run, tmp_path):
    workdir = _copy_run(tiny_run, tmp_path)
    _edit_config(workdir, lambda c: c.update(genes=list(reversed(c["genes"]))))
    planned = _planned_outputs(workdir)
    assert {"results/patches/size32.h5", "results/models/size32.pt",
            "results/truth/test.tif", "results/report/dice.csv"} <= planned
    # The spot-based tissue masks may rerun (their spots are re-imported); the images and
    # the DAPI masks may not.
    assert not any(p.startswith("resources/") or p.endswith(".dapi.tif") for p in planned), planned


def test_editing_the_test_spots_reruns_only_truth_and_scores(tiny_run, tmp_path):
    workdir = _copy_run(tiny_run, tmp_path)
    spots = workdir / "resources/demo/test/spots.csv"
    time.sleep(0.01)
    with spots.open("a") as f:
        f.write("Snap25,10.0,10.0\n")
    planned = _planned_outputs(workdir)
    assert "results/truth/test.tif" in planned and "results/report/dice/test.csv" in planned
    assert not any(p.startswith(("results/patches", "results/models", "results/probmaps"))
                   for p in planned), planned
    # The test section's tissue comes from its spots; the training section's stays.
    assert "results/masks/test.tif" in planned
    assert not any(p.startswith("results/masks/train") or p.endswith(".dapi.tif")
                   for p in planned), planned


def test_editing_package_code_is_detected(tmp_path):
    # A private copy of the workflow, so that editing its code cannot disturb other tests.
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "workflow", checkout / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__", "profiles"))
    shutil.copytree(REPO / "envs", checkout / "envs")
    shutil.copy2(REPO / "Snakefile", checkout / "Snakefile")
    workdir = checkout / "run"
    config = tiny_config()
    config["patches"]["sizes"] = [32]
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [*SNAKEMAKE, "--snakefile", str(checkout / "Snakefile"), "--directory", str(workdir)]
    done = subprocess.run([*command, "--cores", "2"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = checkout / "workflow/txmorph/evaluate/metrics.py"
    metrics.write_text(metrics.read_text() + "\n# edited\n")
    dry = subprocess.run([*command, "-n"], capture_output=True, text=True, timeout=600)
    planned = re.findall(r"\s+output: (\S+)", dry.stdout + dry.stderr)
    assert "results/report/dice/test.csv" in planned, dry.stdout[-2000:]
    assert not any(p.startswith(("results/models", "results/patches")) for p in planned)


def _assert_same_results(first: Path, second: Path) -> None:
    for size in (32, 64):
        with h5py.File(first / f"results/patches/size{size}.h5") as a, \
                h5py.File(second / f"results/patches/size{size}.h5") as b:
            for name in ("images", "labels", "centres", "section"):
                assert np.array_equal(a[name][...], b[name][...]), name
        weights_a = torch.load(first / f"results/models/size{size}.pt", weights_only=True)
        weights_b = torch.load(second / f"results/models/size{size}.pt", weights_only=True)
        for key, tensor in weights_a["state_dict"].items():
            assert torch.equal(tensor, weights_b["state_dict"][key]), key
    pd.testing.assert_frame_equal(pd.read_csv(first / "results/report/dice.csv"),
                                  pd.read_csv(second / "results/report/dice.csv"))


def test_same_config_and_seed_give_identical_results_and_the_cache_is_used(tiny_run, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    first = run_snakemake(tmp_path / "a", "--cores", "2", "--cache", config=tiny_config(), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    _assert_same_results(tiny_run, tmp_path / "a")  # computed afresh: bitwise identical

    second = run_snakemake(tmp_path / "b", "--cores", "2", "--cache", config=tiny_config(), env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    output = second.stdout + second.stderr
    for path in ("results/patches/size32.h5", "results/models/size64.pt",
                 "results/probmaps/test/size32.h5"):
        assert f"output file {path} from cache" in output
    # Snakemake creates a cached job's log empty; a training that ran would have logged epochs.
    for log in (tmp_path / "b/results/logs").glob("*/*.log"):
        if log.parent.name in ("patches", "train", "probmap"):
            assert log.read_text() == "", f"{log} shows that the job ran"
    _assert_same_results(tiny_run, tmp_path / "b")


def test_a_killed_run_leaves_nothing_that_looks_complete(tiny_run, tmp_path):
    workdir = tmp_path / "killed"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    process = subprocess.Popen(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--cores", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    train_log = workdir / "results/logs/train"
    deadline = time.time() + 300
    while time.time() < deadline and not any(train_log.glob("*.log")):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # no clean-up at all: the harshest interruption
    process.wait()
    for model in (workdir / "results/models").glob("*.pt"):
        torch.load(model, weights_only=True)  # anything named like a model is a whole model
    assert not (workdir / "results/report/dice.csv").exists()

    # A killed Snakemake leaves its lock behind: unlock, then finish what is incomplete.
    assert run_snakemake(workdir, "--unlock").returncode == 0
    resumed = run_snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(tiny_run / "results/report/dice.csv"),
                                  pd.read_csv(workdir / "results/report/dice.csv"))
