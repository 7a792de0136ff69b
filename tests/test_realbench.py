"""The real-data benchmark's table and report (workflow/benchmarks/realbench.py), from fake
runs: the benchmark itself (make realbench) is not run here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "workflow/benchmarks"))  # a tool beside the package, not in it
import realbench  # noqa: E402
from realbench import (AS_SHIPPED, COLUMNS, benchmark_table, collect_run,  # noqa: E402
                       dataset_folds, example_configs, failure_reason, fold_label, fold_name,
                       main, parse_overrides, report_markdown, scratch_config, summary_markdown,
                       swap_roles)

CLASSES = ["background", "tissue", "GeneA", "GeneB", "mean"]


MODELS = {"size32": [0.8, 0.5, 0.2, 0.3], "size64": [0.9, 0.6, 0.4, 0.5],
          "ensemble": [0.85, 0.55, 0.3, 0.45], "baseline": [0.7, 0.4, 0.1, 0.2]}


def _fake_dice(workdir, section="right", genes_evaluable=True, models=None, chance=None):
    """A run's dice.csv (and figure) in ``workdir``; ``chance``: the chance model's Dice per
    class, or None for a table without chance rows (a pipeline from before them)."""
    rows = []
    models = {**(models or MODELS), **({"chance": chance} if chance is not None else {})}
    for model, values in models.items():
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
    good = _fake_dice(tmp_path / "a", chance=[np.nan, 0.6, 0.0, 0.0])
    _fake_dice(tmp_path / "b", section="test", genes_evaluable=False)
    results = [
        collect_run("alpha", tmp_path / "a", 61.23, fold="left_to_right"),
        collect_run("beta", tmp_path / "b", 30.0),
        collect_run("gamma", tmp_path / "c", 12.0, error="class 'tissue' has 0 candidates"),
        collect_run("delta", tmp_path / "d", 5.0),  # no error given, but no table either
    ]
    table = benchmark_table(results)
    assert list(table.columns) == COLUMNS
    alpha = table[table["dataset"] == "alpha"]
    assert len(alpha) == len(good) and (alpha["status"] == "ok").all()
    assert (alpha["wall_time_s"] == 61.2).all()
    assert alpha["evaluable"].tolist() == alpha["dice"].notna().tolist() == \
        [True] * 20 + [False] + [True] * 4  # chance's background: n/e
    assert np.allclose(alpha["dice"].to_numpy(), good["dice"].to_numpy(), equal_nan=True)
    assert list(alpha["model"].unique()) == ["size32", "size64", "ensemble", "baseline",
                                             "chance"]
    assert (alpha["fold"] == "left_to_right").all()
    assert (table[table["dataset"] != "alpha"]["fold"] == AS_SHIPPED).all()
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
    assert len(lines) == 2 + 4 + 3
    assert lines[2] == ("| alpha | left → right | GeneA 0.300, GeneB 0.450 | 0.537 | 0.200 | "
                        "0.600 (size64) | 0.350 | 1 min 01 s |")
    assert "GeneB n/e" in lines[3] and "| 0.567 | n/a | 0.633 (size64) |" in lines[3]
    assert lines[4] == ("| gamma | as shipped | failed: class 'tissue' has 0 candidates "
                        "| | | | | 12 s |")
    assert lines[7].startswith("- Mean over 2 of 4 folds (failed, not averaged: gamma as "
                               "shipped, delta as shipped): ensemble 0.552, chance 0.200 (of 1)")

    page = report_markdown(table, {("alpha", "left_to_right"): ["realdata/a_l_r.png"]},
                           {"run": "today"})
    assert "## alpha, left → right" in page and "![alpha, left → right" in page
    assert "realdata/a_l_r.png" in page and "## beta, as shipped" in page
    assert "**Failed** after 12 s: class 'tissue' has 0 candidates" in page
    assert "| baseline | 0.700 | 0.400 | 0.100 | 0.200 | 0.350 |" in page
    assert "| chance | n/e | 0.600 | 0.000 | 0.000 | 0.200 |" in page  # in the fold's table
    assert page.count("chance: n/a") == 1  # beta's run has no chance rows


def test_mean_over_folds_and_the_lowest_fold(tmp_path):
    def fold(name, fold, ensemble, baseline, chance=None):
        models = {"size32": [ensemble - 0.1] * 4, "ensemble": [ensemble] * 4,
                  "baseline": [baseline] * 4}
        _fake_dice(tmp_path / name / fold, models=models,
                   chance=None if chance is None else [chance] * 4)
        return collect_run(name, tmp_path / name / fold, 10.0, fold=fold)

    results = [fold("A", "left_to_right", 0.6, 0.5, chance=0.2),
               fold("A", "right_to_left", 0.3, 0.2, chance=0.1),
               fold("B", "left_to_right", 0.45, 0.35),  # no chance rows: n/a, not averaged
               collect_run("B", tmp_path / "B/r", 4.0, error="too few spots",
                           fold="right_to_left")]
    table = benchmark_table(results)
    lines = summary_markdown(table).splitlines()
    assert [line.split(" | ")[4] for line in lines[2:5]] == ["0.200", "0.100", "n/a"]
    assert lines[5] == "| B | right → left | failed: too few spots | | | | | 4 s |"
    assert lines[-2:] == [
        "- Mean over 3 of 4 folds (failed, not averaged: B right → left): ensemble 0.450, "
        "chance 0.150 (of 2), baseline 0.350.",
        "- Lowest fold: A right → left, ensemble mean 0.300."]
    none = summary_markdown(benchmark_table(results[2:]))  # no chance rows anywhere
    assert "ensemble 0.450, chance n/a, baseline 0.350." in none
    all_failed = summary_markdown(benchmark_table(results[3:])).splitlines()[-1]
    assert all_failed == ("- Mean over 0 of 1 folds (failed, not averaged: B right → left): "
                          "no fold ran to the end.")


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
    for option in ("--cores", "--workdir", "--only", "--one-way", "--set", "--timeout", "--csv",
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


def test_swapping_roles_and_naming_folds():
    config = {"sections": {"a": {"role": "train", "image": "a.tif"},
                           "b": {"role": "test", "image": "b.tif"},
                           "c": {"role": "predict", "image": "c.tif"},
                           "d": {"role": "train", "image": "d.tif"}},
              "genes": ["A", "B"]}
    swapped = swap_roles(config)
    assert {n: s["role"] for n, s in swapped["sections"].items()} == \
        {"a": "test", "b": "train", "c": "predict", "d": "test"}
    assert swapped["sections"]["a"]["image"] == "a.tif" and swapped["genes"] == ["A", "B"]
    assert config["sections"]["a"]["role"] == "train"  # the original is left as it was
    assert fold_name(config) == "a+d_to_b" and fold_name(swapped) == "b_to_a+d"
    assert fold_label("a+d_to_b") == "a + d → b" and fold_label(AS_SHIPPED) == "as shipped"
    assert fold_label("x_to_y_to_z") == "x_to_y_to_z"  # ambiguous: shown as it is
    no_test = {"sections": {"a": {"role": "train"}, "c": {"role": "predict"}}}
    no_train = {"sections": {"b": {"role": "test"}}}
    for config in (no_test, no_train, {"sections": "samples.tsv"}):
        assert swap_roles(config) is None and fold_name(config) == AS_SHIPPED


def test_folds_of_a_config(tmp_path):
    path = tmp_path / "ds/config.yaml"
    _write_config(path, {"left": "train", "right": "test"})
    folds = dataset_folds("ds", path, {"seed": 3}, tmp_path)
    assert [f.name for f in folds] == ["left_to_right", "right_to_left"]
    assert all(f.config["seed"] == 3 and f.error is None for f in folds)  # both: overrides
    assert [f.name for f in dataset_folds("ds", path, {}, tmp_path, one_way=True)] == \
        ["left_to_right"]
    [missing] = dataset_folds("ds", tmp_path / "nothing.yaml", {}, tmp_path)
    assert missing.name == AS_SHIPPED and missing.config is None
    assert missing.error.startswith("cannot read")


def _write_config(path, roles):
    path.parent.mkdir(parents=True)
    sections = {name: {"role": role, "image": f"{name}.tif"} for name, role in roles.items()}
    path.write_text(yaml.safe_dump({"sections": sections, "genes": ["GeneA", "GeneB"]}))


def _fake_snakemake(calls):
    """A stand-in for the pipeline run: a Dice table for the config's test section, or (no
    test section) a failure with a rule's ERROR line."""
    def run(workdir, cores, timeout_s, log_path):
        config = yaml.safe_load((workdir / "config.yaml").read_text())
        calls.append((workdir, config))
        tests = [n for n, s in config["sections"].items() if s["role"] == "test"]
        if not tests:
            log_path.write_text("2026-01-01 10:00:00 ERROR no test section\n")
            return 1, 3.0
        _fake_dice(workdir, section=tests[0])
        return 0, 12.0
    return run


