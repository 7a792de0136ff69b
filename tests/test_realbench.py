"""The real-data benchmark's table and report (workflow/benchmarks/realbench.py), from fake
runs: the benchmark itself (make realbench) is not run here."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "workflow/benchmarks"))  # a tool beside the package, not in it
from realbench import (COLUMNS, benchmark_table, collect_run,  # noqa: E402
                       example_configs, failure_reason, main, parse_overrides, report_markdown,
                       scratch_config, summary_markdown)

CLASSES = ["background", "tissue", "GeneA", "GeneB", "mean"]


def _fake_dice(workdir, section="right", genes_evaluable=True):
    rows = []
    for model, values in {"size32": [0.8, 0.5, 0.2, 0.3], "size64": [0.9, 0.6, 0.4, 0.5],
                          "ensemble": [0.85, 0.55, 0.3, 0.45],
                          "baseline": [0.7, 0.4, 0.1, 0.2]}.items():
        if not genes_evaluable:
            values = [*values[:3], np.nan]
        mean = float(np.nanmean(values))
        for klass, value in zip(CLASSES, [*values, mean]):
            ok = bool(np.isfinite(value))
            rows.append((section, model, klass, value, ok, "" if ok else "too sparse"))
    table = pd.DataFrame(rows, columns=["section", "model", "class", "dice", "evaluable", "note"])
    path = workdir / "results/report"
    path.mkdir(parents=True)
    table.to_csv(path / "dice.csv", index=False)
    (path / f"{section}.png").write_bytes(b"\x89PNG fake")
    return table


def test_table_rows_from_fake_runs(tmp_path):
    good = _fake_dice(tmp_path / "a")
    _fake_dice(tmp_path / "b", section="test", genes_evaluable=False)
    results = [
        collect_run("alpha", tmp_path / "a", 61.23),
        collect_run("beta", tmp_path / "b", 30.0),
        collect_run("gamma", tmp_path / "c", 12.0, error="class 'tissue' has 0 candidates"),
        collect_run("delta", tmp_path / "d", 5.0),  # no error given, but no table either
    ]
    table = benchmark_table(results)
    assert list(table.columns) == COLUMNS
    alpha = table[table["dataset"] == "alpha"]
    assert len(alpha) == len(good) and (alpha["status"] == "ok").all()
    assert (alpha["wall_time_s"] == 61.2).all() and alpha["evaluable"].all()
    assert np.allclose(alpha["dice"].to_numpy(), good["dice"].to_numpy())
    assert list(alpha["model"].unique()) == ["size32", "size64", "ensemble", "baseline"]
    beta = table[table["dataset"] == "beta"]
    gene_b = beta[(beta["class"] == "GeneB")]
    assert not gene_b["evaluable"].any() and gene_b["dice"].isna().all()
    assert (gene_b["note"] == "too sparse").all()
    failed = table[table["dataset"].isin(["gamma", "delta"])]
    assert len(failed) == 2 and (failed["status"] == "failed").all()
    assert failed["dice"].isna().all() and not failed["evaluable"].any()
    assert failed["note"].tolist() == ["class 'tissue' has 0 candidates",
                                       "no results/report/dice.csv after the run"]
    assert [p.name for p in results[0].figures] == ["right.png"]

    summary = summary_markdown(table)
    lines = summary.splitlines()
    assert len(lines) == 2 + 4
    assert lines[2] == ("| alpha | GeneA 0.300, GeneB 0.450 | 0.537 | 0.600 (size64) | 0.350 "
                        "| 1 min 01 s |")
    assert "GeneB n/e" in lines[3]
    assert lines[4] == "| gamma | failed: class 'tissue' has 0 candidates | | | | 12 s |"

    page = report_markdown(table, {"alpha": ["realdata/alpha_right.png"]}, {"run": "today"})
    assert "## alpha" in page and "![alpha" in page and "realdata/alpha_right.png" in page
    assert "**Failed** after 12 s: class 'tissue' has 0 candidates" in page
    assert "| baseline | 0.700 | 0.400 | 0.100 | 0.200 | 0.350 |" in page


def test_failure_reason_picks_the_first_line_of_the_error():
    rule_error = ("Building DAG of jobs...\n"
                  "2026-01-01 10:00:00 INFO patches: sampling\n"
                  "2026-01-01 10:00:01 ERROR class 'tissue' has 0 candidates; lower it\n"
                  "RuleException:\nCalledProcessError in file x.smk, line 3:\n")
    assert failure_reason(rule_error) == "class 'tissue' has 0 candidates; lower it"
    assert failure_reason("", ["2026-01-01 10:00:01 ERROR from the log\n"]) == "from the log"
    workflow = "Building DAG...\nWorkflowError:\nConfig error in config.yaml: unknown key `x`\n"
    assert failure_reason(workflow) == "Config error in config.yaml: unknown key `x`"
    key_error = 'KeyError in file "/w/patches.smk", line 22:\n\'tissue_exclusion_um\'\n  File..'
    assert failure_reason(key_error) == "KeyError: 'tissue_exclusion_um'"
    assert failure_reason("ValueError: bad value\n") == "ValueError: bad value"
    assert failure_reason("just\nthe last line\n\n") == "the last line"


def test_configs_paths_and_overrides(tmp_path):
    for name in ("demo", "b_set", "a_set", "no_config"):
        (tmp_path / name).mkdir()
    for name in ("demo", "b_set", "a_set"):
        (tmp_path / name / "config.yaml").write_text("genes: [A, B]\n")
    assert [n for n, _ in example_configs(tmp_path)] == ["a_set", "b_set"]

    config = {"sections": {"s": {"image": "../data/i.tif", "spots": "/abs/s.csv",
                                 "transform": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}},
              "genes": ["A", "B"], "patches": {"sizes": [32]}}
    overrides = parse_overrides(["patches.tissue_exclusion_um=10", "genes=[C, D]"])
    assert overrides == {"patches": {"tissue_exclusion_um": 10}, "genes": ["C", "D"]}
    out = scratch_config(config, tmp_path / "repo", overrides)
    assert out["sections"]["s"]["image"] == str((tmp_path / "data/i.tif").resolve())
    assert out["sections"]["s"]["spots"] == "/abs/s.csv"
    assert out["sections"]["s"]["transform"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert out["patches"] == {"sizes": [32], "tissue_exclusion_um": 10}
    assert out["genes"] == ["C", "D"] and config["sections"]["s"]["image"] == "../data/i.tif"
    with pytest.raises(ValueError):
        parse_overrides(["novalue"])
    only_b = ["b_set:patches.per_class=10", "seed=3"]
    assert parse_overrides(only_b, dataset="b_set") == {"patches": {"per_class": 10}, "seed": 3}
    assert parse_overrides(only_b, dataset="a_set") == {"seed": 3}


def test_runs_as_a_script_outside_the_package():
    script = REPO / "workflow/benchmarks/realbench.py"
    assert not (REPO / "workflow/txmorph/realbench.py").exists()
    result = subprocess.run([sys.executable, str(script), "-h"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--cores", "--workdir", "--only", "--set", "--timeout", "--csv",
                   "--markdown"):
        assert option in result.stdout
    assert "$(BIN)/python workflow/benchmarks/realbench.py --cores $(CORES)" in \
        (REPO / "Makefile").read_text()


@pytest.mark.parametrize("workdir_name", ["realdata", "realdata/runs"])
def test_a_workdir_overlapping_the_figure_folder_is_refused(tmp_path, capsys, workdir_name):
    # The figure folder (the Markdown path without .md) is emptied on every run: a scratch
    # directory there (or holding it) would be wiped under the runs.
    workdir = tmp_path / workdir_name
    workdir.mkdir(parents=True)
    (workdir / "keep").write_text("x")
    with pytest.raises(SystemExit) as stop:
        main(["--workdir", str(workdir), "--markdown", str(tmp_path / "realdata.md"),
              "--csv", str(tmp_path / "realdata.csv")])
    assert stop.value.code == 2
    assert "overlap" in capsys.readouterr().err
    assert (workdir / "keep").exists()
