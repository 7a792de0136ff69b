"""Rule demo_truth_check: Dice of the spot-derived reference regions against the demo's true ones.

With ``niches: K`` each niche is read as the true region holding most of its pixels
(``txmorph.niches.match_regions``): the rows are the true regions, the note says which niche
matched, so the check shows whether the joint clustering found the same regions in both
sections (the same niche matched to a region in each).
"""

import numpy as np
import tifffile

from txmorph.classes import class_names
from txmorph.demo.layout import DemoParams
from txmorph.evaluate.metrics import dice_scores, dice_table
from txmorph.io.canonical import read_labels
from txmorph.niches import match_regions
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    truth = read_labels(smk.input.truth)
    regions = tifffile.imread(smk.input.regions)  # the demo generator's file, not canonical
    classes = list(smk.params.classes)
    notes = {}
    if smk.params.niches:
        mapping = match_regions(truth, regions)
        lookup = np.zeros(max(mapping) + 1, dtype=np.uint8)
        for niche, region in mapping.items():
            lookup[niche] = region
        demo = DemoParams()
        region_classes = class_names([demo.gene_a, demo.gene_b])
        for niche, region in sorted(mapping.items()):
            if niche >= 2:
                notes.setdefault(region_classes[region], []).append(classes[niche])
        truth, classes = lookup[truth], region_classes
    scores = dice_scores(truth, regions, len(classes))
    table = dice_table(smk.wildcards.section, "spot_truth", classes, scores)
    if notes:
        table["note"] = table["class"].map(lambda name: ", ".join(notes.get(name, []))
                                           ).fillna("")
    log.info("reference regions vs the generator's regions:\n%s", table.to_string(index=False))
    with atomic_path(smk.output[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
