"""Rule validate_image: check that a section's image is a readable 2-D nuclei image."""

import json

import numpy as np

from txmorph.inputs import read_image
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    image = read_image(smk.input.image)
    summary = {
        "section": smk.params.section["name"],
        "image": smk.input.image,
        "shape": list(image.shape),
        "dtype": str(image.dtype),
        "intensity_min": float(np.min(image)),
        "intensity_max": float(np.max(image)),
    }
    log.info("image of section %s is valid: %s", summary["section"], json.dumps(summary))
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
