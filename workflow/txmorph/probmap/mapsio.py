"""Reading and writing probability-map HDF5 files (``results/probmaps/{section}/{model}.h5``).

A map file holds ``probabilities`` (C, H', W') float32 and, on the file and on the dataset, the
attributes ``classes``, ``stride`` and ``model``: which map it is, ``size{S}`` (the CNN of patch
size S, which also has ``patch_size`` = S), ``ensemble`` or ``baseline``. Files written before
``model`` existed marked the maps that are not one CNN by ``patch_size`` 0; they still read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from txmorph.outputs import atomic_path

ENSEMBLE = "ensemble"  # the mean of every patch size's map
BASELINE = "baseline"  # the non-CNN baseline (txmorph.baseline)


def cnn_model(patch_size: int) -> str:
    """The name of the CNN of one patch size, as in file names: ``size64``.

    Parameters
    ----------
    patch_size : int
        The CNN's patch size S in pixels.

    Returns
    -------
    str
        ``size{S}``.
    """
    return f"size{int(patch_size)}"


@dataclass
class ProbabilityMap:
    """One model's class probabilities over a section, on the grid of ``stride`` (CONVENTIONS).

    Parameters
    ----------
    probabilities : np.ndarray
        (C, H', W') float32, channels in ``classes`` order.
    classes : list[str]
        The model's class names.
    stride : int
        Input pixels per output pixel.
    model : str
        ``size{S}``, ``ensemble`` or ``baseline``.
    patch_size : int or None
        The CNN's patch size; None for the ensemble and the baseline.
    """

    probabilities: np.ndarray
    classes: list[str]
    stride: int
    model: str
    patch_size: int | None


def read_probability_map(path: str | os.PathLike) -> ProbabilityMap:
    """Read a map written by :func:`create_probability_dataset` (or by an earlier version).

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.

    Returns
    -------
    ProbabilityMap
        The probabilities, loaded whole, and what they are.
    """
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        patch_size = int(attrs["patch_size"]) if "patch_size" in attrs else None
        if "model" in attrs:
            model = str(attrs["model"])
        elif patch_size:
            model = cnn_model(patch_size)
        else:  # written before the marker: patch_size 0 meant "not one CNN"
            model = BASELINE if Path(path).stem == BASELINE else ENSEMBLE
            patch_size = None
        return ProbabilityMap(
            probabilities=f["probabilities"][...],
            classes=[str(c) for c in attrs["classes"]],
            stride=int(attrs["stride"]),
            model=model,
            patch_size=patch_size,
        )


def create_probability_dataset(
    handle: h5py.File, classes: Sequence[str], grid: Sequence[int], stride: int, *,
    model: str, patch_size: int | None = None, chunk: tuple[int, int] | None = None,
) -> h5py.Dataset:
    """An empty (C, H', W') float32 ``probabilities`` map in ``handle``, with its attributes.

    Parameters
    ----------
    handle : h5py.File
        The open, writable file.
    classes : Sequence[str]
        The model's class names, one per channel.
    grid : Sequence[int]
        (H', W'), from ``txmorph.probmap.grid.probability_grid_shape``.
    stride : int
        Input pixels per output pixel.
    model : str
        ``size{S}`` (:func:`cnn_model`), :data:`ENSEMBLE`, :data:`BASELINE` or another
        model family's name.
    patch_size : int or None
        The CNN's patch size, required for a CNN's map (``size{S}``); None for the others.
    chunk : tuple[int, int] or None
        The block (rows, cols) a writer fills at a time, so that every HDF5 chunk is
        compressed once (default: chosen by h5py).

    Returns
    -------
    h5py.Dataset
        The dataset to fill.
    """
    is_cnn = re.fullmatch(r"size\d+", model) is not None
    if not model or is_cnn != (patch_size is not None) or \
            (patch_size is not None and model != cnn_model(patch_size)):
        raise ValueError(f"model {model!r} with patch_size {patch_size}: a CNN's map is "
                         f"size{{S}} with patch_size S; other maps ({ENSEMBLE}, {BASELINE}) "
                         "have a name and no patch size")
    shape = (len(classes), int(grid[0]), int(grid[1]))
    chunks = True if chunk is None else (1, min(chunk[0], shape[1]), min(chunk[1], shape[2]))
    dataset = handle.create_dataset("probabilities", shape=shape, dtype="float32",
                                    chunks=chunks, compression="gzip", compression_opts=1)
    for target in (handle, dataset):
        target.attrs["classes"] = list(classes)
        target.attrs["stride"] = int(stride)
        target.attrs["model"] = model
        if patch_size is not None:
            target.attrs["patch_size"] = int(patch_size)
    return dataset


@dataclass
class LabelMap:
    """Arg-max class labels on a probability map's grid (``results/labels/{section}.tif``).

    Parameters
    ----------
    labels : np.ndarray
        (H', W') uint8: index into ``classes``.
    classes : list[str]
        The class names the labels index.
    stride : int
        Input pixels per label pixel (CONVENTIONS: pixel (i, j) <-> i*s + s//2).
    model : str
        The map the labels are the arg-max of (``ensemble``).
    """

    labels: np.ndarray  # (H', W') uint8: index into ``classes``
    classes: list[str]
    stride: int  # input pixels per label pixel (CONVENTIONS: pixel (i, j) <-> i*s + s//2)
    model: str


def write_label_map(path: str | os.PathLike, label_map: LabelMap) -> None:
    """Write a compressed uint8 TIFF whose description is JSON: classes, stride and model, so that
    the file says what its values mean and where its pixels lie on the image. Atomic.

    Parameters
    ----------
    path : str or os.PathLike
        The TIFF to write.
    label_map : LabelMap
        The labels and what they mean; at most 256 classes.
    """
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
    """Read a label image written by :func:`write_label_map`.

    Parameters
    ----------
    path : str or os.PathLike
        The TIFF.

    Returns
    -------
    LabelMap
        The labels with their classes, stride and model from the TIFF description.
    """
    import json

    import tifffile

    with tifffile.TiffFile(path) as tif:
        info = json.loads(tif.pages[0].description)
        labels = tif.pages[0].asarray()
    return LabelMap(labels=labels, classes=list(info["classes"]), stride=int(info["stride"]),
                    model=str(info["model"]))
