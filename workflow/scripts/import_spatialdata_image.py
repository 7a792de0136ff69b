"""Rule import_spatialdata_image: an image element of a SpatialData .zarr -> canonical 2-D TIFF.

The same canonical image and summary as rule import_image (level, channel, z-projection,
region, downsampling applied by ``txmorph.io.imagewrite.write_canonical_image``), read
window by window from the store's (dask) image element.
"""

import dask

from txmorph.io.imagewrite import import_section_image
from txmorph.io.spatialdata import open_spatialdata_image
from txmorph.scripting import run_rule


def main(smk, log):
    dask.config.set(num_workers=smk.threads)  # the rule's threads, not every core
    params = smk.params.section
    source, full_width = open_spatialdata_image(
        smk.params.store, smk.params.element, level=params["level"], channel=params["channel"],
        z_projection=params["z_projection"])
    with source:
        log.info("%s", source.description)
        import_section_image(
            source, smk.output.image, smk.output.summary, params, full_width,
            extra=dict(metadata_pixel_size_um=None,  # a SpatialData store records no unit
                       element=smk.params.element,
                       fingerprint=smk.params.fingerprint),  # content of the image element
            log=log.info)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
