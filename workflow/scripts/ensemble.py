"""Rule ensemble: the mean of every patch size's probability map, on the finest grid."""

import json

import h5py

from txmorph.outputs import atomic_path
from txmorph.probmap.mapsio import ENSEMBLE, create_probability_dataset
from txmorph.probmap.paint import ensemble_streamed
from txmorph.scripting import run_rule

BLOCK = (256, 1024)  # rows, columns written at a time: one HDF5 chunk per class


def main(smk, log):
    handles = [h5py.File(path, "r") for path in smk.input.maps]
    try:
        classes = [str(c) for c in handles[0].attrs["classes"]]
        for path, handle in zip(smk.input.maps, handles):
            if [str(c) for c in handle.attrs["classes"]] != classes:
                raise ValueError(f"class lists differ between probability maps: {path}")
        maps = [(h["probabilities"], int(h.attrs["stride"])) for h in handles]
        finest = min(maps, key=lambda m: m[1])
        stride, grid = finest[1], finest[0].shape[1:]
        weights = None
        if smk.input.weights:
            with open(smk.input.weights) as handle:
                fitted = json.load(handle)["weights"]
            weights = [fitted[str(size)] for size in smk.params.sizes]
        log.info("averaging %d maps on the stride-%d grid %s, band by band, weights %s",
                 len(maps), stride, grid, weights or "equal")
        with atomic_path(smk.output[0]) as tmp, h5py.File(tmp, "w") as f:
            out = create_probability_dataset(f, classes, grid, stride, model=ENSEMBLE,
                                             chunk=BLOCK)
            ensemble_streamed(maps, out, stride, rows_per_band=BLOCK[0], cols_per_block=BLOCK[1],
                              map_weights=weights)
    finally:
        for handle in handles:
            handle.close()


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