@pytest.mark.parametrize("one_way", [False, True])
def test_each_config_runs_both_ways_round_unless_one_way(tmp_path, monkeypatch, capsys,
                                                         one_way):
    _write_config(tmp_path / "res/ds_a/config.yaml", {"left": "train", "right": "test"})
    _write_config(tmp_path / "res/ds_b/config.yaml", {"top": "train", "new": "predict"})
    _write_config(tmp_path / "res/ds_c/config.yaml", {"x": "train", "y": "test"})
    calls = []
    monkeypatch.setattr(realbench, "_run_snakemake", _fake_snakemake(calls))
    work, md, csv = tmp_path / "work", tmp_path / "out/realdata.md", tmp_path / "out/r.csv"
    stale = work / "ds_a/left_to_right/stale"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    assert main(["--resources", str(tmp_path / "res"), "--workdir", str(work),
                 "--markdown", str(md), "--csv", str(csv), "--only", "ds_a", "ds_b",
                 *(["--one-way"] if one_way else [])]) == 0

    expected = [("ds_a", "left_to_right"), ("ds_b", AS_SHIPPED)]
    if not one_way:
        expected.insert(1, ("ds_a", "right_to_left"))
    assert [(w.parent.name, w.name) for w, _ in calls] == expected
    assert not stale.exists()  # each fold's directory is wiped first
    roles = {w.name: {n: s["role"] for n, s in c["sections"].items()} for w, c in calls}
    assert roles["left_to_right"] == {"left": "train", "right": "test"}
    assert roles[AS_SHIPPED] == {"top": "train", "new": "predict"}
    if not one_way:
        assert roles["right_to_left"] == {"left": "test", "right": "train"}
    assert all(Path(c["sections"][n]["image"]).is_absolute() for _, c in calls
               for n in c["sections"])

    table = pd.read_csv(csv)
    assert list(table.columns) == COLUMNS
    assert list(dict.fromkeys(zip(table["dataset"], table["fold"]))) == expected
    failed = table[table["status"] == "failed"]
    assert failed[["dataset", "fold", "note"]].values.tolist() == \
        [["ds_b", AS_SHIPPED, "no test section"]]
    figures = sorted(p.name for p in (tmp_path / "out/realdata").iterdir())
    assert figures == (["ds_a_left_to_right_right.png"] if one_way else
                       ["ds_a_left_to_right_right.png", "ds_a_right_to_left_left.png"])
    page = md.read_text(encoding="utf-8")
    assert "## ds_a, left → right" in page and "realdata/ds_a_left_to_right_right.png" in page
    assert ("## ds_a, right → left" in page) is not one_way
    assert "## ds_b, as shipped" in page and "**Failed** after 3 s: no test section" in page
    out = capsys.readouterr().out  # the summary, printed too
    assert "| ds_a | left → right | GeneA 0.300, GeneB 0.450 | 0.537 | n/a |" in out
    assert f"- Mean over {len(expected) - 1} of {len(expected)} folds (failed" in out


