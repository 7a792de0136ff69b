"""Rule export_spatialdata: one section's image, maps, labels, reference and Dice as a
SpatialData .zarr (``txmorph.spatialdata_io.build_spatialdata``), for napari-spatialdata and
the scverse tools."""

import dask
import pandas as pd

from txmorph.io.canonical import lazy_image, read_labels
from txmorph.mapsio import read_probability_map
from txmorph.metrics import label_map
from txmorph.scripting import run_rule
from txmorph.spatialdata_io import SectionResults, build_spatialdata, write_spatialdata


def main(smk, log):
    dask.config.set(num_workers=smk.threads)  # the rule's threads, not every core
    params = smk.params
    # The canonical image, read and written chunk by chunk: never loaded whole.
    image = lazy_image(smk.input.image, chunks=4096)
    maps = {}
    for model, path in zip(params.models, smk.input.probmaps):
        prob_map = read_probability_map(path)
        maps[model] = (prob_map.probabilities, prob_map.classes, prob_map.stride)
    ensemble = read_probability_map(smk.input.probmaps[params.models.index("ensemble")])
    # The labels that are scored: the same arg-max (and context smoothing) as rule dice.
    context_px = params.context_um / (params.pixel_size_um * ensemble.stride)
    labels = label_map(ensemble.probabilities, ensemble.classes, params.classes, context_px)
    results = SectionResults(
        name=smk.wildcards.section, image=image, pixel_size_um=params.pixel_size_um,
        classes=list(params.classes), maps=maps, labels=labels, labels_stride=ensemble.stride,
        reference=read_labels(smk.input.truth) if hasattr(smk.input, "truth") else None,
        dice=pd.read_csv(smk.input.dice) if hasattr(smk.input, "dice") else None,
    )
    store = build_spatialdata(results)
    log.info("%s", store)
    write_spatialdata(store, smk.output[0])
    log.info("wrote %s", smk.output[0])


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
