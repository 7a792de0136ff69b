"""Rule probmap: class probabilities over a whole test section for one patch size."""

import h5py
import numpy as np
import torch

from txmorph.device import resolve_device
from txmorph.io.canonical import MappedImage, read_mask
from txmorph.outputs import atomic_path
from txmorph.patches.intensity import intensity_range
from txmorph.probmap.adapt import ADAPT_PATCHES, adapt_batchnorm, sample_patches
from txmorph.probmap.mapsio import cnn_model, create_probability_dataset
from txmorph.probmap.paint import outputs_per_tile, paint_probabilities, probability_grid_shape
from txmorph.scripting import run_rule
from txmorph.train.model import load_model


def main(smk, log):
    torch.set_num_threads(smk.threads)
    device = resolve_device(smk.params.device)
    model, metadata = load_model(smk.input.model, device=device)
    # Read window by window from the uncompressed canonical image: memory is one tile's.
    image = MappedImage(smk.input.image)
    stride = model.stride if smk.params.output_stride == "native" else int(smk.params.output_stride)
    grid = probability_grid_shape(image.shape, stride)
    classes = metadata["classes"]
    low, high = intensity_range(image)
    if smk.params.adapt_batchnorm:
        # AdaBN: the BatchNorm statistics of this section's own DAPI tissue patches.
        patches = sample_patches(image, read_mask(smk.input.dapi_mask), model.patch_size,
                                 ADAPT_PATCHES, low, high, np.random.default_rng(smk.params.seed))
        if len(patches):
            model = adapt_batchnorm(model, patches)
            log.info("BatchNorm statistics adapted to %d patches of this section", len(patches))
        else:
            log.warning("no DAPI tissue to adapt the BatchNorm statistics to: trained ones kept")
    log.info(
        "painting %s (%dx%d) with the size-%d model: stride %d, grid %s, device %s",
        smk.input.image, *image.shape, model.patch_size, stride, grid, device,
    )
    with atomic_path(smk.output[0]) as tmp, h5py.File(tmp, "w") as f:
        # One HDF5 chunk per tile: each tile write compresses its chunks exactly once.
        tile = outputs_per_tile(smk.params.tile_size, stride)
        probabilities = create_probability_dataset(
            f, classes, grid, stride, model=cnn_model(model.patch_size),
            patch_size=model.patch_size, chunk=(tile, tile))
        paint_probabilities(
            image, model, metadata, (low, high), probabilities,
            tile_size=smk.params.tile_size, device=device, log=log.info, output_stride=stride,
            tta=smk.params.tta,
        )


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
