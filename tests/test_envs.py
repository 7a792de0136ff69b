"""Static checks of the software environments: conda and containers cannot run in CI."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from conftest import REPO, SNAKEMAKE

CONDA_TO_PIP = {"pytorch": "torch"}


def _pip_pins() -> dict[str, str]:
    pins = {}
    lines = [line for name in ("requirements.txt", "requirements-spatialdata.txt")
             for line in (REPO / name).read_text().splitlines()]
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in (REPO / "workflow/rules").glob("*.smk"):
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", path.read_text(), re.M | re.S):
            blocks[match.group(1)] = (path, match.group(2))
    return blocks


def test_every_rule_names_an_existing_conda_env():
    blocks = _rule_blocks()
    assert {"demo_data", "patches", "train", "probmap", "truth", "dice", "summary"} <= set(blocks)
    for rule, (path, body) in blocks.items():
        if not re.search(r"^\s+(script|shell|run):", body, re.M):
            continue  # a target rule that only gathers inputs runs nothing
        match = re.search(r'conda:\n\s+"([^"]+)"', body)
        assert match, f"rule {rule} in {path.name} has no conda: directive"
        assert (path.parent / match.group(1)).resolve().is_file(), f"rule {rule}: no {match.group(1)}"
        assert re.search(r"\blog:\n", body), f"rule {rule} has no log:"
        assert re.search(r"\bthreads:", body), f"rule {rule} has no threads:"


def test_env_pins_agree_with_the_pip_pins():
    pins = _pip_pins()
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        assert "conda-forge" in env["channels"]
        for dependency in env["dependencies"]:
            if isinstance(dependency, dict):  # a pip: block, pinned as requirements.txt pins
                for requirement in dependency["pip"]:
                    name, _, version = requirement.partition("==")
                    assert version and pins.get(name.lower()) == version, (
                        f"{env_file.name}: pip {requirement} vs pip {pins.get(name.lower())}")
                continue
            if dependency.startswith("pip="):
                continue  # the installer of the pip: block, not a package txmorph imports
            name, _, version = dependency.partition("=")
            assert version, f"{env_file.name}: {dependency} is not pinned"
            if name == "python":
                continue
            pip_name = CONDA_TO_PIP.get(name, name)
            assert pins.get(pip_name) == version, f"{env_file.name}: {name}={version} vs pip {pins.get(pip_name)}"


def test_dockerfile_is_what_snakemake_containerize_writes():
    env = dict(os.environ, PATH=f"{REPO / 'tests/tools'}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([*SNAKEMAKE, "--containerize"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == (REPO / "Dockerfile").read_text(), (
        "Dockerfile is stale: regenerate it with `snakemake --containerize > Dockerfile`")
    for env_file in (REPO / "envs").glob("*.yaml"):
        assert f"COPY envs/{env_file.name} " in result.stdout


def test_rules_in_envs_without_torch_do_not_import_it():
    # Rules of the data and report envs (baseline, gene choice, checks, sampling) must run
    # without torch, which only envs/torch.yaml has.
    import subprocess
    import sys

    code = ("import sys; import txmorph.baseline, txmorph.genes.choice, "
            "txmorph.genes.report, txmorph.checks, txmorph.patches.sampling, txmorph.probmap.grid, "
            "txmorph.evaluate.metrics; print('torch' in sys.modules)")
    env = {"PYTHONPATH": str(REPO / "workflow")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