def test_niche_folds_replace_the_genes_and_get_their_own_summary(tmp_path, monkeypatch, capsys):
    _write_config(tmp_path / "res/ds_a/config.yaml", {"left": "train", "right": "test"})
    calls = []
    monkeypatch.setattr(realbench, "_run_snakemake", _fake_snakemake(calls))
    md, csv = tmp_path / "out/realdata.md", tmp_path / "out/r.csv"
    assert main(["--resources", str(tmp_path / "res"), "--workdir", str(tmp_path / "work"),
                 "--markdown", str(md), "--csv", str(csv), "--niches", "4"]) == 0
    assert [(w.parent.name, w.name) for w, _ in calls] == [
        ("ds_a", "left_to_right"), ("ds_a", "right_to_left"),
        ("ds_a_niches4", "left_to_right"), ("ds_a_niches4", "right_to_left")]
    niche_configs = [c for w, c in calls if w.parent.name == "ds_a_niches4"]
    assert all(c["niches"] == 4 and "genes" not in c for c in niche_configs)
    assert all("niches" not in c for w, c in calls if w.parent.name == "ds_a")
    page = md.read_text(encoding="utf-8")
    assert "## Summary: niches" in page
    # two means over folds: the gene folds' and the niche folds', never mixed
    assert page.count("- Mean over 2 of 2 folds") == 2
    with pytest.raises(SystemExit):
        main(["--resources", str(tmp_path / "res"), "--niches", "1"])


