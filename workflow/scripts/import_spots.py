"""Rule import_spots: a section's spot table in any supported format -> canonical pixels.

Reads the vendor table, maps it onto the image as read, checks it against that image and the
genes, crops it to the section's region and scales it by the downsampling: the result is in
pixels of ``results/sections/{section}/image.tif``, as every later rule expects.
"""

import json

import pandas as pd

from txmorph.inputs import check_spots
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule
from txmorph.section import crop_spots, spot_options
from txmorph.vendors import read_spot_table


def main(smk, log):
    params, genes = smk.params.section, smk.params.genes
    image_info = json.loads(open(smk.input.image_info).read())
    table = read_spot_table(smk.input.spots, spot_options(params, image_info["level_scale"]))
    log.info("%s", table.description)
    for reason, count in table.filtered.items():
        log.info("dropped %d spots: %s", count, reason.replace("_", " "))
    spots, outside = check_spots(table.spots, image_info["source_shape"], genes, smk.input.spots,
                                 outside=params["spots_outside_image"])
    if outside:
        log.warning("dropped %d spots outside the image", outside)
    spots, outside_region = crop_spots(spots, params.get("region"), params["downsample"])
    if outside_region:
        log.info("dropped %d spots outside the section's region %s", outside_region,
                 params["region"])
    spots, _ = check_spots(spots, image_info["shape"], genes, smk.input.spots)
    counts = spots["gene"].value_counts()
    summary = {
        "section": params["name"],
        "spots": smk.input.spots,
        "format": params["spots_format"],
        "spots_total": int(len(spots)),
        "spots_per_gene": {g: int(counts.get(g, 0)) for g in genes},
        "genes_in_table": int(len(counts)),
        "filtered": {**table.filtered, "outside_image": outside, "outside_region": outside_region},
    }
    log.info("spots of section %s: %s", params["name"], json.dumps(summary))
    frame = pd.DataFrame({"gene": spots["gene"].astype(str), "x": spots["x"], "y": spots["y"]})
    with atomic_path(smk.output.spots) as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_path(smk.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
