"""Rule ensemble_weights: the patch sizes' ensemble weights, from validation patches only."""

import json

import numpy as np

from txmorph.outputs import atomic_path
from txmorph.patches.patchdata import read_patch_set
from txmorph.scripting import run_rule
from txmorph.train.ensemble import ValidationSet, align, balanced_nll, fit_weights
from txmorph.train.loop import predict_patches
from txmorph.train.model import load_model


def main(smk, log):
    sets = []
    for size, patch_path, model_path in zip(smk.params.sizes, smk.input.patches,
                                             smk.input.models):
        patches = read_patch_set(patch_path)
        model, metadata = load_model(model_path)
        held_out = np.asarray(metadata.get("validation_patches", []), dtype=np.int64)
        ranges = {i: tuple(r) for i, r in enumerate(patches.section_intensity)}
        probabilities = predict_patches(model, patches.images[held_out],
                                        patches.section[held_out], ranges)
        keys = np.column_stack([patches.section[held_out], patches.centres[held_out]])
        sets.append(ValidationSet(keys, patches.labels[held_out], probabilities))
        log.info("size %d: %d validation patches", size, held_out.size)
    labels, probabilities = align(sets)
    weights = fit_weights(labels, probabilities, smk.params.method)
    losses = {str(size): balanced_nll(labels, p) for size, p in zip(smk.params.sizes,
                                                                   probabilities)}
    mixed = sum(w * p for w, p in zip(weights, probabilities)) if labels.size else None
    mean = sum(probabilities) / len(probabilities) if labels.size else None
    report = {
        "method": smk.params.method,
        "weights": {str(size): float(w) for size, w in zip(smk.params.sizes, weights)},
        "validation_spots": int(labels.size),
        "validation_loss": {
            "sizes": losses,
            "mean": balanced_nll(labels, mean) if mean is not None else None,
            "ensemble": balanced_nll(labels, mixed) if mixed is not None else None,
        },
    }
    if labels.size == 0:
        log.warning("no validation spot is held out by every size: equal weights")
    log.info("ensemble (%s) on %d validation spots held out by every size: weights %s; "
             "class-balanced validation loss %s (plain mean %s)", smk.params.method,
             labels.size, report["weights"], report["validation_loss"]["ensemble"],
             report["validation_loss"]["mean"])
    with atomic_path(smk.output[0]) as tmp:
        with open(tmp, "w") as handle:
            json.dump(report, handle, indent=2, allow_nan=False)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
