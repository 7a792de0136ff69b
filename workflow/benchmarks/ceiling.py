"""The within-section ceiling of a finished fold (``make realbench``'s ``ceiling`` rows).

How much of each class DAPI can explain inside one test section, at the fold's own settings:
the test section is cut into a grid of blocks (``GRID``: 2 x 2 over its image) and every block
that holds pixels of the section is held out once; the CNNs of every patch size are trained on
the rest of the section (patch centres at least one largest patch size from the held-out
block, ``txmorph.blocks.training_area``) and paint the held-out block; the ensemble's arg-max
labels of the held-out blocks, stitched into one map, are scored against the same reference
regions as the fold (its ``results/truth/<section>.tif``: the thresholds fitted on the fold's
training sections), with the fold's not-evaluable classes and left-out pixels. Train and test
are then the same anatomy, imaged and stained the same way, so a fold far below its ceiling
points at a transfer problem (other anatomy, other staining), and a low ceiling at a class
that DAPI does not show at these settings.

Everything is read from the fold's working directory: the canonical images, spots and truth,
``results/patches/classes.json`` (which classes the fold learned) and each size's model file
(its training settings, network input and seed), so the ceiling runs exactly the fold's
settings through the pipeline's own functions (``sample_centres``, ``extract_patches``,
``train_classifier``, ``paint_probabilities``, ``ensemble_streamed``, ``score_labels``). Each
(block, size) training runs in its own process, ``cores`` at a time, single-threaded as rule
train does. A benchmark row, not a pipeline default (docs/realdata.md).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from txmorph.blocks import OUTSIDE_AREA, block_index, restrict_labels, training_area  # noqa: E402
from txmorph.classes import class_names  # noqa: E402
from txmorph.evaluate.metrics import (label_map, sample_labels_on_grid,  # noqa: E402
                                      score_labels)
from txmorph.io.canonical import read_image, read_labels, read_spots, spots_by_class  # noqa: E402
from txmorph.patches.intensity import intensity_range  # noqa: E402
from txmorph.patches.sampling import choose_classes, extract_patches, sample_centres  # noqa: E402
from txmorph.probmap.paint import ensemble_streamed, probability_grid_shape  # noqa: E402

CEILING_MODEL = "ceiling"
# The in-sample bound (``fold_ceiling(..., in_sample=True)``): trained on all of the scored
# section and painting it; no transfer at all, so no honest fold can be expected above it.
IN_SAMPLE_MODEL = "ceiling_in_sample"
GRID = (2, 2)  # blocks of the test section's image; each one holding section pixels held out once


def _defaults(node: Any) -> Any:
    """The schema's defaults of an object node, nested (objects without one get theirs)."""
    if not isinstance(node, dict):
        return None
    if "default" in node and not node.get("properties"):
        return node["default"]
    values = {key: _defaults(child) for key, child in node.get("properties", {}).items()}
    return {key: value for key, value in values.items() if value is not None}


def _merged(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in extra.items()}}
    return extra


