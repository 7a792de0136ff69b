"""Reruns on content changes of raw inputs (txmorph.io.fingerprint) and clear messages for inputs
that cannot be read (at DAG time and in rule scripts)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import yaml

from conftest import REPO, SNAKEMAKE, run_snakemake, tiny_config
from txmorph.errors import InputError
from txmorph.io import fingerprint as fp
from txmorph.scripting import run_rule

OLD = 1_600_000_000_000_000_000  # an mtime (ns) long past


# ----------------------------------------------------------------------------- fingerprint.py


def test_same_content_same_fingerprint(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"gene,x,y\nProx1,1,2\n")
    (tmp_path / "b.csv").write_bytes(b"gene,x,y\nProx1,1,2\n")
    (tmp_path / "c.csv").write_bytes(b"gene,x,y\nProx1,1,3\n")
    a, b, c = (fp.fingerprint(tmp_path / name) for name in ("a.csv", "b.csv", "c.csv"))
    assert a == b != c
    assert a.startswith("sha256:") and len(a) == len("sha256:") + 64


def test_hash_file_streams_the_whole_file(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(fp, "CHUNK", 1000)
    data = np.random.default_rng(0).bytes(10_500)
    (tmp_path / "f").write_bytes(data)
    assert fp.hash_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "RACY_SECONDS", 0)  # files written by the test are seconds old
    return fp.FingerprintCache(tmp_path / "cache" / "fingerprints.json")


def test_changed_content_with_restored_mtime_is_seen(tmp_path, monkeypatch):
    cache = _cache(tmp_path, monkeypatch)
    spots = tmp_path / "spots.csv"
    spots.write_text("gene,x,y\nProx1,1,2\n")
    os.utime(spots, ns=(OLD, OLD))
    before = fp.fingerprint(spots, cache)
    # cp -p / rsync -a: another file moved into place with the old timestamp
    replacement = tmp_path / "new.csv"
    replacement.write_text("gene,x,y\nProx1,1,3\n")  # same size
    os.utime(replacement, ns=(OLD, OLD))
    os.replace(replacement, spots)
    assert spots.stat().st_mtime_ns == OLD
    second = fp.fingerprint(spots, cache)
    assert second != before
    # and rewritten in place (same inode), timestamp restored: not cached while racy
    monkeypatch.setattr(fp, "RACY_SECONDS", 2.0)
    spots.write_text("gene,x,y\nProx1,1,4\n")
    os.utime(spots, ns=(OLD, OLD))
    third = fp.fingerprint(spots, cache)
    assert third not in (before, second)
    stored = fp.FingerprintCache(cache.path).entries.values()
    assert third.split(":")[1] not in [entry["digest"] for entry in stored]


def test_cache_hit_does_not_read_the_file(tmp_path, monkeypatch):
    cache = _cache(tmp_path, monkeypatch)
    image = tmp_path / "image.tif"
    image.write_bytes(b"\0" * 5000)
    first = fp.fingerprint(image, cache)
    assert cache.path.is_file()

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(fp, "hash_file", no_reading)
    assert fp.fingerprint(image, cache) == first
    assert fp.fingerprint(image, fp.FingerprintCache(cache.path)) == first  # from the file
    # a changed stat (here: the inode of a copy moved into place) is hashed again
    copy_path = tmp_path / "copy.tif"
    shutil.copy2(image, copy_path)
    os.replace(copy_path, image)
    with pytest.raises(AssertionError, match="read again"):
        fp.fingerprint(image, cache)


def test_a_corrupt_cache_is_ignored(tmp_path, monkeypatch):
    cache_file = tmp_path / "fingerprints.json"
    cache_file.write_text("{not json")
    monkeypatch.setattr(fp, "RACY_SECONDS", 0)
    (tmp_path / "f").write_bytes(b"abc")
    value = fp.fingerprint(tmp_path / "f", fp.FingerprintCache(cache_file))
    assert value == fp.fingerprint(tmp_path / "f")
    assert json.loads(cache_file.read_text())["files"]  # rewritten as valid JSON


def test_directory_fingerprint(tmp_path):
    def tree(root: Path, b: bytes = b"b") -> Path:
        (root / "sub").mkdir(parents=True)
        (root / "a").write_bytes(b"a")
        (root / "sub" / "b").write_bytes(b)
        return root

    one, two = tree(tmp_path / "one.zarr"), tree(tmp_path / "two.zarr")
    value = fp.fingerprint(one)
    assert value.startswith("sha256-tree:") and value == fp.fingerprint(two)
    (two / "sub" / "b").write_bytes(b"c")
    assert fp.fingerprint(two) != value
    (two / "sub" / "b").write_bytes(b"b")
    assert fp.fingerprint(two) == value
    (two / "sub" / "b").rename(two / "sub" / "c")
    assert fp.fingerprint(two) != value


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fp.fingerprint(tmp_path / "nothing.csv")


# ----------------------------------------------------------------------------- run_rule


def _fake_job(tmp_path, **inputs):
    class Inputs(list):
        def items(self):
            return iter(inputs.items())

    return SimpleNamespace(rule="import_spots", log=[str(tmp_path / "job.log")],
                           input=Inputs(inputs.values()), wildcards=SimpleNamespace(section="s1"))


def test_run_rule_reports_an_unreadable_input_clearly(tmp_path):
    smk = _fake_job(tmp_path, spots="data/spots.csv", image_info="x.json")

    def main(smk, log):
        raise PermissionError(13, "Permission denied", "data/spots.csv")

    with pytest.raises(SystemExit):
        run_rule(main, smk)
    log = (tmp_path / "job.log").read_text()
    assert "section 's1': the spots file 'data/spots.csv' cannot be read: permission denied" in log
    assert "chmod" in log and "a bug" not in log and "Traceback" not in log


def test_run_rule_sees_a_permission_error_behind_an_input_error(tmp_path):
    smk = _fake_job(tmp_path, image="data/img.tif")

    def main(smk, log):
        try:
            open("data/img.tif")  # noqa: SIM115 (fails)
        except OSError as error:
            raise InputError("image file 'data/img.tif': could not be read ... corrupt") from error

    with pytest.raises(SystemExit):
        run_rule(main, smk)
    log = (tmp_path / "job.log").read_text()
    assert "the image file 'data/img.tif' was not found" in log and "corrupt" not in log


def test_run_rule_still_calls_other_os_errors_bugs(tmp_path):
    smk = _fake_job(tmp_path, spots="data/spots.csv")

    def main(smk, log):
        raise FileNotFoundError(2, "No such file or directory", "some/internal/file")

    with pytest.raises(FileNotFoundError):
        run_rule(main, smk)
    assert "a bug" in (tmp_path / "job.log").read_text()


# ----------------------------------------------------------------------------- end to end


def _jobs(output: str) -> set[str]:
    return {line.split()[1].rstrip(":") for line in output.splitlines()
            if line.startswith(("rule ", "localrule "))}


@pytest.mark.e2e
def test_replaced_inputs_rerun_their_import_whatever_the_timestamp(tmp_path):
    config = tiny_config()
    target = "results/sections/train/spots.parquet"
    result = run_snakemake(tmp_path, "--cores", "1", target, config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    spots_info = json.loads((tmp_path / "results/sections/train/spots.json").read_text())
    image_info = json.loads((tmp_path / "results/sections/train/image.json").read_text())
    assert spots_info["fingerprints"]["spots"].startswith("sha256:")
    assert image_info["fingerprint"].startswith("sha256:")

    def dry_run():
        result = run_snakemake(tmp_path, "-n", "--cores", "1", target)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    assert "Nothing to be done" in dry_run()
    spots = tmp_path / "resources/demo/train/spots.csv"
    image = tmp_path / "resources/demo/train/nuclei.tif"
    old = {path: path.stat().st_mtime_ns for path in (spots, image)}
    # the same content copied over with its timestamp (cp -p): nothing to do
    shutil.copy2(spots, tmp_path / "copy.csv")
    os.replace(tmp_path / "copy.csv", spots)
    os.utime(image, ns=(old[image], old[image]))  # touched, timestamp restored
    assert "Nothing to be done" in dry_run()
    # different spots with the old timestamp: import_spots again, not import_image
    lines = spots.read_text().splitlines()
    spots.write_text("\n".join(lines[:-1]) + "\n")
    os.utime(spots, ns=(old[spots], old[spots]))
    output = dry_run()
    assert _jobs(output) == {"import_spots"}, output[-3000:]
    assert "Params have changed" in output
    # a different image with the old timestamp: import_image (and so import_spots) again
    pixels = tifffile.imread(image)
    tifffile.imwrite(image, pixels[::-1].copy())
    os.utime(image, ns=(old[image], old[image]))
    assert _jobs(dry_run()) == {"import_image", "import_spots"}


# ----------------------------------------------------------------------------- unreadable inputs


def _unprivileged_runner() -> tuple[list[str], str, int | None]:
    """How to run Snakemake so that a chmod-000 file cannot be read: as user 'nobody', or, where
    nobody cannot reach this Python (e.g. under /root), as root without the capabilities that
    bypass file permissions. Returns (command prefix, user name, uid to own the files) or skips
    with the reason."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to run Snakemake as a user who cannot read a file")
    import pwd

    tried = []
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
        tried.append("no user 'nobody'")
    if nobody is not None and shutil.which("runuser"):
        prefix = ["runuser", "-u", "nobody", "--"]
        probe = subprocess.run([*prefix, *SNAKEMAKE, "--version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return prefix, "nobody", nobody.pw_uid
        tried.append(f"nobody cannot run {SNAKEMAKE[0]}: {probe.stderr.strip()[-200:]}")
    if shutil.which("setpriv"):
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
        probe = subprocess.run([*prefix, *SNAKEMAKE, "--version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return prefix, pwd.getpwuid(0).pw_name, None
        tried.append(f"setpriv failed: {probe.stderr.strip()[-200:]}")
    else:
        tried.append("setpriv is not installed")
    pytest.skip("cannot run Snakemake without read permission: " + "; ".join(tried))


@pytest.fixture
def unprivileged_workdir():
    workdir = Path(tempfile.mkdtemp(prefix="txmorph-unreadable-", dir="/tmp"))
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.parametrize("key", ["spots", "image"])
def test_unreadable_input_is_named_before_any_job_runs(unprivileged_workdir, key):
    prefix, user, uid = _unprivileged_runner()
    workdir = unprivileged_workdir
    data = workdir / "data"
    data.mkdir()
    pixels = np.random.default_rng(0).integers(0, 999, (200, 200)).astype(np.uint16)
    tifffile.imwrite(data / "img.tif", pixels)
    (data / "spots.csv").write_text("gene,x,y\nProx1,10,10\nMbp,5,5\n")
    config = copy.deepcopy(tiny_config())
    for section in config["sections"].values():
        section.update(image="data/img.tif", spots="data/spots.csv")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if uid is not None:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, uid, -1)
    name = "spots.csv" if key == "spots" else "img.tif"
    (data / name).chmod(0)
    env = dict(os.environ, HOME=str(workdir), XDG_CACHE_HOME=str(workdir / ".cache"),
               PYTHONHASHSEED="0")
    result = subprocess.run(
        [*prefix, *SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
         str(workdir), "-n", "--cores", "1", "results/sections/train/spots.parquet"],
        capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    expected = (f"section 'train': the {key} file 'data/{name}' cannot be read: permission "
                f"denied for user '{user}'")
    assert expected in output, output[-3000:]
    assert "chmod a+r" in output
    assert "corrupt" not in output and "a bug" not in output
    assert not (workdir / "results").exists()
