"""The tiny pipeline submitted to a real single-node SLURM cluster through the SLURM profile.

The cluster is started by tests/slurm/start_slurm.sh (root only: it installs slurm-wlm and munge
with apt-get if missing) and stopped afterwards if a test started it and no other test session
on this machine still uses it (two `make test` runs at once share one cluster). Without root, or where
apt-get cannot install the packages, the test is skipped, unless TXMORPH_REQUIRE_SLURM=1 (as
in .ci/run) or CI is set: then it fails instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REAL_PATH, REPO, run_snakemake, tiny_config

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
PARTITION = os.environ.get("TXMORPH_SLURM_PARTITION", "debug")
# The cluster's state directory (start_slurm.sh's $TXMORPH_SLURM_DIR). Test sessions that use
# the cluster register there, one file per pytest process, and the last one out stops it.
STATE = Path(os.environ.get("TXMORPH_SLURM_DIR", "/var/tmp/txmorph-slurm"))
USERS = STATE / "test-users"
STARTED_BY_TESTS = STATE / "started-by-tests"
# The test cluster has no job accounting: sacct does not work, squeue does (MinJobAge=600).
NO_ACCOUNTING = ["--slurm-status-command", "squeue", "--slurm-no-account"]
# The pipeline's core rules: each must have run as a SLURM job (so must any other rule that ran).
CORE_RULES = {"demo_data", "import_image", "import_spots", "dapi_mask", "tissue_mask",
              "check_section", "centres", "patches", "train", "probmap", "ensemble", "truth",
              "dice", "summary", "demo_truth_check"}


def _required() -> bool:
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return os.environ.get("TXMORPH_REQUIRE_SLURM") == "1" or ci


def _skip_or_fail(reason: str):
    if _required():
        pytest.fail(f"{reason} (TXMORPH_REQUIRE_SLURM=1 or CI is set, so this is an error)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster; stopped afterwards unless it was running before."""
    if os.geteuid() != 0:
        _skip_or_fail("needs root to install and start the SLURM and munge daemons")
    # The real scontrol, for the cluster scripts and Snakemake alike (conftest shims it).
    shimmed_path, os.environ["PATH"] = os.environ["PATH"], REAL_PATH
    try:
        yield from _running_cluster()
    finally:
        os.environ["PATH"] = shimmed_path


@contextlib.contextmanager
def _cluster_lock() -> Iterator[None]:
    """Exclusive among test sessions: starting and registering, or leaving and stopping."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "test-users.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live_users() -> list[Path]:
    """The registered test sessions whose process still runs (stale files are removed)."""
    USERS.mkdir(parents=True, exist_ok=True)
    live = []
    for user in USERS.iterdir():
        if Path("/proc", user.name).exists():
            live.append(user)
        else:
            user.unlink(missing_ok=True)
    return live


def _running_cluster():
    start = time.perf_counter()
    me = USERS / str(os.getpid())
    with _cluster_lock():
        result = subprocess.run(["bash", str(SCRIPTS / "start_slurm.sh")],
                                capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        if result.returncode == 3:
            _skip_or_fail(f"apt-get cannot install slurm-wlm and munge:\n{output[-2000:]}")
        if result.returncode == 4:
            _skip_or_fail(f"this machine has its own SLURM configuration:\n{output[-2000:]}")
        assert result.returncode == 0, f"start_slurm.sh failed:\n{output[-4000:]}"
        if "already running" not in output:
            STARTED_BY_TESTS.touch()  # not a cluster someone started by hand: stop it after
        _live_users()
        me.touch()
    print(f"SLURM cluster ready in {time.perf_counter() - start:.1f} s")
    try:
        yield
    finally:
        # Another test session (a second `make test` at the same time) may still have jobs
        # on the cluster: only the last session out stops it.
        with _cluster_lock():
            me.unlink(missing_ok=True)
            if not _live_users() and STARTED_BY_TESTS.exists():
                subprocess.run(["bash", str(SCRIPTS / "stop_slurm.sh")], check=True, timeout=120)
                STARTED_BY_TESTS.unlink(missing_ok=True)


def _slurm_profile(tmp_path: Path) -> Path:
    """The SLURM profile as a user would set it up: partition edited in its one place."""
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert {"slurm_partition", "slurm_account"} <= set(profile["default-resources"])
    profile["default-resources"]["slurm_partition"] = PARTITION
    directory = tmp_path / "profile"
    directory.mkdir()
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def _squeue() -> dict[str, dict[str, str]]:
    """Job id -> state, partition, memory and CPUs of every job slurmctld still remembers."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%P|%m|%C"],
        capture_output=True, text=True, check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        job_id, state, partition, memory, cpus = line.strip().split("|")
        jobs[job_id] = {"state": state, "partition": partition, "memory": memory, "cpus": cpus}
    return jobs


