"""The HDF5 patch dataset: one file per patch size, the hand-over from sampling to training.

Layout (``results/patches/size{S}.h5``):

- ``images``  (N, S, S), the input image dtype, chunked one patch per chunk, gzip-compressed;
- ``labels``  (N,) int64, index into the ``classes`` attribute;
- ``centres`` (N, 2) int64, (row, col) in the section's pixels;
- ``section`` (N,) int64, index into the ``sections`` attribute;
- attributes: ``classes``, ``sections`` (names), ``section_intensity`` ((n_sections, 2) low/high
  intensity of each section, for normalisation), ``patch_size``, ``pixel_size`` (µm per
  pixel, per section), ``config`` (the producing config as JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from txmorph.outputs import atomic_path


@dataclass
class PatchSet:
    """Patches of one size from one or more sections, as stored in the HDF5 file.

    Parameters
    ----------
    images : np.ndarray
        (N, S, S) patches in the image's dtype.
    labels : np.ndarray
        (N,) class indices into ``classes``.
    centres : np.ndarray
        (N, 2) int64 (row, col) in the section's image.
    section : np.ndarray
        (N,) index into ``sections``.
    classes : list[str]
        The class names.
    sections : list[str]
        The training sections' names.
    section_intensity : np.ndarray
        (n_sections, 2) each section's (low, high) intensity range.
    pixel_size : np.ndarray
        (n_sections,) µm per pixel.
    patch_size : int
        S.
    config : dict
        The producing rule's settings.
    """

    images: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    section: np.ndarray
    classes: list[str]
    sections: list[str]
    section_intensity: np.ndarray  # (n_sections, 2)
    pixel_size: np.ndarray  # (n_sections,)
    patch_size: int
    config: dict


def write_patch_set(path: str | os.PathLike, patches: PatchSet) -> None:
    """Write ``patches`` to ``path`` atomically (a temporary name, renamed when complete).

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.
    patches : PatchSet
        What to write.
    """
    n, size = len(patches.labels), patches.patch_size
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(
            "images",
            data=patches.images,
            # One patch per chunk: training reads patches in random order.
            chunks=(1, size, size) if n else None,
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        f.create_dataset("labels", data=patches.labels.astype(np.int64))
        f.create_dataset("centres", data=patches.centres.astype(np.int64).reshape(n, 2))
        f.create_dataset("section", data=patches.section.astype(np.int64))
        f.attrs["classes"] = list(patches.classes)
        f.attrs["sections"] = list(patches.sections)
        f.attrs["section_intensity"] = np.asarray(patches.section_intensity, dtype=np.float64)
        f.attrs["pixel_size"] = np.asarray(patches.pixel_size, dtype=np.float64)
        f.attrs["patch_size"] = int(size)
        f.attrs["config"] = json.dumps(patches.config, sort_keys=True)


@dataclass
class PatchLabels:
    """A patch file without its images: each patch's class and where it was cut.

    Parameters
    ----------
    centres : np.ndarray
        (N, 2) int64 (row, col) in the section's image.
    labels : np.ndarray
        (N,) class indices into ``classes``.
    section : np.ndarray
        (N,) index into ``sections``.
    classes : list[str]
        The class names.
    sections : list[str]
        The training sections' names.
    """

    centres: np.ndarray
    labels: np.ndarray
    section: np.ndarray
    classes: list[str]
    sections: list[str]


def _read_labels(f: h5py.File) -> PatchLabels:
    """The labels, centres, sections and classes of an open patch file."""
    return PatchLabels(
        centres=f["centres"][...].reshape(-1, 2),
        labels=f["labels"][...],
        section=f["section"][...],
        classes=[str(c) for c in f.attrs["classes"]],
        sections=[str(s) for s in f.attrs["sections"]],
    )


def read_patch_labels(path: str | os.PathLike) -> PatchLabels:
    """The centres and labels of a patch file, without reading its images.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`write_patch_set`.

    Returns
    -------
    PatchLabels
        Centres, labels, sections and classes.
    """
    with h5py.File(path, "r") as f:
        return _read_labels(f)


def read_patch_set(path: str | os.PathLike) -> PatchSet:
    """Read a whole patch file into memory.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`write_patch_set`.

    Returns
    -------
    PatchSet
        Its contents.
    """
    with h5py.File(path, "r") as f:
        where = _read_labels(f)
        return PatchSet(
            images=f["images"][...],
            labels=where.labels,
            centres=where.centres,
            section=where.section,
            classes=where.classes,
            sections=where.sections,
            section_intensity=np.asarray(f.attrs["section_intensity"]).reshape(-1, 2),
            pixel_size=np.asarray(f.attrs["pixel_size"]).reshape(-1),
            patch_size=int(f.attrs["patch_size"]),
            config=json.loads(f.attrs["config"]),
        )


def concatenate(parts: Sequence[PatchSet]) -> PatchSet:
    """Join per-section patch sets of the same size and classes into one.

    Parameters
    ----------
    parts : Sequence[PatchSet]
        One set per section, in order; other classes or sizes raise ``ValueError``.

    Returns
    -------
    PatchSet
        The patches of all parts, sections renumbered.
    """
    first = parts[0]
    for part in parts[1:]:
        if part.classes != first.classes or part.patch_size != first.patch_size:
            raise ValueError("patch sets differ in classes or patch size")
    offsets = np.cumsum([0] + [len(p.sections) for p in parts[:-1]])
    return PatchSet(
        images=np.concatenate([p.images for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        centres=np.concatenate([p.centres for p in parts]),
        section=np.concatenate([p.section + off for p, off in zip(parts, offsets)]),
        classes=first.classes,
        sections=[s for p in parts for s in p.sections],
        section_intensity=np.concatenate([p.section_intensity for p in parts]),
        pixel_size=np.concatenate([p.pixel_size for p in parts]),
        patch_size=first.patch_size,
        config=first.config,
    )
