"""Rule dice_chart: Dice per class and model as bars, with the published reference."""

import pandas as pd

from txmorph.report import dice_chart
from txmorph.scripting import run_rule


def main(smk, log):
    table = pd.read_csv(smk.input.dice)
    dice_chart(table, smk.output[0], reference=smk.params.reference)
    log.info("Dice chart of %d rows, reference line at %.2f", len(table), smk.params.reference)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
