"""Rule import_spatialdata_points: a points element of a SpatialData .zarr -> canonical spots.

The points are placed on the image element's pixels through a coordinate system both share
(``txmorph.io.spatialdata.read_points_on_image``), then checked, cropped and scaled exactly
as rule import_spots does (``txmorph.io.spots.fit_spots_to_image``).
"""

from txmorph.io.canonical import read_image_info
from txmorph.io.spatialdata import read_points_on_image
from txmorph.io.spots import fit_spots_to_image, write_section_spots
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params.section
    image_info = read_image_info(smk.input.image_info)
    placed = read_points_on_image(
        smk.params.store, smk.params.points_element, smk.params.image_store,
        smk.params.image_element, smk.params.coordinate_system, params["columns"]["gene"])
    log.info("%s", placed.description)
    spots = placed.spots
    if image_info["level_scale"] != 1:  # points are in full-resolution pixels of the element
        spots = spots.assign(x=spots["x"] * image_info["level_scale"],
                             y=spots["y"] * image_info["level_scale"])
    where = f"{smk.params.store} (points element '{smk.params.points_element}')"
    spots, summary = fit_spots_to_image(spots, {}, where, params, image_info, smk.params.genes,
                                        log.info)
    summary.update(element=smk.params.points_element, gene_column=placed.gene_column,
                   coordinate_system=placed.coordinate_system,
                   fingerprints=smk.params.fingerprint)
    write_section_spots(spots, summary, smk.output.spots, smk.output.summary, log.info)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
