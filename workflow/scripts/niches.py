"""Rule niches: K expression niches of every train and test section's spots, clustered jointly
(txmorph.niches), checked against what the spots can hold, named by their genes; each section's
spots written with their niche as the gene (the class spots of the later rules)."""

import json

import numpy as np
import pandas as pd

from txmorph.checks import spots_in_mask
from txmorph.classes import niche_classes
from txmorph.errors import InputError
from txmorph.io.canonical import read_mask, read_spots
from txmorph.niches import (clustering_scale, joint_niches, scale_problem, support_problem,
                            untrained_niches)
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params
    sigma_um = params.sigma_um
    names = [s["name"] for s in params.sections]
    spot_tables, tables, problems = [], [], []
    for index, section in enumerate(params.sections):
        spots = read_spots(smk.input.spots[index])
        spot_tables.append(spots)
        mask = read_mask(smk.input.masks[index])
        pixel_um = section["pixel_size_um"]
        in_tissue = int(spots_in_mask(spots["x"].to_numpy(), spots["y"].to_numpy(), mask).sum())
        if problem := scale_problem(section["name"], in_tissue,
                                    float(mask.sum()) * pixel_um**2, sigma_um,
                                    params.min_spots_per_region):
            problems.append(problem)
        # Micrometres: one clustering scale for sections of any pixel size.
        tables.append(pd.DataFrame({"gene": spots["gene"].to_numpy(),
                                    "x": spots["x"].to_numpy() * pixel_um,
                                    "y": spots["y"].to_numpy() * pixel_um}))
    if problems:
        raise InputError("; ".join(problems))
    bin_um, smoothing_um = clustering_scale(sigma_um)
    niches = joint_niches(tables, params.k, bin_um, smoothing_um, params.seed)
    training = [i for i, role in enumerate(params.roles) if role == "train"]
    if problem := support_problem(niches, params.k, training, params.min_per_class):
        raise InputError(problem)
    for label, why in untrained_niches(niches, params.k, training, params.min_per_class,
                                       names).items():
        log.warning("%s: %s", label, why)
    classes = niche_classes(params.k)
    log.info("niches: %d of all genes' spots of %s, clustered jointly (bins %.3g µm, smoothing "
             "radius %.3g µm, seed %d)", params.k, ", ".join(names), bin_um, smoothing_um,
             params.seed)
    for name, shares in zip(names, niches.shares):
        log.info("section %s: share of its spots per niche %s", name,
                 {c: round(float(v), 4) for c, v in zip(classes, shares)})
    for label in niches.names:
        log.info("%s", label)
    for index, spots in enumerate(spot_tables):
        labels = niches.labels[index]
        assigned = labels >= 0
        unassigned = int((~assigned).sum())
        if unassigned:
            log.info("section %s: %d spots in no niche (an empty bin's), left out", names[index],
                     unassigned)
        table = pd.DataFrame({"gene": np.asarray(classes, dtype=object)[labels[assigned]],
                              "x": spots["x"].to_numpy()[assigned],
                              "y": spots["y"].to_numpy()[assigned]})
        with atomic_path(smk.output.spots[index]) as tmp:
            table.to_parquet(tmp, index=False)
    summary = {
        "k": params.k,
        "classes": {c: {"name": label, "top_genes": genes}
                    for c, label, genes in zip(classes, niches.names, niches.top_genes)},
        "shares": {name: {c: float(v) for c, v in zip(classes, shares)}
                   for name, shares in zip(names, niches.shares)},
        "sections": names,
        "settings": {"sigma_um": sigma_um, "bin_um": bin_um, "smoothing_um": smoothing_um,
                     "seed": params.seed, "method": "points2regions"},
    }
    table = pd.DataFrame({
        "niche": classes, "name": niches.names,
        "top_genes": [", ".join(genes) for genes in niches.top_genes],
        **{f"share_{name}": shares for name, shares in zip(names, niches.shares)}})
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(smk.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
