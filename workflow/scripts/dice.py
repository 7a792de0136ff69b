"""Rule dice: each model's arg-max labels against a test section's reference regions, and the
image-blind chance row (every pixel the training sections' most frequent learned class)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from txmorph.blocks import OUTSIDE_AREA
from txmorph.evaluate.metrics import (label_map, sample_labels_on_grid, score_labels,
                                      unlearned_notes)
from txmorph.io.canonical import read_labels
from txmorph.outputs import atomic_path
from txmorph.probmap.mapsio import read_probability_map
from txmorph.reference import chance_class, read_reference
from txmorph.scripting import run_rule


CHANCE_MODEL = "chance"


def main(smk, log):
    truth = read_labels(smk.input.truth)
    classes = list(smk.params.classes)
    section = smk.wildcards.section
    checks = json.loads(Path(smk.input.checks).read_text())
    learned = json.loads(Path(smk.input.classes).read_text())
    # Classes the input checks found not evaluable (a test gene too sparse for a region), and
    # classes the models never learned (the training sections hold none): their reference
    # pixels are left out, since no model could have named them. Pixels outside a section's
    # blocks (txmorph.blocks) are not the section's: left out too.
    not_evaluable = {f["gene"]: f["message"] for f in checks["findings"]
                     if f["severity"] == "not_evaluable" and f["gene"]}
    unlearned = [name for name in classes if name not in learned["classes"]]
    not_evaluable.update(unlearned_notes(truth, classes, unlearned, learned["dropped"]))
    unlearned_labels = [classes.index(name) for name in unlearned]
    tables = []
    for model, path in zip(smk.params.models, smk.input.probmaps):
        prob_map = read_probability_map(path)
        context_px = smk.params.context_um / (smk.params.pixel_size_um * prob_map.stride)
        predicted = label_map(prob_map.probabilities, prob_map.classes, classes, context_px)
        reference = sample_labels_on_grid(truth, prob_map.stride, predicted.shape)
        scored = ~np.isin(reference, [*unlearned_labels, OUTSIDE_AREA])
        table = score_labels(section, model, predicted[scored], reference[scored], classes,
                             not_evaluable)
        log.info("%s: %s", model, dict(zip(table["class"], table["dice"].round(3))))
        tables.append(table)
    # The floor every score is read against: a prediction that never looks at the image.
    chance = chance_class(read_reference(smk.input.reference), learned["classes"])
    scored = ~np.isin(truth, [*unlearned_labels, OUTSIDE_AREA])
    constant = np.full(int(scored.sum()), classes.index(chance), dtype=truth.dtype)
    table = score_labels(section, CHANCE_MODEL, constant, truth[scored], classes, not_evaluable)
    log.info("%s (every pixel %s): %s", CHANCE_MODEL, chance,
             dict(zip(table["class"], table["dice"].round(3))))
    tables.append(table)
    for row in tables[0].itertuples(index=False):
        if not row.evaluable:
            log.warning("class %s not evaluable: %s", row[2], row.note)
    with atomic_path(smk.output[0]) as tmp:
        pd.concat(tables).to_csv(tmp, index=False, float_format="%.4f")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