def _settings(workdir: Path) -> dict[str, Any]:
    """The fold's config as the pipeline ran it: its scratch config over the schema's defaults
    (read from the schema file, so that this runs where only the core packages are)."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    settings = _merged(_defaults(schema), {k: v for k, v in config.items() if k != "sections"})
    settings["sections"] = config["sections"]
    if settings.get("niches") is not None:
        raise ValueError("a niche run has no ceiling here (its classes are found per run)")
    return settings


def _groups(config: dict[str, Any]) -> dict[str, list[str]]:
    genes = config.get("genes")
    if isinstance(genes, dict):
        return {str(k): [str(g) for g in v] for k, v in genes.items()}
    return {str(g): [str(g)] for g in genes}


def fold_scoring(dice: pd.DataFrame, section: str, classes: Sequence[str],
                 learned: dict[str, Any]) -> tuple[dict[str, str], list[int]]:
    """What rule dice left out of a fold's scores on one test section: the not-evaluable
    classes with their notes (from its ``dice.csv`` ensemble rows) and the labels of the
    classes the models did not learn (``classes.json``)."""
    rows = dice[(dice["section"] == section) & (dice["model"] == "ensemble")]
    not_evaluable = {r["class"]: str(r["note"]) for _, r in rows.iterrows()
                     if not r["evaluable"] and r["class"] in classes}
    unlearned = [list(classes).index(n) for n in classes if n not in learned["classes"]]
    return not_evaluable, unlearned


def held_out_blocks(area: np.ndarray, grid: tuple[int, int] = GRID) -> list[np.ndarray]:
    """The (H, W) bool pixels of each block of ``grid`` that holds pixels of ``area``."""
    rows, cols = block_index(area.shape, grid)
    blocks = []
    for i in range(grid[0]):
        for j in range(grid[1]):
            held = area & (rows[:, None] == i) & (cols[None, :] == j)
            if held.any():
                blocks.append(held)
    return blocks


def train_and_paint(job: dict[str, Any]) -> tuple[list[np.ndarray], int, list[str]]:
    """One CNN: trained on the job's centres of its training images, then painting its images.

    ``job``: ``train_images`` (canonical image paths), ``centres`` (N, 2), ``sections`` (N,
    index into ``train_images``), ``labels`` (N, into ``classes``), ``classes``, ``size``,
    ``largest``, ``model`` (the fold's model file of this size: its training settings, network
    input and seed), ``paint`` (image paths), ``device``, ``tta``, ``encoder``, ``freeze``, and
    optional ``overrides`` (``training`` keys, ``network_input``, ``seed``) for lever
    measurements. Runs in a worker process; returns the probability maps (C, h, w) at the
    model's native stride, the stride and the model's classes."""
    sys.path.insert(0, str(REPO / "workflow"))
    from txmorph.device import resolve_device
    from txmorph.probmap.paint import paint_probabilities
    from txmorph.train.model import load_model
    from txmorph.train.pretrain import load_encoder
    from txmorph.train.training import TrainingParams, train_classifier

    size = job["size"]
    _, metadata = load_model(job["model"], device="cpu")
    settings = metadata["config"]
    overrides = dict(job.get("overrides") or {})
    training = {**settings["training"], **overrides.get("training", {})}
    params = TrainingParams(**training, seed=int(overrides.get("seed", settings["seed"])))
    network_input = int(overrides.get("network_input", {}).get(size, metadata["network_input"])
                        if isinstance(overrides.get("network_input"), dict)
                        else overrides.get("network_input", metadata["network_input"]))
    device = resolve_device(job["device"])
    encoder = load_encoder(job["encoder"]) if job["encoder"] else None
    images = [read_image(path) for path in job["train_images"]]
    ranges = {i: tuple(intensity_range(image)) for i, image in enumerate(images)}
    sections = np.asarray(job["sections"], dtype=np.int64)
    patches = np.empty((len(sections), size, size), dtype=images[0].dtype)
    for index, image in enumerate(images):
        patches[sections == index] = extract_patches(image, job["centres"][sections == index],
                                                     size)
    model, _, meta = train_classifier(
        patches, job["labels"], sections, ranges, job["classes"], size, params,
        network_input=network_input, device=device, threads=1, centres=job["centres"],
        largest_patch_size=job["largest"], encoder=encoder, freeze_encoder=job["freeze"])
    maps = []
    # tta "both": every image painted without, then with test-time augmentation.
    for tta in ((False, True) if job["tta"] == "both" else (bool(job["tta"]),)):
        for path in job["paint"]:
            image = read_image(path)
            out = np.zeros((model.n_classes, *probability_grid_shape(image.shape,
                                                                      model.stride)),
                           dtype=np.float32)
            paint_probabilities(image, model, meta, intensity_range(image), out, device=device,
                                tta=tta)
            maps.append(out)
    return maps, int(model.stride), list(job["classes"])


def fold_ceiling(workdir: str | Path, cores: int = 2, grid: tuple[int, int] = GRID,
                 say: Callable[[str], None] = print, in_sample: bool = False) -> pd.DataFrame:
    """The ``ceiling`` Dice rows (``dice.csv``'s columns) of every test section of a fold.

    With ``in_sample`` the rows of model ``ceiling_in_sample`` instead: the CNNs trained on
    centres from all of the test section (no block held out, no buffer) paint that same
    section, the optimistic bound of what DAPI explains there at the fold's settings (the
    patches it scores were seen in training; it is no generalisation estimate).

    Parameters
    ----------
    workdir : str or Path
        A finished gene-class run (``results/report/dice.csv`` and the models present).
    cores : int
        Trainings at a time.
    grid : tuple[int, int]
        Blocks of each test section's image.
    say : Callable[[str], None]
        Progress lines.
    in_sample : bool
        Train on the whole test section and paint it (``grid`` unused).

    Returns
    -------
    pd.DataFrame
        ``section, model, class, dice, evaluable, note`` with model ``ceiling``.
    """
    workdir = Path(workdir)
    config = _settings(workdir)
    results = workdir / "results"
    groups = _groups(config)
    classes = class_names(list(groups))
    dice = pd.read_csv(results / "report/dice.csv")
    learned = json.loads((results / "patches/classes.json").read_text())
    sizes = [int(s) for s in config["patches"]["sizes"]]
    largest = max(sizes)
    patches = config["patches"]
    chosen_genes = [g for genes in groups.values() for g in genes]
    pretrain = config["training"]["pretrain"]
    encoder = results / "models/encoder.pt"
    tables = []
    for section in dict.fromkeys(dice["section"]):
        image_path = results / f"sections/{section}/image.tif"
        truth = read_labels(results / f"truth/{section}.tif")
        spots = read_spots(results / f"sections/{section}/spots.parquet")
        area = truth != OUTSIDE_AREA
        pixel_size_um = float(json.loads((results / f"sections/{section}/image.json")
                                         .read_text())["pixel_size_um"])
        # The fold's own not-evaluable notes and left-out classes (rule dice), so the ceiling
        # is scored on exactly the fold's pixels and classes.
        not_evaluable, unlearned = fold_scoring(dice, section, classes, learned)
        jobs, held_masks = [], [area] if in_sample else held_out_blocks(area, grid)
        for index, held in enumerate(held_masks):
            allowed = area if in_sample else training_area(~held, largest) & area
            reference = restrict_labels(truth, allowed)
            other = spots.loc[~spots["gene"].isin(chosen_genes), ["x", "y"]].to_numpy(np.float64)
            sampled = sample_centres(reference, spots_by_class(spots, groups), other,
                                     per_class=patches["per_class"], pixel_size_um=pixel_size_um,
                                     rng=np.random.default_rng([config["seed"], index]),
                                     mode=patches["labels"])
            # The fold's classes only (the same outputs); one this block's rest lacks is left
            # out of its models, as rule centres leaves out a class too short of centres.
            kept, _ = choose_classes([sampled.available], classes, patches["min_per_class"],
                                     [f"{section}" if in_sample
                                      else f"{section} without block {index}"],
                                     optional=classes)
            kept = [name for name in kept if name in learned["classes"]]
            keep = np.isin(sampled.labels, [classes.index(n) for n in kept])
            labels = np.searchsorted([classes.index(n) for n in kept], sampled.labels[keep])
            say(f"[ceiling] {section}, "
                + ("in sample" if in_sample else f"block {index + 1}/{len(held_masks)}") + ": "
                f"{int(keep.sum())} centres of {kept}")
            for size in sizes:
                jobs.append({"block": index, "train_images": [str(image_path)], "size": size,
                             "centres": sampled.centres[keep], "labels": labels,
                             "sections": np.zeros(int(keep.sum()), dtype=np.int64),
                             "classes": kept, "largest": largest,
                             "model": str(results / f"models/size{size}.pt"),
                             "paint": [str(image_path)], "tta": config["probmap"]["tta"],
                             "device": config["training"]["device"],
                             "encoder": str(encoder) if pretrain["method"] != "none" else None,
                             "freeze": bool(pretrain["method"] != "none" and pretrain["freeze"])})
        maps = [(m[0], s, c) for m, s, c in run_jobs(jobs, cores)]
        stride = min(s for _, s, _ in maps)
        grid_shape = probability_grid_shape(truth.shape, stride)
        stitched = np.full(grid_shape, OUTSIDE_AREA, dtype=np.uint8)
        for index, held in enumerate(held_masks):
            mine = [(m, s) for (m, s, _), job in zip(maps, jobs) if job["block"] == index]
            model_classes = next(c for (_, _, c), job in zip(maps, jobs) if job["block"] == index)
            ensemble = np.zeros((len(model_classes), *grid_shape), dtype=np.float32)
            ensemble_streamed(mine, ensemble, stride)
            predicted = label_map(ensemble, model_classes, classes)
            on_grid = sample_labels_on_grid(held.astype(np.uint8), stride, grid_shape) == 1
            stitched[on_grid] = predicted[on_grid]
        reference = sample_labels_on_grid(truth, stride, grid_shape)
        scored = (stitched != OUTSIDE_AREA) & ~np.isin(reference, [*unlearned, OUTSIDE_AREA])
        table = score_labels(section, IN_SAMPLE_MODEL if in_sample else CEILING_MODEL,
                             stitched[scored], reference[scored], classes, not_evaluable)
        say(f"[ceiling] {section}: " + ", ".join(
            f"{c} {d:.3f}" for c, d in zip(table["class"], table["dice"]) if np.isfinite(d)))
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def run_jobs(jobs: Sequence[dict[str, Any]], cores: int) -> list[tuple[list, int, list]]:
    """Every job's map, in job order; ``cores`` worker processes (spawned: no torch state or
    thread pool of this process is inherited)."""
    if cores <= 1:
        return [train_and_paint(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=cores, mp_context=context) as pool:
        return list(pool.map(train_and_paint, jobs))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="ceiling of a finished fold's working directory")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("workdirs", type=Path, nargs="*", help="more fold directories")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--in-sample", action="store_true",
                        help="the in-sample bound: trained on all of the test section")
    parser.add_argument("--csv", type=Path, help="write every fold's rows here")
    args = parser.parse_args()
    tables = []
    for workdir in [args.workdir, *args.workdirs]:
        table = fold_ceiling(workdir, args.cores, in_sample=args.in_sample)
        table.insert(0, "fold", f"{workdir.parent.name}/{workdir.name}")
        print(table.to_string())
        tables.append(table)
    if args.csv:
        pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False, float_format="%.4f")
