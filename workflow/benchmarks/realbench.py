"""Real-data benchmark: ``python workflow/benchmarks/realbench.py`` (``make realbench``); a
command-line tool, kept outside the txmorph package that it measures.

Runs every real example config under ``resources/`` (each ``resources/*/config.yaml`` except
the demo) through the whole pipeline both ways round: as shipped (the fold ``left_to_right``,
train section names to test section names) and with its roles swapped (every train section
a test section and every test section a train section, predict sections untouched; fold
``right_to_left``), so no score rests on one lucky split. A config without a train or a test
section runs as shipped only (fold ``as_shipped``), and so does every config with
``--one-way`` (quick development runs). Each fold runs in its own scratch working directory
outside the checkout (default: ``$TMPDIR/txmorph-realbench/<dataset>/<fold>``, wiped first, so
every run starts from nothing and its wall time is the whole pipeline's). The example configs
name their data relative to the repository root; the scratch copy of each config gets
absolute paths, so the checkout's ``results/`` is never written.

A run that fails does not stop the benchmark: its fold gets one ``failed`` row whose note is
the first line of the error (the rule's one-line message, or Snakemake's), and is left out
of the means over folds (and counted as left out).

Outputs: one long table (``dataset, fold, section, model, class, dice, evaluable,
wall_time_s, status, note``) as CSV and, as Markdown, a summary with a row per fold (the
ensemble's Dice per gene class and mean beside the means of ``chance``, the image-blind
prediction the pipeline scores too, of the best single CNN and of the baseline; ``n/a`` for
chance where a run's table has none), the means over the folds and the lowest fold, then a
table per fold and its truth-vs-prediction figures (``results/report/<section>.png``, copied
next to it with the dataset and fold in the name). The summary is printed too.

``--niches K`` (``make realbench``: 4) runs every config once more with ``niches: K`` in place
of its ``genes`` (issue 20: the classes are K expression niches, ``txmorph.niches``), both ways
round too, as the dataset ``<name>_niches<K>``; the niche folds get their own summary table and
means, never mixed with the gene folds'.

``--set KEY=VALUE`` (repeatable, dotted keys, YAML values) overrides a config key of every
dataset for development runs, ``--set DATASET:KEY=VALUE`` of one dataset, e.g. ``--set
xenium_breast_crop:patches.per_class=500``; both folds of a dataset run with its overrides,
which are written into the Markdown so a table is never mistaken for one of the example
configs as they are.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
# This checkout's txmorph, whether or not (and wherever) the package is installed.
sys.path.insert(0, str(REPO / "workflow"))

from txmorph.classes import GENERAL_CLASSES, MEAN_CLASS  # noqa: E402
from txmorph.evaluate.tables import dice_markdown  # noqa: E402
PATH_KEYS = ("image", "spots", "transform", "fov_positions")
COLUMNS = ["dataset", "fold", "section", "model", "class", "dice", "evaluable", "wall_time_s",
           "status", "note"]
DICE_CSV = Path("results/report/dice.csv")
CNN_SUMMARY_MODEL = "ensemble"
BASELINE_MODEL = "baseline"
CHANCE_MODEL = "chance"  # image-blind: every pixel the training sections' most frequent class
AS_SHIPPED = "as_shipped"  # the fold of a config that has no other direction
_SWAPPED_ROLE = {"train": "test", "test": "train"}


def example_configs(resources: Path) -> list[tuple[str, Path]]:
    """(dataset name, config path) of every ``resources/*/config.yaml`` but the demo's."""
    return [(path.parent.name, path) for path in sorted(Path(resources).glob("*/config.yaml"))
            if path.parent.name != "demo"]


