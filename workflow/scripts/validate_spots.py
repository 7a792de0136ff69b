"""Rule validate_spots: check a section's spot table against its image and the config."""

import json

from txmorph.inputs import section_summary
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule
from txmorph.section import load_section


def main(smk, log):
    params = smk.params.section
    section = load_section(smk.input.image, smk.input.spots, params, smk.params.genes)
    summary = section_summary(section.image, section.spots, smk.params.genes, section.spots_dropped)
    summary.update(section=section.name, image=smk.input.image, spots=smk.input.spots)
    if section.spots_dropped:
        log.warning("%d spots outside the image were dropped", section.spots_dropped)
    log.info("spots of section %s are valid: %s", section.name, json.dumps(summary))
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
