"""Rule truth: a section's reference regions, by the class thresholds fitted on the training
sections (rule reference), applied unchanged."""

import json
from pathlib import Path

import numpy as np

from txmorph.blocks import OUTSIDE_AREA, restrict_labels, section_area
from txmorph.classes import class_names
from txmorph.io.canonical import read_mask, read_spots, spots_by_class
from txmorph.outputs import write_label_tiff
from txmorph.niches import niche_labels
from txmorph.reference import (class_labels, read_reference, thresholds_of,
                               without_sparse_classes)
from txmorph.scripting import run_rule
from txmorph.truth import truth_labels


def main(smk, log):
    params = smk.params.section
    mask = read_mask(smk.input.mask)
    reference = read_reference(smk.input.reference)
    # Checked on import against the image (same grid as the mask) and the configured genes.
    spots = read_spots(smk.input.spots)
    settings = reference["settings"]
    sigma_px = settings["sigma_um"] / params["pixel_size_um"]
    # A class too sparse for the reference rule (checks.json) gets no region: it is reported
    # as not evaluable rather than scored against a region drawn around a handful of spots.
    by_class, sparse = without_sparse_classes(spots_by_class(spots, smk.params.groups),
                                              json.loads(Path(smk.input.checks).read_text()))
    for name in sparse:
        log.warning("%s: no reference region (too sparse, see the section's checks)", name)
    if smk.params.niches:
        # The niche map: a partition of the tissue, no thresholds (txmorph.niches).
        labels = niche_labels(mask, by_class, sigma_px)
        log.info("niche map (sigma %.1f px): %s", sigma_px, class_labels(
            reference, list(smk.params.groups)))
        thresholds = {}
    else:
        thresholds = thresholds_of(reference)
        labels = truth_labels(mask, by_class, spots[["x", "y"]].to_numpy(np.float64), sigma_px,
                              thresholds, quantity=settings["quantity"],
                              pixel_size_um=params["pixel_size_um"])
    # A section of blocks (txmorph.blocks): the regions are drawn from all the image's spots,
    # then the pixels outside its blocks are marked as not the section's.
    area = section_area(labels.shape, params.get("blocks"))
    labels = restrict_labels(labels, area)
    if area is not None:
        log.info("blocks %s: %.1f%% of the image is this section's", params["blocks"],
                 100 * area.mean())
    inside = max(1, int((labels != OUTSIDE_AREA).sum()))
    fractions = {
        name: round(float((labels == index).sum() / inside), 4)
        for index, name in enumerate(class_names(smk.params.groups))
    }
    log.info("reference regions (sigma %.1f px; %s thresholds %s fitted on %s): area "
             "fractions %s", sigma_px, "niche" if smk.params.niches else settings["quantity"],
             {name: round(value, 5) for name, value in thresholds.items()},
             ", ".join(reference["training_sections"]), fractions)
    write_label_tiff(smk.output[0], labels)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