def parse_overrides(items: Sequence[str], dataset: str | None = None) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a": {"b": 1}, "c": ["x", "y"]}`` (values are YAML).

    ``DATASET:KEY=VALUE`` applies to that dataset only: kept when ``dataset`` is DATASET,
    skipped otherwise (and always skipped when ``dataset`` is None).
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not KEY=VALUE or DATASET:KEY=VALUE")
        only, colon, key = key.rpartition(":")
        if colon and only.strip() != dataset:
            continue
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return result


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def scratch_config(config: Mapping[str, Any], root: Path,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config with every section file path made absolute (relative to ``root``), then the
    overrides merged in."""
    result = copy.deepcopy(dict(config))
    for section in result.get("sections", {}).values():
        for key in PATH_KEYS:
            value = section.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                section[key] = str((Path(root) / value).resolve())
    return _merge(result, overrides or {})


def _named(config: Mapping[str, Any], role: str) -> str:
    """The names of the config's sections of one role, joined by ``+`` (which a section name
    cannot hold); empty also where ``sections`` is a sample-sheet path (read by the pipeline)."""
    sections = config.get("sections")
    return "+".join(name for name, s in sections.items() if isinstance(s, Mapping)
                    and s.get("role") == role) if isinstance(sections, Mapping) else ""


def swap_roles(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The config run the other way round: every ``train`` section a ``test`` section and every
    ``test`` section a ``train`` section, ``predict`` sections untouched; None without a train
    or a test section (no other direction to run)."""
    if not (_named(config, "train") and _named(config, "test")):
        return None
    result = copy.deepcopy(dict(config))
    for section in result["sections"].values():
        if isinstance(section, Mapping) and section.get("role") in _SWAPPED_ROLE:
            section["role"] = _SWAPPED_ROLE[section["role"]]
    return result


def fold_name(config: Mapping[str, Any]) -> str:
    """``left_to_right``: the train sections, ``_to_``, the test sections; ASCII, for the CSV
    and the fold's directory. ``as_shipped`` for a config without train or test sections."""
    train, test = _named(config, "train"), _named(config, "test")
    return f"{train}_to_{test}" if train and test else AS_SHIPPED


def fold_label(fold: str) -> str:
    """A fold's name for the Markdown: ``left_to_right`` -> ``left → right`` (as it is where a
    section name holds ``_to_`` too, rather than split it wrongly)."""
    if fold == AS_SHIPPED:
        return "as shipped"
    if is_block_fold(fold):
        return "blocks " + fold_label(fold[len(BLOCK_PREFIX):])
    parts = fold.split("_to_")
    return " → ".join(p.replace("+", " + ") for p in parts) if len(parts) == 2 else fold


_LOG_ERROR = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR (.+)$")
_EXCEPTION = re.compile(r"^(\w*(?:Error|Exception))\b(.*)$")


def failure_reason(output: str, rule_logs: Sequence[str] = ()) -> str:
    """The first line of the error of a failed Snakemake run.

    In order: the first ``ERROR`` line a rule logged (``txmorph.scripting.run_rule``: the
    one-line message of bad input, or the first line of a bug report), in the run's output or
    its rule logs; the first exception Snakemake reported (``WorkflowError:`` then its
    message, or ``KeyError in file ...:`` then the key); the last line of the output.
    """
    lines = [line.rstrip() for line in output.splitlines()]
    for text in [lines, *[log.splitlines() for log in rule_logs]]:
        for line in text:
            if match := _LOG_ERROR.match(line.strip()):
                return match.group(1).strip()
    for index, line in enumerate(lines):
        match = _EXCEPTION.match(line.strip())
        if not match:
            continue
        name, rest = match.group(1), match.group(2).strip()
        if rest.startswith(":") and rest[1:].strip():
            return f"{name}: {rest[1:].strip()}"
        following = next((l.strip() for l in lines[index + 1:] if l.strip()), "")
        if name == "WorkflowError" and following:
            return following
        return f"{name}: {following}" if following else name
    return next((line.strip() for line in reversed(lines) if line.strip()), "no output")


@dataclass
class Fold:
    """One run to make of a dataset: its scratch config in one direction (see ``fold_name``),
    or why its config could not be read."""

    dataset: str
    name: str
    config: dict[str, Any] | None = None
    error: str | None = None


NICHE_TAG = "_niches"  # a niche run's dataset: <name>_niches<K>
BLOCK_PREFIX = "blocks_"  # a block fold: blocks_a_to_b, blocks_b_to_a
BLOCK_GRID = (2, 2)
CEILING_MODEL = "ceiling"
IN_SAMPLE_MODEL = "ceiling_in_sample"  # ceiling.py --in-sample: trained on the scored section


