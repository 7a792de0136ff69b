"""Rule dice: each model's arg-max labels against a test section's reference regions."""

import pandas as pd
import tifffile

from txmorph.mapsio import read_probability_map
from txmorph.metrics import dice_scores, dice_table, sample_labels_on_grid
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    truth = tifffile.imread(smk.input.truth)
    classes = list(smk.params.classes)
    section = smk.wildcards.section
    tables = []
    for model, path in zip(smk.params.models, smk.input.probmaps):
        prob_map = read_probability_map(path)
        predicted = prob_map.probabilities.argmax(axis=0)
        reference = sample_labels_on_grid(truth, prob_map.stride, predicted.shape)
        scores = dice_scores(predicted, reference, len(classes))
        log.info("%s: %s", model, dict(zip(classes, scores.round(3).tolist())))
        tables.append(dice_table(section, model, classes, scores))
    with atomic_path(smk.output[0]) as tmp:
        pd.concat(tables).to_csv(tmp, index=False, float_format="%.4f")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
