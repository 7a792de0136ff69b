"""SpatialData out: one section's results written as a SpatialData ``.zarr`` store.

Only rule export_spatialdata (workflow/rules/spatialdata.smk) imports this module, and it
imports ``spatialdata`` inside the functions that need it, so the core pipeline runs without
it. The way in, a section read from a store, is ``txmorph.io.spatialdata``.

Pixel convention (spatialdata's, and txmorph's for spots): pixel ``i`` of an image covers the
intrinsic coordinates ``[i, i + 1)``, its centre is ``i + 0.5``. A probability map of stride
``s`` has its pixel ``i`` describe the patch centred at input pixel ``i*s + s//2``
(docs/CONVENTIONS.md), so its transform to the image is ``Scale(s)`` followed by
``Translation(s//2 + 0.5 - s/2)``: 0.5 for even strides, none for odd ones (``map_transform``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The coordinate system of the exported stores: pixels of the section's canonical image.
COORDINATE_SYSTEM = "global"
#: Smallest side of the coarsest level of an exported multiscale image (a thumbnail).
MIN_LEVEL_SIDE = 256
#: Element names of an exported store.
IMAGE_ELEMENT = "dapi"
LABELS_ELEMENT = "labels_ensemble"
REFERENCE_ELEMENT = "reference_regions"
DICE_TABLE = "dice"


def probabilities_element(model: str) -> str:
    """The name of a model's probability-map element.

    Parameters
    ----------
    model : str
        "ensemble", "size32", ... (the ``probmaps/{s}/{model}.h5`` stem).

    Returns
    -------
    str
        ``probabilities_ensemble``, ``probabilities_size32``, ...
    """
    return f"probabilities_{model}"


def pyramid_scale_factors(shape: Sequence[int]) -> list[int]:
    """2x steps from full resolution down to about ``MIN_LEVEL_SIDE`` pixels.

    Parameters
    ----------
    shape : sequence of int
        (H, W) of the full-resolution array.

    Returns
    -------
    list of int
        The factors between consecutive levels (all 2; empty when the array is small).
    """
    factors, side = [], max(shape)
    while side // 2 >= MIN_LEVEL_SIDE:
        side //= 2
        factors.append(2)
    return factors


def map_offset(stride: int) -> float:
    """Where map pixel 0 starts on the image (pixels).

    Its centre, 0.5 * stride after that, is the centre ``stride // 2 + 0.5`` of the input pixel
    its patch is centred on.

    Parameters
    ----------
    stride : int
        The map's output stride.

    Returns
    -------
    float
        The offset in image pixels.
    """
    return stride // 2 + 0.5 - stride / 2


def map_transform(stride: int) -> Any:
    """Map pixels -> image pixels: ``Scale(stride)``, then a translation where one is needed.

    Parameters
    ----------
    stride : int
        The map's output stride.

    Returns
    -------
    spatialdata.transformations.BaseTransformation
        The transformation to ``global``.
    """
    from spatialdata.transformations import Scale, Sequence as TransformSequence, Translation

    scale = Scale([stride, stride], axes=("y", "x"))
    offset = map_offset(stride)
    if offset == 0:
        return scale
    return TransformSequence([scale, Translation([offset, offset], axes=("y", "x"))])


@dataclass
class SectionResults:
    """What one section's SpatialData store holds (arrays in memory or lazy).

    Attributes: ``name``, ``image`` ((H, W) canonical image, numpy or dask), ``pixel_size_um``,
    ``classes`` (every class: label values index into it), ``maps`` (model -> (probabilities,
    its classes, stride)), ``labels`` and ``labels_stride`` (the ensemble's arg-max labels),
    ``reference`` ((H, W) reference regions of test sections), ``dice`` (the section's Dice
    table), ``class_labels`` (what to call each class: a niche's name with its genes).
    """

    name: str
    image: Any  # (H, W) canonical image, numpy or dask
    pixel_size_um: float
    classes: list[str]  # every class: label values index into it
    maps: dict[str, tuple[np.ndarray, list[str], int]]  # model -> (probabilities, its classes, stride)
    labels: np.ndarray | None = None  # arg-max labels of the ensemble, indices into classes
    labels_stride: int = 1
    reference: np.ndarray | None = None  # (H, W) reference regions (test sections)
    dice: pd.DataFrame | None = None  # section, model, class, dice, evaluable, note
    class_labels: dict[str, str] | None = None  # class -> e.g. "niche1 (Mbp, Plp1, Mobp)"


def dice_anndata(dice: pd.DataFrame) -> Any:
    """The Dice table as an AnnData table element.

    Parameters
    ----------
    dice : pandas.DataFrame
        The section's Dice table (section, model, class, dice, evaluable, note).

    Returns
    -------
    anndata.AnnData
        One observation per (model, class), the Dice in ``X`` (variable ``dice``, NaN where not
        evaluable), the rest in ``obs``.
    """
    import anndata
    from spatialdata.models import TableModel

    obs = dice.drop(columns="dice").reset_index(drop=True).astype(
        {"section": str, "model": str, "class": str, "evaluable": bool})
    obs["note"] = obs["note"].fillna("").astype(str)
    obs.index = [f"{m}/{c}" for m, c in zip(obs["model"], obs["class"])]
    values = pd.to_numeric(dice["dice"], errors="coerce").to_numpy(np.float64).reshape(-1, 1)
    table = anndata.AnnData(X=values, obs=obs, var=pd.DataFrame(index=["dice"]))
    return TableModel.parse(table)


def build_spatialdata(results: SectionResults) -> Any:
    """A SpatialData object of one section's results, in the image's pixel coordinates.

    The image is the identity in ``global``; each probability map a multiscale float image with
    the class names as ``c`` coordinates and ``map_transform(stride)``; the ensemble's arg-max
    labels and (test sections) the reference regions are labels elements; the Dice table is a
    table element.

    Parameters
    ----------
    results : SectionResults
        The section's results.

    Returns
    -------
    spatialdata.SpatialData
        Not yet written (``write_spatialdata``).
    """
    import spatialdata
    from spatialdata.models import Image2DModel, Labels2DModel
    from spatialdata.transformations import Identity

    identity = {COORDINATE_SYSTEM: Identity()}
    height, width = results.image.shape
    images = {IMAGE_ELEMENT: Image2DModel.parse(
        results.image[None], dims=("c", "y", "x"), c_coords=["DAPI"],
        scale_factors=pyramid_scale_factors((height, width)) or None, transformations=identity,
        chunks=(1, 4096, 4096))}
    for model, (probabilities, map_classes, stride) in results.maps.items():
        if probabilities.shape[0] != len(map_classes):
            raise ValueError(f"map {model}: {probabilities.shape[0]} channels for classes "
                             f"{map_classes}")
        images[probabilities_element(model)] = Image2DModel.parse(
            np.asarray(probabilities, np.float32), dims=("c", "y", "x"),
            c_coords=list(map_classes),  # the classes the models learned, in their order
            scale_factors=pyramid_scale_factors(probabilities.shape[1:]) or None,
            transformations={COORDINATE_SYSTEM: map_transform(stride)})
    labels = {}
    if results.labels is not None:
        labels[LABELS_ELEMENT] = Labels2DModel.parse(
            np.asarray(results.labels, np.uint8), dims=("y", "x"),
            transformations={COORDINATE_SYSTEM: map_transform(results.labels_stride)})
    if results.reference is not None:
        labels[REFERENCE_ELEMENT] = Labels2DModel.parse(
            np.asarray(results.reference, np.uint8), dims=("y", "x"), transformations=identity)
    tables = {DICE_TABLE: dice_anndata(results.dice)} if results.dice is not None else {}
    store = spatialdata.SpatialData(images=images, labels=labels, tables=tables)
    store.attrs["txmorph"] = {"section": results.name, "classes": list(results.classes),
                              "class_labels": dict(results.class_labels or
                                                   {name: name for name in results.classes}),
                              "pixel_size_um": results.pixel_size_um,
                              "coordinate_system": f"{COORDINATE_SYSTEM}: pixels of the "
                                                   "section's image (results/sections/"
                                                   f"{results.name}/image.tif)"}
    return store


def write_spatialdata(store: Any, path: str | os.PathLike) -> None:
    """Write a SpatialData object to a ``.zarr`` folder, replacing it atomically.

    Written under a temporary name beside it, then renamed.

    Parameters
    ----------
    store : spatialdata.SpatialData
        The object.
    path : str or os.PathLike
        The ``.zarr`` folder.
    """
    import shutil

    target = Path(path)
    tmp = target.with_name(f".tmp-{target.name}")  # still a .zarr name
    shutil.rmtree(tmp, ignore_errors=True)
    store.write(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
