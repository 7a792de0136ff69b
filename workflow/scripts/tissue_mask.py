"""Rule tissue_mask: tissue vs background, from the transcripts (default) or the DAPI image.

Writes the mask the pipeline uses and the DAPI mask, which the input checks compare with the
spots (a mask made from the spots themselves could not reveal spots at the wrong scale).
"""

import pandas as pd

from txmorph.images import read_image
from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.tissue import tissue_from_spots, tissue_mask


def main(smk, log):
    params = smk.params
    pixel_size_um = params.section["pixel_size_um"]
    image = read_image(smk.input.image)
    dapi = tissue_mask(image, pixel_size_um=pixel_size_um, smoothing_um=params.smoothing_um,
                       min_area_um2=params.min_area_um2)
    log.info("DAPI tissue covers %.1f%% of the image", 100 * dapi.mean())
    if params.source == "dapi" or not smk.input.get("spots"):
        mask = dapi
    else:
        spots = pd.read_parquet(smk.input.spots, columns=["x", "y"])
        mask = tissue_from_spots(spots[["x", "y"]].to_numpy(), image.shape, pixel_size_um,
                                 spot_sigma_um=params.spot_sigma_um,
                                 min_relative_density=params.min_relative_density,
                                 min_area_um2=params.min_area_um2)
        log.info("tissue from %d spots covers %.1f%% of the image (bandwidth %.3g µm)",
                 len(spots), 100 * mask.mean(), params.spot_sigma_um)
        if params.source == "spots_and_dapi":
            mask &= dapi
            log.info("where DAPI agrees: %.1f%% of the image", 100 * mask.mean())
    write_label_tiff(smk.output.dapi, dapi)
    write_label_tiff(smk.output.mask, mask)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
