"""Rule patch_counts: a table of training patches per class and patch size."""

import h5py
import pandas as pd

from txmorph.outputs import atomic_path
from txmorph.report import patch_counts
from txmorph.scripting import run_rule


def main(smk, log):
    columns = {}
    for size, path in zip(smk.params.sizes, smk.input.patches):
        with h5py.File(path, "r") as f:  # labels only: the images are not needed
            classes = [str(c) for c in f.attrs["classes"]]
            columns[f"size{size}"] = patch_counts(f["labels"][...], classes)
    table = pd.DataFrame(columns)
    table.index.name = "class"
    table.loc["total"] = table.sum()
    with atomic_path(smk.output[0]) as tmp:
        table.to_csv(tmp)
    log.info("patches per class and size:\n%s", table.to_string())


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
