"""Rule import_image: a section's nuclei image in any supported layout -> canonical 2-D TIFF.

Chooses the pyramid level, the DAPI channel and the z-projection, crops to the section's
region and downsamples, streaming strip by strip; writes an uncompressed TIFF that every
later rule memory-maps and reads tile by tile, and a JSON summary of what was done.
"""

from txmorph.io.images import open_image
from txmorph.io.imagewrite import import_section_image
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params.section
    options = dict(channel=params["channel"], z_projection=params["z_projection"])
    full_width = None
    if params["level"]:  # the full-resolution width, to scale pixel coordinates to this level
        with open_image(smk.input.image, level=0, **options) as full:
            full_width = full.shape[1]
    with open_image(smk.input.image, level=params["level"], **options) as source:
        full_width = full_width or source.shape[1]
        log.info("%s", source.description)
        if source.pixel_size_um and abs(source.pixel_size_um / params["pixel_size_um"] - 1) > 0.02:
            log.warning(
                "the image's metadata gives %.4g µm per pixel at level %d, config.yaml says "
                "pixel_size_um: %.4g; the config value is used", source.pixel_size_um,
                params["level"], params["pixel_size_um"])
        import_section_image(
            source, smk.output.image, smk.output.summary, params, full_width,
            extra=dict(metadata_pixel_size_um=source.pixel_size_um,
                       fingerprint=smk.params.fingerprint),  # content of the image file
            log=log.info)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
