"""Reading and writing probability-map HDF5 files (``results/probmaps/...``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np

from txmorph.outputs import atomic_path


@dataclass
class ProbabilityMap:
    probabilities: np.ndarray  # (C, H', W') float32
    classes: list[str]
    stride: int  # input pixels per output pixel
    patch_size: int  # 0 for an ensemble of several sizes


def read_probability_map(path: str | os.PathLike) -> ProbabilityMap:
    with h5py.File(path, "r") as f:
        return ProbabilityMap(
            probabilities=f["probabilities"][...],
            classes=[str(c) for c in f.attrs["classes"]],
            stride=int(f.attrs["stride"]),
            patch_size=int(f.attrs["patch_size"]),
        )


def write_probability_map(path: str | os.PathLike, prob_map: ProbabilityMap) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        dataset = f.create_dataset(
            "probabilities",
            data=prob_map.probabilities.astype(np.float32),
            chunks=True,
            compression="gzip",
            compression_opts=1,
        )
        for target in (f, dataset):
            target.attrs["classes"] = list(prob_map.classes)
            target.attrs["stride"] = int(prob_map.stride)
            target.attrs["patch_size"] = int(prob_map.patch_size)
