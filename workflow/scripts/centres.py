"""Rule centres: patch centres and the class set, once for every patch size.

Every size is cut at the same centres (so sizes differ only in context); classes that the
training sections do not hold (e.g. background in a crop inside tissue) are left out here,
with the reason in classes.json, the log and the report.
"""

import json

import numpy as np
import pandas as pd

from txmorph.blocks import restrict_labels, section_area, training_area
from txmorph.classes import class_names
from txmorph.io.canonical import read_labels, read_spots, spots_by_class
from txmorph.outputs import atomic_path
from txmorph.patches.sampling import choose_classes, sample_centres
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params
    groups = params.groups
    names = class_names(list(groups))
    chosen_genes = [gene for genes in groups.values() for gene in genes]
    parts, available = [], []
    for index, section in enumerate(params.sections):
        reference = read_labels(smk.input.truths[index])
        # A section of blocks (txmorph.blocks): centres keep one largest patch size away from
        # the pixels that are not the section's (the other blocks, a test section's).
        area = training_area(section_area(reference.shape, section.get("blocks")),
                             params.buffer_px)
        reference = restrict_labels(reference, area)
        spots = read_spots(smk.input.spots[index])
        other = spots.loc[~spots["gene"].isin(chosen_genes), ["x", "y"]].to_numpy(np.float64)
        # The seed does not depend on the patch size: every size sees the same centres.
        sampled = sample_centres(
            reference, spots_by_class(spots, groups), other, per_class=params.per_class,
            pixel_size_um=section["pixel_size_um"], rng=np.random.default_rng([params.seed, index]),
            mode=params.labels)
        log.info("section %s: candidates per class %s", section["name"], sampled.available)
        available.append(sampled.available)
        parts.append(pd.DataFrame({
            "section": index, "row": sampled.centres[:, 0], "col": sampled.centres[:, 1],
            "class": np.asarray(names)[sampled.labels]}))
    # Niches are found over the test sections too: one the training sections lack is left
    # out, as background is from a crop inside tissue (txmorph.niches.untrained_niches).
    kept, dropped = choose_classes(available, names, params.min_per_class,
                                   [s["name"] for s in params.sections],
                                   optional=list(groups) if params.niches else ())
    for name, reason in dropped.items():
        log.warning("class %s left out of the models: %s", name, reason)
    centres = pd.concat(parts, ignore_index=True)
    centres = centres[centres["class"].isin(kept)].reset_index(drop=True)
    centres["label"] = centres["class"].map({name: i for i, name in enumerate(kept)})
    counts = centres["class"].value_counts()
    log.info("patch centres per class (%s mode): %s", params.labels,
             {name: int(counts.get(name, 0)) for name in kept})
    summary = {
        "classes": kept,
        "dropped": dropped,
        "labels": params.labels,
        "centres_per_class": {name: int(counts.get(name, 0)) for name in kept},
        "available": {s["name"]: a for s, a in zip(params.sections, available)},
    }
    with atomic_path(smk.output.centres) as tmp:
        centres.to_parquet(tmp, index=False)
    with atomic_path(smk.output.classes) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
