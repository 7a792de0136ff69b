"""Rule argmax_labels: the ensemble's arg-max class labels of one mapped section, as a label
image (test and prediction-only sections alike)."""

import numpy as np

from txmorph.evaluate.metrics import label_map
from txmorph.probmap.mapsio import LabelMap, read_probability_map, write_label_map
from txmorph.scripting import run_rule


def main(smk, log):
    prob_map = read_probability_map(smk.input.probmap)
    classes = list(smk.params.classes)
    # The same labels as Dice and the figures: the same context smoothing, classes by name.
    context_px = smk.params.context_um / (smk.params.pixel_size_um * prob_map.stride)
    labels = label_map(prob_map.probabilities, prob_map.classes, classes, context_px)
    write_label_map(smk.output[0], LabelMap(labels.astype(np.uint8), classes, prob_map.stride,
                                            smk.params.model))
    counts = np.bincount(labels.ravel(), minlength=len(classes))
    log.info("labels %s (stride %d): %s", labels.shape, prob_map.stride,
             {name: f"{100 * n / labels.size:.1f}%" for name, n in zip(classes, counts)})


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
