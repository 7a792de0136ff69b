"""Rule gene_candidates: which genes or marker sets to put in `genes`, checked against the
configured settings and ranked by a DAPI hold-out probe (txmorph.genes.choice), and which
`niches: K` instead (txmorph.genes.niche_choice), with a figure and a ready-to-paste `genes:`
block (or `niches: K` when no pair is usable)."""

import datetime
import time

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.genes.choice import TABLE_COLUMNS, Choice, Section, Settings, choose_genes, probe_grids
from txmorph.genes.niche_choice import NICHE_KS, candidate_table, choose_niches
from txmorph.genes.report import no_pair_advice, plot_choice, yaml_snippet
from txmorph.io.canonical import read_image, read_image_info, read_mask, read_spots
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule
from txmorph.tissue import section_tissue


def main(smk, log):
    start = time.perf_counter()
    sections, images = [], {}
    for index, params in enumerate(smk.params.sections):
        image_info = read_image_info(smk.input.image_info[index])
        spots = read_spots(smk.input.spots[index])  # every gene of the table, not only `genes`
        dapi = read_mask(smk.input.masks[index])
        tissue = section_tissue(  # the mask rule tissue_mask makes
            smk.params.tissue["source"], dapi, spots[["x", "y"]].to_numpy(np.float64),
            image_info["pixel_size_um"], gap_um=smk.params.tissue["gap_um"],
            min_area_um2=smk.params.tissue["min_area_um2"])
        images[params["name"]] = read_image(smk.input.images[index])
        sections.append(Section(
            name=params["name"], role=smk.params.roles[index], tissue=tissue, dapi=dapi,
            spots=spots, pixel_size_um=image_info["pixel_size_um"],
            image=images[params["name"]] if smk.params.roles[index] == "train" else None))
    read = time.perf_counter() - start
    settings = Settings(**smk.params.settings)
    probes = probe_grids([s for s in sections if s.role == "train"], settings)
    too_few = ""
    try:
        choice = choose_genes(sections, settings, log=log.info, probes=probes)
    except InputError as error:  # fewer than two candidate classes: niches may still run
        too_few = str(error)
        choice = Choice(table=pd.DataFrame(columns=TABLE_COLUMNS), candidates={}, best=None)
    chosen = time.perf_counter()
    niches = choose_niches(sections, settings, NICHE_KS, probes=probes, log=log.info)
    niche_time = time.perf_counter() - chosen
    log.info("niches: K (expression niches in place of genes, probed as the pairs are), "
             "%.1f s:\n%s", niche_time,
             niches.table[["niches", "usable", "probe_score", "probe_score_fold1",
                           "probe_score_fold2", "probe_dice", "niche_names"]].to_string(
                               index=False))
    table = choice.table
    shown = ["gene_a", "gene_b", "usable", "probe_score", "probe_score_fold1",
             "probe_score_fold2", "probe_dice", "probe_dice_a", "probe_dice_b", "overlap_dice",
             "spots_a", "spots_b"]
    log.info("best pairs (probe: hold-out Dice of the DAPI baseline on the training sections, "
             "corrected for chance, per fold; score: the worse fold):\n%s",
             table[shown].head(10).to_string(index=False))
    for name, genes in choice.candidates.items():
        if len(genes) > 1 and name in set(table.head(10)[["gene_a", "gene_b"]].values.ravel()):
            log.info("%s: %s", name, " ".join(genes))
    log.info("%d pairs of %d candidates (%d marker sets): %d usable, all probed, %d with both "
             "classes scored; %.1f s reading, %.1f s choosing (%.1f s of it the niches)",
             len(table),
             len(choice.candidates), sum(len(g) > 1 for g in choice.candidates.values()),
             int(table["usable"].sum()), int(table["probe_score"].notna().sum()), read,
             time.perf_counter() - start - read, niche_time)
    # No usable pair is a finding, not a failure: the outputs say what blocked the pairs and
    # which setting to change, and the rule succeeds so that they are written.
    advice = too_few or no_pair_advice(table, settings)
    if advice:
        log.warning("%s", advice)
    with atomic_path(smk.output.table) as tmp:
        candidate_table(table, niches.table).to_csv(tmp, index=False)
    header = (f"gene_candidates, {datetime.date.today().isoformat()}: the best of "
              f"{len(table)} candidate pairs and of niches: K for K in "
              f"{', '.join(map(str, NICHE_KS))} ({smk.output.table})")
    with atomic_path(smk.output.snippet) as tmp:
        tmp.write_text(yaml_snippet(choice, header, advice, niches))
    log.info("best choice (%s):\n%s", smk.output.snippet,
             yaml_snippet(choice, advice=advice, niches=niches))
    with atomic_path(smk.output.figure) as tmp:
        plot_choice(images, sections, choice, str(tmp), advice, niches)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
