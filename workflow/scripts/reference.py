"""Rule reference: each class's threshold on its truth.quantity (spots per µm², or share of local
transcripts), fitted once on the pooled training sections (txmorph.truth.fit_thresholds), and
the training pixels per class."""

import json
import math
from pathlib import Path

import numpy as np

from txmorph.blocks import restrict_labels, section_area
from txmorph.classes import class_names
from txmorph.errors import InputError
from txmorph.io.canonical import read_mask, read_spots, spots_by_class
from txmorph.niches import niche_labels
from txmorph.outputs import atomic_path
from txmorph.reference import make_reference, without_sparse_classes, write_reference
from txmorph.scripting import run_rule
from txmorph.truth import fit_thresholds, truth_labels


def niche_reference(smk, log):
    """niches: K: no thresholds to fit (the niche map partitions the tissue); the training
    pixels per niche (the chance prediction) and the niches' names."""
    settings, groups = smk.params.settings, smk.params.groups
    names = class_names(groups)
    summary = json.loads(Path(smk.input.niches[0]).read_text())
    pixels = np.zeros(len(names), dtype=np.int64)
    spot_counts = dict.fromkeys(groups, 0)
    for index, section in enumerate(smk.params.sections):
        spots = read_spots(smk.input.spots[index])
        by_class = spots_by_class(spots, groups)
        for name, xy in by_class.items():
            spot_counts[name] += len(xy)
        labels = niche_labels(read_mask(smk.input.masks[index]), by_class,
                              settings["sigma_um"] / section["pixel_size_um"])
        labels = restrict_labels(labels, section_area(labels.shape, section.get("blocks")))
        pixels += np.bincount(labels.ravel(), minlength=len(names))[: len(names)]
    class_pixels = dict(zip(names, pixels.tolist()))
    total = max(1, sum(spot_counts.values()))
    shares = {name: count / total for name, count in spot_counts.items()}
    log.info("niches %s; training pixels per class %s",
             [entry["name"] for entry in summary["classes"].values()], class_pixels)
    reference = make_reference(groups, dict.fromkeys(groups, math.inf), shares, settings,
                               class_pixels, [s["name"] for s in smk.params.sections],
                               niches=summary["classes"])
    with atomic_path(smk.output[0]) as tmp:
        write_reference(tmp, reference)


def main(smk, log):
    if smk.params.niches:
        return niche_reference(smk, log)
    settings = smk.params.settings
    groups = smk.params.groups
    names = class_names(groups)
    fitted, areas, unsupported = [], [], {name: [] for name in groups}
    for index, section in enumerate(smk.params.sections):
        spots = read_spots(smk.input.spots[index])
        # A class too sparse in this section for the reference rule (its checks) adds no
        # evidence of where the class is: its spots are left out of the fit here.
        checks = json.loads(Path(smk.input.checks[index]).read_text())
        by_class, sparse = without_sparse_classes(spots_by_class(spots, groups), checks)
        for name in sparse:
            facts = checks["genes"].get(name, {})
            log.warning("section %s: class %s too sparse for a region (%s spots, at most %s in a "
                        "2-sigma disk); not learnt from this section", section["name"], name,
                        facts.get("spots", 0), facts.get("densest_disk_spots", 0))
            unsupported[name].append(f"{section['name']}: {facts.get('spots', 0)} spots, at "
                                     f"most {facts.get('densest_disk_spots', 0)} in a disk")
        mask = read_mask(smk.input.masks[index])
        fitted.append((mask, by_class, spots[["x", "y"]].to_numpy(np.float64),
                       settings["sigma_um"] / section["pixel_size_um"], section["pixel_size_um"]))
        # A section of blocks (txmorph.blocks): only its blocks' pixels are fitted and counted.
        areas.append(section_area(mask.shape, section.get("blocks")))
    for name, where in unsupported.items():
        if len(where) == len(smk.params.sections):
            raise InputError(
                f"class '{name}' cannot be learnt: no training section holds enough of its "
                f"spots to define a region ({'; '.join(where)}; a region needs "
                f"truth.min_spots_per_region = {smk.params.min_spots_per_region} spots within "
                f"a {2 * settings['sigma_um']:g} µm radius disk, 2 x truth.sigma_um). Choose "
                "genes with more spots (see the gene_candidates target), add training "
                "sections that express it, or lower truth.min_spots_per_region.")
    thresholds, shares = fit_thresholds(fitted, settings["rule"], settings["enrichment"],
                                        settings["quantity"], areas=areas)
    # The training sections' labels by these thresholds: their most frequent class is the
    # image-blind chance prediction of rule dice.
    pixels = np.zeros(len(names), dtype=np.int64)
    for (mask, by_class, all_xy, sigma_px, pixel_size_um), area in zip(fitted, areas):
        labels = restrict_labels(truth_labels(mask, by_class, all_xy, sigma_px, thresholds,
                                              quantity=settings["quantity"],
                                              pixel_size_um=pixel_size_um), area)
        pixels += np.bincount(labels.ravel(), minlength=len(names))[: len(names)]
    class_pixels = dict(zip(names, pixels.tolist()))
    log.info("%s thresholds (%s rule, sigma %.3g µm) fitted on %s: %s; training shares %s; "
             "training pixels per class %s", settings["quantity"], settings["rule"],
             settings["sigma_um"],
             [s["name"] for s in smk.params.sections], thresholds, shares, class_pixels)
    for name, threshold in thresholds.items():
        if not np.isfinite(threshold):
            log.warning("class %s: no contrast in the training sections, so no region anywhere",
                        name)
    reference = make_reference(groups, thresholds, shares, settings, class_pixels,
                               [s["name"] for s in smk.params.sections])
    with atomic_path(smk.output[0]) as tmp:
        write_reference(tmp, reference)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
