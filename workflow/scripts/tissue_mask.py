"""Rule tissue_mask: the tissue the pipeline uses, from the transcripts (default) or DAPI."""

from txmorph.io.canonical import read_mask, read_spots
from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.tissue import section_tissue


def main(smk, log):
    params = smk.params
    dapi = read_mask(smk.input.dapi)
    xy = None  # no spots input: the tissue comes from DAPI (tissue_spots_input)
    if smk.input.get("spots"):
        xy = read_spots(smk.input.spots, columns=["x", "y"])[["x", "y"]].to_numpy()
    mask = section_tissue(params.source, dapi, xy, params.section["pixel_size_um"],
                          gap_um=params.gap_um, min_area_um2=params.min_area_um2, log=log.info)
    write_label_tiff(smk.output[0], mask)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
