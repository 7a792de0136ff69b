"""Rule truth: reference regions of a test section from its own spots."""

import json
from pathlib import Path

import numpy as np

from txmorph.classes import class_names
from txmorph.io.canonical import read_mask, read_spots, spots_by_class
from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.truth import truth_labels


def main(smk, log):
    params = smk.params.section
    mask = read_mask(smk.input.mask)
    # Checked on import against the image (same grid as the mask) and the configured genes.
    spots = read_spots(smk.input.spots)
    sigma_px = smk.params.sigma_um / params["pixel_size_um"]
    by_gene = spots_by_class(spots, smk.params.groups)
    # A gene too sparse for the reference rule (checks.json) gets no region: it is reported
    # as not evaluable rather than scored against a region drawn around a handful of spots.
    checks = json.loads(Path(smk.input.checks).read_text())
    for gene in [name for name in by_gene if name not in checks["evaluable_genes"]]:
        log.warning("%s: no reference region (too sparse, see the section's checks)", gene)
        by_gene[gene] = np.empty((0, 2))
    labels = truth_labels(
        mask, by_gene, sigma_px,
        rule=smk.params.rule, enrichment=smk.params.enrichment,
    )
    fractions = {
        name: round(float((labels == index).mean()), 4)
        for index, name in enumerate(class_names(smk.params.groups))
    }
    log.info("reference regions (sigma %.1f px, rule %s): area fractions %s",
             sigma_px, smk.params.rule, fractions)
    write_label_tiff(smk.output[0], labels)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
