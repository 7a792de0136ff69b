"""Rule demo_data: one synthetic demo section (image, spots, true regions)."""

import numpy as np

from txmorph.demo.layout import DemoParams, generate_section, write_section
from txmorph.scripting import run_rule


def main(smk, log):
    # The demo's genes are fixed (Prox1 for region A, Mbp for region B): they are part of the
    # data, not of the analysis, so config `genes` must name them to analyse the demo.
    params = DemoParams(
        height=smk.params.height,
        width=smk.params.width,
        pixel_size_um=smk.params.pixel_size_um,
    )
    seed = int(np.random.SeedSequence(smk.params.seed).generate_state(1)[0])
    log.info("generating a %dx%d demo section (seed %d)", params.height, params.width, seed)
    section = generate_section(params, seed)
    write_section(section, smk.output.image, smk.output.spots, smk.output.regions)
    counts = section.spots["gene"].value_counts()
    log.info("%d spots; per gene: %s", len(section.spots), counts.to_dict())


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
