"""Rule dapi_mask: tissue vs background from the nuclei (DAPI) image alone.

Independent of the spots: the input checks compare it with them (a mask made from the spots
could not reveal spots at the wrong scale), and it is the tissue of sections without spots
or with ``tissue_mask.source: dapi``.
"""

from txmorph.io.canonical import read_image
from txmorph.outputs import write_label_tiff
from txmorph.scripting import run_rule
from txmorph.tissue import tissue_mask


def main(smk, log):
    image = read_image(smk.input.image)
    mask = tissue_mask(image, pixel_size_um=smk.params.section["pixel_size_um"],
                       smoothing_um=smk.params.smoothing_um,
                       min_area_um2=smk.params.min_area_um2)
    log.info("DAPI tissue covers %.1f%% of the image", 100 * mask.mean())
    write_label_tiff(smk.output[0], mask)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
