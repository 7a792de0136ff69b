"""Rule baseline_train: the non-CNN baseline (txmorph.baseline) fitted on the CNNs' patch
centres and labels."""

from pathlib import Path

import numpy as np

from txmorph.baseline import (FeatureSettings, feature_names, features_at, fit_logistic,
                              save_model, section_threshold)
from txmorph.io.canonical import MappedImage
from txmorph.patches.intensity import intensity_range
from txmorph.patches.patchdata import read_patch_labels
from txmorph.scripting import run_rule


def main(smk, log):
    patches = read_patch_labels(smk.input.patches)
    images = {Path(path).parent.name: path for path in smk.input.images}
    windows, feature_set = tuple(smk.params.windows), smk.params.features
    names = feature_names(FeatureSettings(windows, 1.0, feature_set))
    features = np.empty((len(patches.labels), len(names)), np.float32)
    for index, name in enumerate(patches.sections):
        image = MappedImage(images[name])
        intensity = intensity_range(image)
        threshold = section_threshold(image, *intensity)
        diameter = smk.params.nucleus_diameter_um / smk.params.pixel_size_um[name]
        settings = FeatureSettings(windows, diameter, feature_set)
        chosen = patches.section == index
        features[chosen] = features_at(image, patches.centres[chosen], intensity, threshold,
                                       settings)
        log.info("section %s: %d centres, Otsu threshold %.3f (normalised), nucleus %.1f px",
                 name, chosen.sum(), threshold, diameter)
    # The stored diameter is a placeholder: painting sets the test section's own.
    model = fit_logistic(features, patches.labels, patches.classes,
                         FeatureSettings(windows, diameter, feature_set), l2=smk.params.l2)
    model.info["nucleus_diameter_um"] = smk.params.nucleus_diameter_um
    log.info("fitted on %d centres, %d features (set %s): training accuracy %.3f, "
             "%d iterations", model.info["samples"], features.shape[1], feature_set,
             model.info["train_accuracy"], model.info["iterations"])
    save_model(smk.output[0], model)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
