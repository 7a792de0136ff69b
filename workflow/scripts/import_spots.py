"""Rule import_spots: a section's spot table in any supported format -> canonical pixels.

The result is in pixels of ``results/sections/{section}/image.tif``, as every later rule
expects (see ``txmorph.io.spots.import_spots``).
"""

import json
from pathlib import Path

from txmorph.io.spots import import_spots, write_spots
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params.section
    image_info = json.loads(Path(smk.input.image_info).read_text())
    spots, summary = import_spots(smk.input.spots, params, image_info, smk.params.genes, log.info)
    summary["fingerprints"] = smk.params.fingerprint  # contents of the spot and side files
    log.info("spots of section %s: %s", params["name"], json.dumps(summary))
    with atomic_path(smk.output.spots) as tmp:
        write_spots(spots, tmp)
    with atomic_path(smk.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
