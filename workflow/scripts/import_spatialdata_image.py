"""Rule import_spatialdata_image: an image element of a SpatialData .zarr -> canonical 2-D TIFF.

The same canonical image and summary as rule import_image (level, channel, z-projection,
region, downsampling applied by ``txmorph.io.imagewrite.write_canonical_image``), read
window by window from the store's (dask) image element.
"""

import json

import dask

from txmorph.io.imagewrite import write_canonical_image
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule
from txmorph.spatialdata_io import open_spatialdata_image


def main(smk, log):
    dask.config.set(num_workers=smk.threads)  # the rule's threads, not every core
    params = smk.params.section
    source, full_width = open_spatialdata_image(
        smk.params.store, smk.params.element, level=params["level"], channel=params["channel"],
        z_projection=params["z_projection"])
    with source:
        log.info("%s", source.description)
        region = params.get("region") or {}
        x0, x1 = region.get("x", [0, source.shape[1]])
        y0, y1 = region.get("y", [0, source.shape[0]])
        summary = write_canonical_image(source, smk.output.image, downsample=params["downsample"],
                                        region=(y0, y1, x0, x1))
    summary.update(
        section=params["name"],
        # Pixels of this level per full-resolution pixel: scales the points' coordinates.
        level_scale=summary["source_shape"][1] / full_width,
        pixel_size_um=params["pixel_size_um"] * params["downsample"],
        metadata_pixel_size_um=None,  # a SpatialData store records no physical unit
        element=smk.params.element,
        fingerprint=smk.params.fingerprint,  # content of the image element
    )
    log.info("image of section %s: %s", params["name"], json.dumps(summary))
    with atomic_path(smk.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