def _planned_jobs(log: str) -> dict[str, dict]:
    """Snakemake job id -> rule, threads and mem_mb, from the job blocks of the main log."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", log)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        job = re.search(r"^\s+jobid: (\d+)$", block, re.M).group(1)
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        mem_mb = re.search(r"\bmem_mb=(\d+)", block)
        jobs[job] = {"rule": rule, "threads": int(threads.group(1)) if threads else 1,
                     "mem_mb": int(mem_mb.group(1)) if mem_mb else None}
    return jobs


def test_tiny_pipeline_on_slurm_matches_a_local_run(slurm_cluster, tiny_run, tmp_path):
    config = tiny_config()
    # Same thread counts as the local run (CPU training is deterministic per thread count):
    # the threads of train and probmap come from config.yaml, never from the profile.
    local_config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["training"]["threads"] == local_config["training"]["threads"]
    assert config["probmap"]["threads"] == local_config["probmap"]["threads"]

    workdir = tmp_path / "run"
    start = time.perf_counter()
    try:
        result = run_snakemake(
            workdir,
            "--profile", str(_slurm_profile(tmp_path)),
            *NO_ACCOUNTING,
            "--slurm-init-seconds-before-status-checks", "1",  # short jobs: poll early
            "--slurm-keep-successful-logs",                    # the job ids are checked below
            config=config,
            timeout=900,
        )
    except subprocess.TimeoutExpired as error:
        diagnostics = subprocess.run("squeue --states=all; sinfo -R", shell=True,
                                     capture_output=True, text=True).stdout
        pytest.fail(f"the SLURM run did not finish in {error.timeout} s:\n{diagnostics}")
    print(f"tiny pipeline on SLURM in {time.perf_counter() - start:.1f} s")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]

    # Every job was submitted with sbatch, asking for the memory and CPUs Snakemake planned.
    planned = _planned_jobs(log)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert set(planned) - {"all"} and set(submitted) == {
        job for job, plan in planned.items() if plan["rule"] != "all"
    }, f"jobs not submitted to SLURM:\n{log[-4000:]}"
    assert "localrule" not in log.replace("localrule all:", ""), "a rule ran outside SLURM"

    # One SLURM log per job under .snakemake/slurm_logs/rule_<rule>/, named by its SLURM job
    # id; each id is a job slurmctld ran to completion in the partition set in the profile.
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    logs = {path.stem: path for path in slurm_logs.rglob("*.log")}
    assert sorted(logs) == sorted(submitted.values()), (sorted(logs), submitted)
    jobs = _squeue()
    ran = set()
    for job, slurm_id in submitted.items():
        plan, path = planned[job], logs[slurm_id]
        assert path.relative_to(slurm_logs).parts[0] == f"rule_{plan['rule']}", path
        assert f"rule {plan['rule']}:" in path.read_text(), path
        state = jobs.get(slurm_id)
        assert state is not None, f"SLURM job {slurm_id} ({path}) unknown to squeue"
        assert state["state"] == "COMPLETED", (path, state)
        assert state["partition"] == PARTITION, (path, state)
        assert state["memory"] == f"{plan['mem_mb']}M", (path, plan, state)
        assert state["cpus"] == str(plan["threads"]), (path, plan, state)
        ran.add(plan["rule"])
    assert CORE_RULES <= ran, f"rules without a SLURM job: {CORE_RULES - ran}"

    # Same results as the local run.
    on_slurm = pd.read_csv(workdir / "results/report/dice.csv")
    local = pd.read_csv(tiny_run / "results/report/dice.csv")
    pd.testing.assert_frame_equal(on_slurm, local, check_exact=True)
