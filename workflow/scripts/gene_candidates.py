"""Rule gene_candidates: rank gene pairs for `genes` in config.yaml, with a figure."""

import json
from pathlib import Path

import numpy as np
import tifffile

from txmorph.genechoice import plot_gene_pair, rank_gene_pairs
from txmorph.images import read_image
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule
from txmorph.section import import_spots
from txmorph.tissue import tissue_from_spots


def main(smk, log):
    names = [params["name"] for params in smk.params.sections]
    sections, images, all_spots, sigmas = [], {}, {}, []
    for index, params in enumerate(smk.params.sections):
        image_info = json.loads(Path(smk.input.image_info[index]).read_text())
        # No genes to check yet: that is what this rule is for.
        spots, _ = import_spots(smk.input.spots[index], params, image_info, (), log.info)
        mask = tifffile.imread(smk.input.masks[index]).astype(bool)
        if smk.params.tissue["source"] != "dapi":  # as rule tissue_mask does
            tissue = tissue_from_spots(
                spots[["x", "y"]].to_numpy(np.float64), mask.shape, image_info["pixel_size_um"],
                spot_sigma_um=smk.params.tissue["spot_sigma_um"],
                min_relative_density=smk.params.tissue["min_relative_density"],
                min_area_um2=smk.params.tissue["min_area_um2"])
            mask = tissue & mask if smk.params.tissue["source"] == "spots_and_dapi" else tissue
        sections.append((mask, spots))
        images[params["name"]] = read_image(smk.input.images[index])
        all_spots[params["name"]] = spots
        sigmas.append(smk.params.sigma_um / image_info["pixel_size_um"])
    table, regions = rank_gene_pairs(sections, sigmas, smk.params.min_spots,
                                     rule=smk.params.rule, enrichment=smk.params.enrichment)
    log.info("best gene pairs:\n%s", table.head(10).to_string(index=False))
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, index=False)
    best = (table.iloc[0]["gene_a"], table.iloc[0]["gene_b"])
    with atomic_path(smk.output.figure) as tmp:
        plot_gene_pair(images, dict(zip(names, regions)), all_spots, best, table, str(tmp))


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
