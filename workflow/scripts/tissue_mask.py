"""Rule tissue_mask: the tissue the pipeline uses, from the transcripts (default) or DAPI."""

from txmorph.io.canonical import read_mask, read_spots
from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.tissue import tissue_from_spots


def main(smk, log):
    params = smk.params
    dapi = read_mask(smk.input.dapi)
    if params.source == "dapi" or not smk.input.get("spots"):
        log.info("tissue from DAPI: %.1f%% of the image", 100 * dapi.mean())
        write_label_tiff(smk.output[0], dapi)
        return
    spots = read_spots(smk.input.spots, columns=["x", "y"])
    mask = tissue_from_spots(spots[["x", "y"]].to_numpy(), dapi.shape,
                             params.section["pixel_size_um"], gap_um=params.gap_um,
                             min_area_um2=params.min_area_um2)
    log.info("tissue from %d spots covers %.1f%% of the image (background: transcript-free "
             "gaps of %.3g µm); DAPI: %.1f%%", len(spots), 100 * mask.mean(), params.gap_um,
             100 * dapi.mean())
    if params.source == "spots_and_dapi":
        mask &= dapi
        log.info("where DAPI agrees: %.1f%% of the image", 100 * mask.mean())
    write_label_tiff(smk.output[0], mask)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