def test_block_folds_cut_the_shipped_image_into_a_checkerboard():
    half = {"image": "/d/dapi.tif", "spots": "/d/spots.csv", "downsample": 2}
    config = {"sections": {"left": {**half, "role": "train", "region": {"x": [0, 50]}},
                           "right": {**half, "role": "test", "region": {"x": [50, 120]}}},
              "genes": ["A", "B"]}
    a_to_b, b_to_a = realbench.block_folds("crop", config, (2, 3))
    assert (a_to_b.name, b_to_a.name) == ("blocks_a_to_b", "blocks_b_to_a")
    sections = a_to_b.config["sections"]
    assert {n: (s["role"], s["blocks"]["keep"]) for n, s in sections.items()} == \
        {"a": ("train", "even"), "b": ("test", "odd")}
    assert sections["a"]["region"] == {"x": [0, 120]} and sections["a"]["downsample"] == 2
    assert sections["a"]["blocks"]["grid"] == [2, 3] and a_to_b.config["genes"] == ["A", "B"]
    assert b_to_a.config["sections"]["b"]["role"] == "train"
    assert fold_label("blocks_a_to_b") == "blocks a → b"
    # Sections of different images: no block folds.
    other = {"sections": {"l": {**half, "role": "train"},
                          "r": {**half, "image": "/d/other.tif", "role": "test"}}}
    assert realbench.block_folds("two", other) == []


def test_summary_has_ceiling_ratios_and_block_folds_apart(tmp_path):
    models = {**MODELS, "ceiling": [np.nan, 0.7, 0.4, 0.6]}
    _fake_dice(tmp_path / "a", models=models, chance=[np.nan, 0.6, 0.0, 0.0])
    _fake_dice(tmp_path / "b", models=models)
    table = benchmark_table([collect_run("crop", tmp_path / "a", 60.0, fold="left_to_right"),
                             collect_run("crop", tmp_path / "b", 60.0, fold="blocks_a_to_b")])
    half = summary_markdown(table[table["fold"] == "left_to_right"])
    assert "| ceiling mean | ensemble / ceiling | baseline / ceiling |" in half
    # means over the classes: ensemble 0.537, baseline 0.350, ceiling 0.567
    assert "| 0.567 | 0.95 | 0.62 |" in half
    assert "ceiling 0.567" in half
    report = report_markdown(table, {}, {"run": "test"})
    assert "## Summary: block folds" in report
    summary_part = report.split("## Summary: block folds")[0]
    assert "blocks a → b" not in summary_part and "left → right" in summary_part


def test_ceiling_holds_out_each_block_of_the_section_once(tmp_path):
    import ceiling

    area = np.zeros((40, 60), bool)
    area[:20, :30] = area[20:, 30:] = True  # a test section of two checkerboard blocks
    held = ceiling.held_out_blocks(area, (2, 2))
    assert len(held) == 2 and not (held[0] & held[1]).any()
    assert (held[0] | held[1]).sum() == area.sum()
    assert len(ceiling.held_out_blocks(np.ones((40, 60), bool))) == 4
    # The fold's settings: its scratch config over the schema's defaults, as the run had them.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        {"sections": {"a": {"role": "test"}}, "patches": {"per_class": 7}, "genes": ["X", "Y"]}))
    settings = ceiling._settings(tmp_path)
    assert settings["patches"]["per_class"] == 7 and settings["patches"]["min_per_class"] == 50
    assert settings["training"]["augment"]["blur_px"] > 0 and settings["probmap"]["tta"] is False
    assert ceiling._groups(settings) == {"X": ["X"], "Y": ["Y"]}


def test_summary_has_the_in_sample_bound_when_measured(tmp_path):
    models = {**MODELS, "ceiling": [np.nan, 0.7, 0.4, 0.6],
              "ceiling_in_sample": [np.nan, 0.9, 0.5, 0.8]}
    _fake_dice(tmp_path / "a", models=models, chance=[np.nan, 0.6, 0.0, 0.0])
    table = benchmark_table([collect_run("crop", tmp_path / "a", 60.0, fold="left_to_right")])
    lines = summary_markdown(table).splitlines()
    assert lines[0].endswith("| in-sample mean | ensemble / in-sample | wall time |")
    assert lines[1].count("|") == lines[0].count("|")
    # means over the evaluable classes: ensemble 0.537, in-sample 0.733 (0.9, 0.5, 0.8)
    assert "| 0.567 | 0.95 | 0.62 | 0.733 | 0.73 |" in lines[2]
    assert "ceiling 0.567, in-sample 0.733" in lines[-2]
    # Without in-sample rows the columns are not there.
    _fake_dice(tmp_path / "b", models={**MODELS, "ceiling": [np.nan, 0.7, 0.4, 0.6]})
    plain = summary_markdown(benchmark_table(
        [collect_run("crop", tmp_path / "b", 60.0, fold="left_to_right")]))
    assert "in-sample" not in plain
