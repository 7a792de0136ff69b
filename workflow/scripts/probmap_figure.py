"""Rule probmap_figure: one model's class-probability maps over a test section's image."""

from txmorph.io.canonical import read_image
from txmorph.probmap.mapsio import BASELINE, ENSEMBLE, read_probability_map
from txmorph.report import probability_overlay
from txmorph.scripting import run_rule


def main(smk, log):
    image = read_image(smk.input.image)
    prob_map = read_probability_map(smk.input.probmap)
    model = smk.wildcards.model
    what = {ENSEMBLE: "mean of all sizes", BASELINE: "not a CNN"}.get(
        prob_map.model, f"patch size {prob_map.patch_size} px")
    title = f"section {smk.wildcards.section}, {model} ({what}, stride {prob_map.stride} px)"
    probability_overlay(image, prob_map.probabilities, prob_map.classes, prob_map.stride,
                        smk.output[0], title=title)
    log.info("%s: map %s", title, prob_map.probabilities.shape)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
