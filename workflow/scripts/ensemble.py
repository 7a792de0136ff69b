"""Rule ensemble: the mean of every patch size's probability map, on the finest grid."""

import h5py

from txmorph.outputs import atomic_path
from txmorph.probmap import ensemble_streamed
from txmorph.scripting import run_rule


def main(smk, log):
    with h5py.File(smk.input.maps[0], "r") as first:
        classes = [str(c) for c in first.attrs["classes"]]
    handles = [h5py.File(path, "r") for path in smk.input.maps]
    try:
        for path, handle in zip(smk.input.maps, handles):
            if [str(c) for c in handle.attrs["classes"]] != classes:
                raise ValueError(f"class lists differ between probability maps: {path}")
        maps = [(h["probabilities"], int(h.attrs["stride"])) for h in handles]
        finest = min(maps, key=lambda m: m[1])
        stride, grid = finest[1], finest[0].shape[1:]
        log.info("averaging %d maps on the stride-%d grid %s, band by band", len(maps), stride, grid)
        with atomic_path(smk.output[0]) as tmp, h5py.File(tmp, "w") as f:
            rows = min(256, grid[0])
            out = f.create_dataset(
                "probabilities", shape=(len(classes), *grid), dtype="float32",
                chunks=(1, rows, min(1024, grid[1])), compression="gzip", compression_opts=1,
            )
            for target in (f, out):
                target.attrs["classes"] = classes
                target.attrs["stride"] = stride
                target.attrs["patch_size"] = 0
            ensemble_streamed(maps, out, stride, rows_per_band=rows)
    finally:
        for handle in handles:
            handle.close()


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
