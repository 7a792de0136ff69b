"""Rule export_spatialdata: one section's image, maps, labels, reference and Dice as a
SpatialData .zarr (``txmorph.export.spatialdata.build_spatialdata``), for napari-spatialdata and
the scverse tools."""

import dask
import pandas as pd

from txmorph.io.canonical import lazy_image, read_labels
from txmorph.probmap.mapsio import read_label_map, read_probability_map
from txmorph.reference import class_labels, read_reference
from txmorph.scripting import run_rule
from txmorph.export.spatialdata import SectionResults, build_spatialdata, write_spatialdata


def main(smk, log):
    dask.config.set(num_workers=smk.threads)  # the rule's threads, not every core
    params = smk.params
    # The canonical image, read and written chunk by chunk: never loaded whole.
    image = lazy_image(smk.input.image, chunks=4096)
    maps = {}
    for model, path in zip(params.models, smk.input.probmaps):
        prob_map = read_probability_map(path)
        maps[model] = (prob_map.probabilities, prob_map.classes, prob_map.stride)
    # The label image of rule argmax_labels as it is, so that the two outputs never disagree.
    labels = read_label_map(smk.input.labels)
    if labels.classes != list(params.classes):
        raise ValueError(f"{smk.input.labels} has the classes {labels.classes}, this run "
                         f"{list(params.classes)}")
    results = SectionResults(
        name=smk.wildcards.section, image=image, pixel_size_um=params.pixel_size_um,
        classes=list(params.classes), maps=maps, labels=labels.labels,
        labels_stride=labels.stride,
        class_labels=class_labels(read_reference(smk.input.reference), params.classes),
        reference=read_labels(smk.input.truth) if hasattr(smk.input, "truth") else None,
        dice=pd.read_csv(smk.input.dice) if hasattr(smk.input, "dice") else None,
    )
    store = build_spatialdata(results)
    log.info("%s", store)
    write_spatialdata(store, smk.output[0])
    log.info("wrote %s", smk.output[0])


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
