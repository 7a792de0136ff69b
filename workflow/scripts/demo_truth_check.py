"""Rule demo_truth_check: Dice of the spot-derived reference regions against the demo's true ones."""

import tifffile

from txmorph.evaluate.metrics import dice_scores, dice_table
from txmorph.io.canonical import read_labels
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    truth = read_labels(smk.input.truth)
    regions = tifffile.imread(smk.input.regions)  # the demo generator's file, not canonical
    classes = list(smk.params.classes)
    scores = dice_scores(truth, regions, len(classes))
    table = dice_table(smk.wildcards.section, "spot_truth", classes, scores)
    log.info("reference regions vs the generator's regions:\n%s", table.to_string(index=False))
    with atomic_path(smk.output[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
