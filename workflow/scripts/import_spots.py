"""Rule import_spots: a section's spot table in any supported format -> canonical pixels.

The result is in pixels of ``results/sections/{section}/image.tif``, as every later rule
expects (see ``txmorph.io.spots.import_spots``).
"""

from txmorph.io.canonical import read_image_info
from txmorph.io.spots import import_spots, write_section_spots
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params.section
    image_info = read_image_info(smk.input.image_info)
    spots, summary = import_spots(smk.input.spots, params, image_info, smk.params.genes, log.info)
    summary["fingerprints"] = smk.params.fingerprint  # contents of the spot and side files
    write_section_spots(spots, summary, smk.output.spots, smk.output.summary, log.info)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
