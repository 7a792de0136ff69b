"""Rule truth: reference regions of a test section from its own spots."""

import tifffile

from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.section import load_spots, spots_by_gene
from txmorph.truth import truth_labels


def main(smk, log):
    params = smk.params.section
    mask = tifffile.imread(smk.input.mask).astype(bool)
    spots, _ = load_spots(smk.input.spots, params, mask.shape, smk.params.genes)
    sigma_px = smk.params.sigma_um / params["pixel_size_um"]
    labels = truth_labels(
        mask, spots_by_gene(spots, smk.params.genes), sigma_px,
        rule=smk.params.rule, enrichment=smk.params.enrichment,
    )
    fractions = {
        name: round(float((labels == index).mean()), 4)
        for index, name in enumerate(["background", "tissue", *smk.params.genes])
    }
    log.info("reference regions (sigma %.1f px, rule %s): area fractions %s",
             sigma_px, smk.params.rule, fractions)
    write_label_tiff(smk.output[0], labels)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
