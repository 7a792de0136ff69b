"""Lever measurements on finished folds: ``python workflow/benchmarks/levers.py``.

Retrains the CNNs of finished ``make realbench`` folds (their working directories) with some
training settings changed, on the fold's own patch centres, paints the fold's test sections
and scores them as rule ``dice`` does (the fold's reference regions, not-evaluable classes and
left-out pixels), for several seeds: what a lever does to the ensemble, without rerunning the
rest of the pipeline. A development tool beside ``realbench.py`` (whose folds it reads); the
numbers it prints are no substitute for ``make realbench`` with the chosen defaults.

    python workflow/benchmarks/levers.py /tmp/txmorph-realbench/*/* --seeds 1 2 3 \\
        --lever default={} --lever tta='{"tta": true}' \\
        --lever wide='{"training": {"widths": [32, 64], "hidden": 128}}'

A lever is JSON: ``training`` (keys of the schema's ``training``), ``network_input`` (an
integer, or per size ``{"32": 32, ...}``, or ``"full"``: every size at its full resolution, or
``{"downsample": k}``: every size average-pooled by k), ``tta`` (dihedral test-time
augmentation). Writes one long CSV (``--csv``) and prints the mean ensemble Dice per lever.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import REPO, _groups, _settings, fold_scoring, run_jobs  # noqa: E402

from txmorph.blocks import OUTSIDE_AREA  # noqa: E402
from txmorph.classes import MEAN_CLASS, class_names  # noqa: E402
from txmorph.evaluate.metrics import label_map, sample_labels_on_grid, score_labels  # noqa: E402
from txmorph.io.canonical import read_labels  # noqa: E402
from txmorph.probmap.paint import ensemble_streamed, probability_grid_shape  # noqa: E402


def network_inputs(lever: dict[str, Any], sizes: list[int]) -> dict[int, int] | None:
    """The network input of every size a lever asks for (None: the fold's own)."""
    value = lever.get("network_input")
    if value is None:
        return None
    if value == "full":
        return {size: size for size in sizes}
    if isinstance(value, dict) and "downsample" in value:
        return {size: size // int(value["downsample"]) for size in sizes}
    if isinstance(value, dict):
        return {int(k): int(v) for k, v in value.items()}
    return {size: int(value) for size in sizes}


def fold_jobs(workdir: Path, lever: dict[str, Any], seed: int | None,
              also_tta: bool = False) -> tuple[list, dict]:
    """The (size) jobs of one fold under a lever, and what scoring them needs; ``also_tta``:
    each model paints the test sections without and with test-time augmentation."""
    config = _settings(workdir)
    results = workdir / "results"
    groups = _groups(config)
    classes = class_names(list(groups))
    sizes = [int(s) for s in config["patches"]["sizes"]]
    train = [name for name, s in config["sections"].items() if s.get("role") == "train"]
    dice = pd.read_csv(results / "report/dice.csv")
    tests = list(dict.fromkeys(dice["section"]))
    learned = json.loads((results / "patches/classes.json").read_text())
    centres = pd.read_parquet(results / "patches/centres.parquet")
    inputs = network_inputs(lever, sizes)
    jobs = []
    for size in sizes:
        overrides: dict[str, Any] = {"training": dict(lever.get("training", {}))}
        if inputs:
            overrides["network_input"] = inputs[size]
        if seed is not None:
            overrides["seed"] = int(seed)
        jobs.append({
            "train_images": [str(results / f"sections/{n}/image.tif") for n in train],
            "centres": centres[["row", "col"]].to_numpy(np.int64),
            "sections": centres["section"].to_numpy(np.int64),
            "labels": centres["label"].to_numpy(np.int64), "classes": learned["classes"],
            "size": size, "largest": max(sizes), "model": str(results / f"models/size{size}.pt"),
            "paint": [str(results / f"sections/{n}/image.tif") for n in tests],
            "tta": "both" if also_tta else bool(lever.get("tta", config["probmap"]["tta"])),
            "device": config["training"]["device"], "encoder": None, "freeze": False,
            "overrides": overrides})
    context = {"classes": classes, "tests": tests, "dice": dice, "learned": learned,
               "truths": {n: read_labels(results / f"truth/{n}.tif") for n in tests}}
    return jobs, context


def score_fold(maps: list, context: dict, sizes: list[int]) -> pd.DataFrame:
    """Dice of each size and of their mean (the ensemble) on every test section."""
    classes, dice = context["classes"], context["dice"]
    tables = []
    for t, section in enumerate(context["tests"]):
        truth = context["truths"][section]
        not_evaluable, unlearned = fold_scoring(dice, section, classes, context["learned"])
        section_maps = [(m[t], s) for m, s, _ in maps]
        stride = min(s for _, s in section_maps)
        grid = probability_grid_shape(truth.shape, stride)
        ensemble = np.zeros((len(maps[0][2]), *grid), dtype=np.float32)
        ensemble_streamed(section_maps, ensemble, stride)
        named = [(f"size{size}", prob, s) for size, (prob, s) in zip(sizes, section_maps)]
        for model, prob, s in [*named, ("ensemble", ensemble, stride)]:
            predicted = label_map(prob, maps[0][2], classes)
            reference = sample_labels_on_grid(truth, s, predicted.shape)
            scored = ~np.isin(reference, [*unlearned, OUTSIDE_AREA])
            tables.append(score_labels(section, model, predicted[scored], reference[scored],
                                       classes, not_evaluable))
    return pd.concat(tables, ignore_index=True)


def _labelled(table: pd.DataFrame, lever: str, seed: int, workdir: Path) -> pd.DataFrame:
    """A fold's Dice table with the lever, seed and fold columns in front."""
    table.insert(0, "fold", f"{workdir.parent.name}/{workdir.name}")
    table.insert(0, "seed", seed)
    table.insert(0, "lever", lever)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", type=Path, help="finished fold directories")
    parser.add_argument("--lever", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--seeds", nargs="*", type=int, default=[None])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--csv", type=Path, default=Path("levers.csv"))
    parser.add_argument("--also-tta", action="store_true",
                        help="score every lever also with probmap.tta (same models, as <lever>+tta)")
    args = parser.parse_args(argv)
    levers = {}
    for item in args.lever or ["default={}"]:
        name, _, text = item.partition("=")
        levers[name] = json.loads(text or "{}")
    folds = [w for w in args.workdirs if (w / "results/report/dice.csv").is_file()]
    jobs, plan = [], []
    for name, lever in levers.items():
        for seed in args.seeds:
            for workdir in folds:
                fold_job, context = fold_jobs(workdir, lever, seed, args.also_tta)
                plan.append((name, seed, workdir, context, len(jobs), len(fold_job)))
                jobs += fold_job
    start = time.perf_counter()
    maps = run_jobs(jobs, args.cores)  # every training of every lever, seed and fold at once
    print(f"[levers] {len(jobs)} trainings in {time.perf_counter() - start:.0f} s")
    tables = []
    by_fold: dict[tuple[str, Path], list] = {}  # (lever, fold): each seed's maps
    for name, seed, workdir, context, first, count in plan:
        by_fold.setdefault((name, workdir), []).append((maps[first:first + count], context))
        sizes = [job["size"] for job in jobs[first:first + count]]
        done = maps[first:first + count]
        n_tests = len(context["tests"])
        variants = [(name, done)]
        if args.also_tta:  # each job's maps: the test sections plain, then with TTA
            variants = [(name, [(m[:n_tests], s, c) for m, s, c in done]),
                        (f"{name}+tta", [(m[n_tests:], s, c) for m, s, c in done])]
        for label, variant in variants:
            tables.append(_labelled(score_fold(variant, context, sizes), label,
                                    seed if seed is not None else -1, workdir))
    if len(args.seeds) > 1:  # the seeds' models averaged: a k-seed ensemble of every size
        for (name, workdir), runs in by_fold.items():
            context = runs[0][1]
            n_tests = len(context["tests"])
            count = len(runs[0][0])
            sizes = [int(s) for s in _settings(workdir)["patches"]["sizes"]]
            for offset, label in ([(0, name), (n_tests, f"{name}+tta")] if args.also_tta
                                  else [(0, name)]):
                mean_maps = []
                for k in range(count):
                    stacks = [run[0][k][0][offset:offset + n_tests] for run in runs]
                    mean_maps.append(([np.mean([stack[t] for stack in stacks], axis=0)
                                       for t in range(n_tests)], runs[0][0][k][1],
                                      runs[0][0][k][2]))
                # seed -2: the mean of the seeds' maps
                tables.append(_labelled(score_fold(mean_maps, context, sizes),
                                        f"{label}@{len(runs)}seeds", -2, workdir))
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.csv, index=False, float_format="%.4f")
    means = table[(table["model"] == "ensemble") & (table["class"] == MEAN_CLASS)]
    print(means.pivot_table(index="fold", columns="lever", values="dice", aggfunc="mean")
          .round(3).to_string())
    print(means.groupby("lever")["dice"].agg(["mean", "count"]).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
