"""Rule training_curves: loss and accuracy per epoch of every model."""

import pandas as pd

from txmorph.report import training_curves
from txmorph.scripting import run_rule


def main(smk, log):
    metrics = {f"size{size}": pd.read_csv(path)
               for size, path in zip(smk.params.sizes, smk.input.metrics)}
    training_curves(metrics, smk.output[0])
    for name, table in metrics.items():
        log.info("%s: %d epochs, best validation loss %.4f", name, len(table),
                 table["val_loss"].min())


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