def _whole_image(sections: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The one section that ``sections`` (regions of one image) are cut from: their first
    entry without ``role`` and with ``region`` the bounding box of theirs (none: the whole
    image); None unless every section reads the same image and spots with the same settings."""
    def rest(section: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in section.items() if k not in ("role", "region", "blocks")}

    if not sections or any(rest(s) != rest(sections[0]) for s in sections[1:]):
        return None
    whole = rest(sections[0])
    regions = [s.get("region") for s in sections]
    if all(regions):
        box = {}
        for axis in ("x", "y"):
            spans = [r.get(axis) for r in regions]
            if all(spans):
                box[axis] = [min(a for a, _ in spans), max(b for _, b in spans)]
        if box:
            whole["region"] = box
    return whole


def block_folds(dataset: str, config: Mapping[str, Any] | None,
                grid: tuple[int, int] = BLOCK_GRID) -> list[Fold]:
    """The block folds of a config whose train and test sections are regions of one image:
    that image whole, as two sections of a checkerboard of ``grid`` blocks (``a``: the blocks
    whose row + column is even, ``b``: odd; ``txmorph.blocks``), trained on one and tested on
    the other, both ways round (``blocks_a_to_b``, ``blocks_b_to_a``): the same anatomy in
    train and test, spatially disjoint. None for a config of other sections."""
    if config is None or not isinstance(config.get("sections"), Mapping):
        return []
    paired = [s for s in config["sections"].values()
              if isinstance(s, Mapping) and s.get("role") in _SWAPPED_ROLE]
    whole = _whole_image(paired)
    if whole is None or len(paired) < 2:
        return []
    folds = []
    for train, test in (("a", "b"), ("b", "a")):
        result = copy.deepcopy(dict(config))
        result["sections"] = {
            name: {**copy.deepcopy(whole), "role": "train" if name == train else "test",
                   "blocks": {"grid": [int(grid[0]), int(grid[1])],
                              "keep": "even" if name == "a" else "odd"}}
            for name in ("a", "b")}
        folds.append(Fold(dataset, f"{BLOCK_PREFIX}{train}_to_{test}", result))
    return folds


def is_block_fold(fold: str) -> bool:
    return str(fold).startswith(BLOCK_PREFIX)


def fold_kinds(table: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Row masks of the long table's three summaries: gene half folds, gene block folds and
    niche folds (each summarised and averaged on its own)."""
    niche = table["dataset"].map(is_niche_run).astype(bool)
    block = table["fold"].map(is_block_fold).astype(bool) & ~niche
    return ~niche & ~block, block, niche


def niche_folds(folds: Sequence[Fold], k: int) -> list[Fold]:
    """The folds once more with ``niches: k`` in place of the config's ``genes``."""
    result = []
    for fold in folds:
        if fold.config is None:
            continue
        config = copy.deepcopy(fold.config)
        config.pop("genes", None)
        config["niches"] = int(k)
        result.append(Fold(f"{fold.dataset}{NICHE_TAG}{int(k)}", fold.name, config))
    return result


def is_niche_run(dataset: str) -> bool:
    return re.search(re.escape(NICHE_TAG) + r"\d+$", str(dataset)) is not None


def dataset_folds(dataset: str, config_path: Path, overrides: Mapping[str, Any],
                  data_root: Path = REPO, one_way: bool = False) -> list[Fold]:
    """The folds of one example config: as shipped and, unless ``one_way`` or ``swap_roles``
    finds no other direction, with train and test swapped. The overrides are merged first, so
    both directions run the same settings (and an overridden role is swapped too)."""
    try:
        config = scratch_config(yaml.safe_load(Path(config_path).read_text()), data_root,
                                overrides)
    except (OSError, yaml.YAMLError) as error:
        return [Fold(dataset, AS_SHIPPED, error=f"cannot read {config_path}: {error}")]
    configs = [config]
    swapped = None if one_way else swap_roles(config)
    if swapped is not None:
        configs.append(swapped)
    return [Fold(dataset, fold_name(c), c) for c in configs]


@dataclass
class RunResult:
    """One fold's pipeline run: its wall time and Dice table, or why it failed."""

    dataset: str
    wall_time_s: float
    dice: pd.DataFrame | None = None
    error: str | None = None
    figures: list[Path] = field(default_factory=list)
    workdir: Path | None = None
    fold: str = AS_SHIPPED


def collect_run(dataset: str, workdir: Path, wall_time_s: float, error: str | None = None,
                fold: str = AS_SHIPPED) -> RunResult:
    """A run's result from its working directory: ``results/report/dice.csv`` and the
    truth-vs-prediction figure of each test section, unless ``error`` (or no table)."""
    workdir = Path(workdir)
    table_path = workdir / DICE_CSV
    if error is None and not table_path.is_file():
        error = f"no {DICE_CSV} after the run"
    if error is not None:
        return RunResult(dataset, wall_time_s, error=error, workdir=workdir, fold=fold)
    dice = pd.read_csv(table_path)
    figures = [workdir / "results/report" / f"{section}.png"
               for section in dict.fromkeys(dice["section"])]
    return RunResult(dataset, wall_time_s, dice=dice,
                     figures=[f for f in figures if f.is_file()], workdir=workdir, fold=fold)


def benchmark_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """The long table: every Dice row of every fold, or one ``failed`` row with the reason."""
    parts = []
    for result in results:
        wall = round(float(result.wall_time_s), 1)
        if result.error is not None or result.dice is None:
            parts.append(pd.DataFrame([{
                "dataset": result.dataset, "fold": result.fold, "section": "", "model": "",
                "class": "", "dice": np.nan, "evaluable": False, "wall_time_s": wall,
                "status": "failed", "note": result.error or "no Dice table"}]))
            continue
        dice = result.dice
        note = (dice["note"].astype(object).where(dice["note"].notna(), "")
                if "note" in dice else "")
        parts.append(pd.DataFrame({
            "dataset": result.dataset, "fold": result.fold, "section": dice["section"],
            "model": dice["model"], "class": dice["class"], "dice": dice["dice"].astype(float),
            "evaluable": dice["evaluable"].astype(bool) if "evaluable" in dice
            else dice["dice"].notna(),
            "wall_time_s": wall, "status": "ok",
            "note": pd.Series(note, index=dice.index).astype(str)}))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def _value(table: pd.DataFrame, model: str, klass: str) -> float:
    rows = table[(table["model"] == model) & (table["class"] == klass)]
    return float(rows["dice"].mean()) if len(rows) and rows["dice"].notna().any() else np.nan


def _cell(value: float) -> str:
    return "n/e" if not np.isfinite(value) else f"{value:.3f}"


def _ratio(value: float, ceiling: float) -> str:
    """``value / ceiling`` to two decimals; ``n/e`` where either is not evaluable or the
    ceiling is 0."""
    if not (np.isfinite(value) and np.isfinite(ceiling)) or ceiling <= 0:
        return "n/e"
    return f"{value / ceiling:.2f}"


def _minutes(seconds: float) -> str:
    seconds = float(seconds)
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def fold_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per fold of the long table: ``dataset, fold, status, note, wall_time_s``, the
    ensemble's Dice per gene class (``genes``, text) and mean, the chance prediction's mean
    (``has_chance`` False where the run's table has no chance rows: a pipeline from before
    them), the best single CNN's mean (and ``best_model``), the baseline's mean. A fold with
    several test sections gets the mean over them (its section of the Markdown has each); NaN
    where not evaluable or failed."""
    rows = []
    for (dataset, fold), part in table.groupby(["dataset", "fold"], sort=False):
        row: dict[str, Any] = {
            "dataset": dataset, "fold": fold, "status": part["status"].iloc[0],
            "note": part["note"].iloc[0], "wall_time_s": part["wall_time_s"].iloc[0],
            "genes": "", "ensemble": np.nan, "chance": np.nan, "has_chance": False,
            "best": np.nan, "best_model": "", "baseline": np.nan, "ceiling": np.nan,
            "in_sample": np.nan}
        if (part["status"] == "ok").all():
            genes = [c for c in dict.fromkeys(part["class"])
                     if c not in (*GENERAL_CLASSES, MEAN_CLASS)]
            cnns = [m for m in dict.fromkeys(part["model"]) if str(m).startswith("size")]
            means = [(_value(part, m, MEAN_CLASS), m) for m in cnns]
            best = max([vm for vm in means if np.isfinite(vm[0])], key=lambda vm: vm[0],
                       default=(np.nan, ""))
            row.update(
                genes=", ".join(f"{g} {_cell(_value(part, CNN_SUMMARY_MODEL, g))}" for g in genes),
                ensemble=_value(part, CNN_SUMMARY_MODEL, MEAN_CLASS),
                chance=_value(part, CHANCE_MODEL, MEAN_CLASS),
                has_chance=bool((part["model"] == CHANCE_MODEL).any()), best=best[0],
                best_model=best[1], baseline=_value(part, BASELINE_MODEL, MEAN_CLASS),
                ceiling=_value(part, CEILING_MODEL, MEAN_CLASS),
                in_sample=_value(part, IN_SAMPLE_MODEL, MEAN_CLASS))
        rows.append(row)
    return pd.DataFrame(rows)


def over_folds(summary: pd.DataFrame) -> list[str]:
    """Under the summary: the mean over the folds that ran of the ensemble, chance and baseline
    means, and the fold with the lowest ensemble mean; failed folds named and not averaged."""
    ok = summary[summary["status"] == "ok"]
    failed = [f"{r.dataset} {fold_label(r.fold)}" for r in summary.itertuples() if r.status != "ok"]
    head = f"Mean over {len(ok)} of {len(summary)} folds"
    head += f" (failed, not averaged: {', '.join(failed)})" if failed else ""
    if ok.empty:
        return [f"- {head}: no fold ran to the end."]
    means = []
    columns = ("ensemble", "chance", "baseline") + tuple(
        column for column in ("ceiling", "in_sample")
        if column in ok and ok[column].notna().any())
    for column in columns:
        values = ok[column].dropna()  # NaN: not evaluable, or no chance rows (n/a)
        text = _cell(values.mean()) if len(values) else (
            "n/a" if column == "chance" and not ok["has_chance"].any() else "n/e")
        means.append(f"{column.replace('_', '-')} {text}" + (f" (of {len(values)})" if 0 < len(values) < len(ok)
                                            else ""))
    lines = [f"- {head}: {', '.join(means)}."]
    if ok["ensemble"].notna().any():
        low = ok.loc[ok["ensemble"].idxmin()]
        lines.append(f"- Lowest fold: {low['dataset']} {fold_label(low['fold'])}, ensemble mean "
                     f"{_cell(low['ensemble'])}.")
    return lines


def summary_markdown(table: pd.DataFrame) -> str:
    """One row per fold: ensemble Dice per gene class and mean, the chance prediction's mean
    (``n/a`` where the run has none), the best single CNN's mean, the baseline's mean and the
    wall time; failed folds with the reason. Then ``over_folds``."""
    summary = fold_summary(table)
    ceiling = bool(summary["ceiling"].notna().any()) if len(summary) else False
    in_sample = bool(summary["in_sample"].notna().any()) if len(summary) else False
    extra = " ceiling mean | ensemble / ceiling | baseline / ceiling |" if ceiling else ""
    extra += " in-sample mean | ensemble / in-sample |" if in_sample else ""
    lines = ["| dataset | fold | ensemble per class | ensemble mean | chance mean "
             f"| best single CNN mean | baseline mean |{extra} wall time |",
             "|---|---|---|---|---|---|---|" + ("---|---|---|" if ceiling else "")
             + ("---|---|" if in_sample else "") + "---|"]
    for row in summary.itertuples(index=False):
        lead = f"| {row.dataset} | {fold_label(row.fold)} |"
        wall = _minutes(row.wall_time_s)
        if row.status != "ok":
            reason = str(row.note).replace("|", "\\|")
            lines.append(f"{lead} failed: {reason} | | | | |{' | | |' if ceiling else ''}"
                         f"{' | |' if in_sample else ''} {wall} |")
            continue
        best = f"{_cell(row.best)} ({row.best_model})" if row.best_model else "n/e"
        chance = _cell(row.chance) if row.has_chance else "n/a"
        ratios = (f" {_cell(row.ceiling)} | {_ratio(row.ensemble, row.ceiling)} | "
                  f"{_ratio(row.baseline, row.ceiling)} |" if ceiling else "")
        ratios += (f" {_cell(row.in_sample)} | {_ratio(row.ensemble, row.in_sample)} |"
                   if in_sample else "")
        lines.append(f"{lead} {row.genes} | {_cell(row.ensemble)} | {chance} | {best} | "
                     f"{_cell(row.baseline)} |{ratios} {wall} |")
    return "\n".join([*lines, "", *over_folds(summary)] if len(summary) else lines)


def report_markdown(table: pd.DataFrame, figures: Mapping[tuple[str, str], Sequence[str]],
                    context: Mapping[str, str]) -> str:
    """The whole docs/realdata.md: how it was made, the summary, then a section per fold
    (``figures``: the figure paths of each (dataset, fold))."""
    lines = [
        "# Real-data benchmark",
        "",
        "Written by `make realbench` (`python workflow/benchmarks/realbench.py`): every real "
        "example config under `resources/` (each `resources/*/config.yaml` except the demo) run "
        "through the whole pipeline from nothing, on the settings of its config and the schema's "
        "defaults, both ways round: as shipped (e.g. fold `left → right`: trained on the train "
        "sections, scored on the test sections) and with train and test swapped (`right → "
        "left`), each fold in its own scratch directory. Dice of each model's arg-max labels "
        "against the reference regions from the test section's own spots "
        "(`results/report/dice.csv`); `mean` is over the evaluable classes, `n/e` not evaluable. "
        "`baseline` is the non-CNN baseline (`txmorph.baseline`: local intensity and "
        "nuclear-density statistics at three window sizes, with `baseline.features: nuclei` "
        "also the shape and texture of the nuclei in them, multinomial logistic regression on "
        "the CNNs' patch centres), not part of the ensemble. `chance` is image-blind: every "
        "pixel the training sections' most frequent class, scored the same way (`n/a`: the run "
        "predates it): the floor that a model has to clear. `ceiling` (gene folds) is how much "
        "DAPI explains inside the test section itself at the fold's settings "
        "(`workflow/benchmarks/ceiling.py`): the test section cut into 2 x 2 blocks, each block "
        "that holds section pixels held out once, the CNNs of every size trained on the rest of "
        "the section (patch centres at least one largest patch size from the held-out block) "
        "and their ensemble painting it, the held-out maps stitched and scored against the "
        "fold's own reference; the ratios ensemble / ceiling and baseline / ceiling are per "
        "fold. `ceiling_in_sample` (in-sample) is the optimistic bound beside it: the CNNs "
        "trained on centres from all of the test section and painting that same section, no "
        "transfer at all (`ceiling.py --in-sample`); a fold near or above it has little left to "
        "gain from DAPI at these settings. Block folds: each crop whole as a 2 x 2 checkerboard of sections `a` and `b` "
        "(`txmorph.blocks`). Wall time: the whole pipeline, all rules, on the cores given below "
        "(the ceilings' trainings not included). Full table: [realdata.csv](realdata.csv).",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in context.items()]
    half_rows, block_rows, niche_rows = fold_kinds(table)
    lines += ["", "## Summary", "", summary_markdown(table[half_rows]), ""]
    if block_rows.any():
        lines += ["## Summary: block folds", "",
                  "Each crop whole, as a checkerboard of blocks (`txmorph.blocks`): trained on "
                  "one set of blocks (patch centres at least one largest patch size from the "
                  "other set), scored on the other, both ways round: the same anatomy in "
                  "train and test, spatially disjoint. Their means are their own, never mixed "
                  "with the half folds'.", "",
                  summary_markdown(table[block_rows]), ""]
    if niche_rows.any():
        lines += ["## Summary: niches", "",
                  "The same configs with `niches: K` in place of their `genes`: the classes are "
                  "K expression niches of all genes' spots, found jointly over the train and "
                  "test sections (`txmorph.niches`); Dice per niche.", "",
                  summary_markdown(table[niche_rows]), ""]
    for (dataset, fold), rows in table.groupby(["dataset", "fold"], sort=False):
        name = f"{dataset}, {fold_label(fold)}"
        lines += [f"## {name}", ""]
        if (rows["status"] == "failed").any():
            lines += [f"**Failed** after {_minutes(rows['wall_time_s'].iloc[0])}: "
                      f"{rows['note'].iloc[0]}", ""]
            continue
        lines += [f"Wall time {_minutes(rows['wall_time_s'].iloc[0])}.", "",
                  dice_markdown(rows[["section", "model", "class", "dice"]]), ""]
        if not (rows["model"] == CHANCE_MODEL).any():
            lines += ["chance: n/a (this run's dice.csv has no `chance` rows).", ""]
        lines += [f"![{name}: image, reference regions and predictions]({path})" for path in
                  figures.get((dataset, fold), [])]
        lines += [""]
    return "\n".join(lines)


def _run_snakemake(workdir: Path, cores: int | str, timeout_s: float, log_path: Path
                   ) -> tuple[int | None, float]:
    """Run the pipeline in ``workdir``; (return code or None after a timeout, wall seconds)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", str(cores)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        try:
            code: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(process)
            code = None
        except BaseException:  # e.g. Ctrl-C: the run is in its own session, stop it too
            _stop(process)
            raise
    return code, time.perf_counter() - start


def _stop(process: subprocess.Popen) -> None:
    """End the Snakemake run started here (its process group): TERM, then KILL after 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_fold(fold: Fold, workdir: Path, cores: int | str, timeout_s: float,
             say: Callable[[str], None] = print) -> RunResult:
    """Run one fold from nothing in ``workdir`` (wiped first)."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if fold.config is None:
        return RunResult(fold.dataset, 0.0, error=fold.error, workdir=workdir, fold=fold.name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(fold.config, sort_keys=False))
    log_path = workdir / "snakemake.log"
    name = f"{fold.dataset} {fold_label(fold.name)}"
    say(f"[realbench] {name}: running in {workdir} (log: {log_path})")
    code, wall = _run_snakemake(workdir, cores, timeout_s, log_path)
    error = None
    if code is None:
        error = f"timed out after {timeout_s:.0f} s"
    elif code != 0:
        logs = [p.read_text(errors="replace")
                for p in sorted((workdir / "results/logs").glob("*/*.log"),
                                key=lambda p: p.stat().st_mtime)]
        error = failure_reason(log_path.read_text(errors="replace"), logs)
    result = collect_run(fold.dataset, workdir, wall, error, fold=fold.name)
    say(f"[realbench] {name}: {'failed: ' + result.error if result.error else 'ok'} "
        f"in {wall:.0f} s")
    return result


def _grid(text: str, parser: argparse.ArgumentParser) -> tuple[int, int]:
    try:
        rows, columns = (int(n) for n in text.lower().split("x"))
    except ValueError:
        parser.error(f"--blocks {text!r}: expected ROWSxCOLUMNS, e.g. 2x2, or none")
    if rows < 1 or columns < 1 or rows * columns < 2:
        parser.error(f"--blocks {text!r}: a checkerboard needs at least two blocks")
    return rows, columns


def add_ceiling(result: RunResult, cores: int | str,
                say: Callable[[str], None] = print, in_sample: bool = False) -> None:
    """Append the fold's ``ceiling`` rows (``ceiling.fold_ceiling``) to its Dice table, and with
    ``in_sample`` its ``ceiling_in_sample`` rows too; a ceiling that fails is said and left out
    (the fold's rows stay)."""
    if result.error is not None or result.dice is None or result.workdir is None:
        return
    from ceiling import fold_ceiling  # beside this file

    for in_sample_mode in (False, True) if in_sample else (False,):
        name = "in-sample ceiling" if in_sample_mode else "ceiling"
        start = time.perf_counter()
        try:
            rows = fold_ceiling(result.workdir, cores=os.cpu_count() or 1 if cores == "all"
                                else int(cores), say=say, in_sample=in_sample_mode)
        except Exception as error:  # a benchmark row: the fold itself stands without it
            say(f"[realbench] {result.dataset} {fold_label(result.fold)}: no {name}: {error}")
            continue
        result.dice = pd.concat([result.dice, rows], ignore_index=True)
        say(f"[realbench] {result.dataset} {fold_label(result.fold)}: {name} in "
            f"{time.perf_counter() - start:.0f} s")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="2", help="Snakemake's --cores: a number or all")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "txmorph-realbench",
                        help="scratch root; each fold runs in <workdir>/<dataset>/<fold> "
                        "(wiped)")
    parser.add_argument("--resources", type=Path, default=REPO / "resources")
    parser.add_argument("--data-root", type=Path, default=REPO,
                        help="what the configs' relative data paths are relative to")
    parser.add_argument("--only", nargs="*", help="dataset names to run (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="[DATASET:]KEY=VALUE",
                        help="config override for every dataset (or one: DATASET:KEY=VALUE)")
    parser.add_argument("--one-way", action="store_true",
                        help="run each config as shipped only, not also train <-> test swapped")
    parser.add_argument("--niches", type=int, default=0, metavar="K",
                        help="also run every config with niches: K in place of its genes "
                        "(0: not; make realbench: 4)")
    parser.add_argument("--blocks", default="2x2", metavar="ROWSxCOLUMNS",
                        help="checkerboard of the block folds (default 2x2; none: no block "
                        "folds)")
    parser.add_argument("--quick", action="store_true",
                        help="quick development run: --one-way, no niche folds and no in-sample "
                        "ceilings")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="no ceiling rows (within-test-section block cross-validation, "
                        "and the in-sample bound)")
    parser.add_argument("--no-in-sample", action="store_true",
                        help="no in-sample ceiling rows (trained on the scored section itself)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per fold")
    parser.add_argument("--csv", type=Path, default=REPO / "docs/realdata.csv")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs/realdata.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.one_way, args.niches, args.no_in_sample = True, 0, True

    workdir = args.workdir.resolve()
    if workdir == REPO or REPO in workdir.parents:
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(workdir)])
        if ignored.returncode != 0:
            parser.error(f"--workdir {workdir} is inside the checkout and not git-ignored")
    # The figures go to a folder named after the Markdown file, emptied on every run: it must
    # not hold the scratch runs (or be held by them), or they would wipe each other.
    figure_dir = args.markdown.resolve().with_suffix("")
    if figure_dir == workdir or figure_dir in workdir.parents or workdir in figure_dir.parents:
        parser.error(f"--workdir {workdir} and the figure folder {figure_dir} (--markdown "
                     "without .md) overlap: choose another --workdir or --markdown")
    try:
        parse_overrides(args.overrides, dataset="")  # syntax check before any run
    except ValueError as error:
        parser.error(str(error))
    datasets = example_configs(args.resources)
    if args.only:
        datasets = [(name, path) for name, path in datasets if name in args.only]
    if not datasets:
        parser.error(f"no example configs under {args.resources}")

    started = time.perf_counter()
    # Read before the runs: the figures they copy into the checkout are not a code change.
    commit = _git_commit()
    if args.niches == 1 or args.niches < 0:
        parser.error(f"--niches {args.niches}: K must be at least 2 (or 0: no niche runs)")
    grid = None if args.blocks == "none" else _grid(args.blocks, parser)
    folds = [fold for name, path in datasets
             for fold in dataset_folds(name, path, parse_overrides(args.overrides, dataset=name),
                                       args.data_root, one_way=args.one_way)]
    if grid is not None:
        shipped: dict[str, Fold] = {}
        for fold in folds:  # each dataset's as-shipped fold
            shipped.setdefault(fold.dataset, fold)
        folds += [fold for f in shipped.values() for fold in
                  block_folds(f.dataset, f.config, grid)[:1 if args.one_way else 2]]
    if args.niches:
        folds += niche_folds([f for f in folds if not is_block_fold(f.name)], args.niches)
    results = []
    for fold in folds:
        result = run_fold(fold, workdir / fold.dataset / fold.name, args.cores, args.timeout)
        if not args.no_ceiling and not is_niche_run(fold.dataset):
            add_ceiling(result, args.cores, in_sample=not args.no_in_sample)
        results.append(result)
    total = time.perf_counter() - started
    table = benchmark_table(results)

    figure_dir = args.markdown.with_suffix("")  # docs/realdata/
    if figure_dir.exists():
        shutil.rmtree(figure_dir)
    figures: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for path in result.figures:  # the fold in the name: both directions have the sections
            target = figure_dir / f"{result.dataset}_{result.fold}_{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            figures.setdefault((result.dataset, result.fold), []).append(
                os.path.relpath(target, args.markdown.parent))
    context = {
        "run": f"{datetime.date.today().isoformat()}, commit {commit}, "
               f"`--cores {args.cores}` on a machine with {os.cpu_count()} CPUs, "
               f"{_minutes(total)} in all",
        "config overrides": ", ".join(f"`{item}`" for item in args.overrides) or "none",
    }
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False, float_format="%.4f")
    # UTF-8 whatever the locale: the fold labels hold arrows
    args.markdown.write_text(report_markdown(table, figures, context), encoding="utf-8")
    half_rows, block_rows, niche_rows = fold_kinds(table)
    print(summary_markdown(table[half_rows]))
    if block_rows.any():
        print("\nblock folds:\n" + summary_markdown(table[block_rows]))
    if niche_rows.any():
        print("\nniches:\n" + summary_markdown(table[niche_rows]))
    print(f"[realbench] {len(results)} folds of {len(datasets)} datasets in {total:.0f} s; "
          f"wrote {args.csv}, {args.markdown}, {figure_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
