"""Reading and writing probability-map HDF5 files (``results/probmaps/...``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def create_probability_dataset(
    handle: h5py.File, classes: Sequence[str], grid: Sequence[int], stride: int,
    patch_size: int, chunk: tuple[int, int] | None = None,
) -> h5py.Dataset:
    """An empty (C, H', W') float32 ``probabilities`` map in ``handle``, with its attributes.

    ``chunk`` (rows, cols) is the block a writer fills at a time, so that every HDF5 chunk is
    compressed once (default: chosen by h5py). ``patch_size`` is 0 for an ensemble.
    """
    shape = (len(classes), int(grid[0]), int(grid[1]))
    chunks = True if chunk is None else (1, min(chunk[0], shape[1]), min(chunk[1], shape[2]))
    dataset = handle.create_dataset("probabilities", shape=shape, dtype="float32",
                                    chunks=chunks, compression="gzip", compression_opts=1)
    for target in (handle, dataset):
        target.attrs["classes"] = list(classes)
        target.attrs["stride"] = int(stride)
        target.attrs["patch_size"] = int(patch_size)
    return dataset


@dataclass
class LabelMap:
    """Arg-max class labels on a probability map's grid (``results/labels/{section}.tif``)."""

    labels: np.ndarray  # (H', W') uint8: index into ``classes``
    classes: list[str]
    stride: int  # input pixels per label pixel (CONVENTIONS: pixel (i, j) <-> i*s + s//2)
    model: str


def write_label_map(path: str | os.PathLike, label_map: LabelMap) -> None:
    """A compressed uint8 TIFF whose description is JSON: classes, stride and model, so that
    the file says what its values mean and where its pixels lie on the image."""
    import json

    import tifffile

    if len(label_map.classes) > 256:
        raise ValueError(f"{len(label_map.classes)} classes do not fit a uint8 label image")
    description = json.dumps({"classes": list(label_map.classes), "stride": int(label_map.stride),
                              "model": label_map.model})
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(label_map.labels, np.uint8), compression="zlib",
                         description=description, metadata=None)


def read_label_map(path: str | os.PathLike) -> LabelMap:
    import json

    import tifffile

    with tifffile.TiffFile(path) as tif:
        info = json.loads(tif.pages[0].description)
        labels = tif.pages[0].asarray()
    return LabelMap(labels=labels, classes=list(info["classes"]), stride=int(info["stride"]),
                    model=str(info["model"]))
