"""Rule baseline_probmap: the baseline's class probabilities over a whole test section, in the
format of the CNNs' maps (txmorph.probmap.mapsio)."""

import h5py

from txmorph.baseline import load_model, paint_baseline, section_threshold
from txmorph.io.canonical import MappedImage
from txmorph.outputs import atomic_path
from txmorph.patches.intensity import intensity_range
from txmorph.probmap.grid import outputs_per_tile, probability_grid_shape
from txmorph.probmap.mapsio import BASELINE, create_probability_dataset
from txmorph.scripting import run_rule


def main(smk, log):
    image = MappedImage(smk.input.image)
    diameter = smk.params.nucleus_diameter_um / smk.params.pixel_size_um
    model = load_model(smk.input.model, nucleus_diameter_px=diameter)
    stride = int(smk.params.stride)
    grid = probability_grid_shape(image.shape, stride)
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    log.info("painting %s (%dx%d) with the baseline: stride %d, grid %s, features %s, "
             "windows %s, nucleus %.1f px, Otsu threshold %.3f", smk.input.image, *image.shape,
             stride, grid, model.settings.features, list(model.settings.windows), diameter,
             threshold)
    with atomic_path(smk.output[0]) as tmp, h5py.File(tmp, "w") as f:
        tile = outputs_per_tile(smk.params.tile_size, stride)
        out = create_probability_dataset(f, model.classes, grid, stride, model=BASELINE,
                                         chunk=(tile, tile))
        paint_baseline(image, model, intensity, threshold, stride, out,
                       tile_size=smk.params.tile_size, log=log.info)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
