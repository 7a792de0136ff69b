"""SpatialData in: a section's image and spots read from a SpatialData ``.zarr`` store.

Only the SpatialData import rules (workflow/rules/spatialdata.smk) and the workflow's parsing
(``check_store_elements``, ``is_spatialdata_store`` in workflow/rules/spatialdata_common.smk)
import this module, and it imports ``spatialdata`` inside the functions that need it: the core
pipeline runs without it, and the workflow can check a store's element names while it builds
the DAG (``check_store_elements`` reads the on-disk layout only), before any job and without
spatialdata installed. The images and spots read here go on through the plain import's
helpers (``io.imagewrite``, ``io.spots``) to the same canonical files. The way out, one store
of results per section, is ``txmorph.export.spatialdata``.

Pixel convention (spatialdata's, and txmorph's for spots): pixel ``i`` of an image covers the
intrinsic coordinates ``[i, i + 1)``, its centre is ``i + 0.5``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.images import pick_channel
from txmorph.io.imagesource import ImageSource

#: Element kinds of a SpatialData store: its top-level groups on disk.
ELEMENT_KINDS = ("images", "labels", "points", "shapes", "tables")
SINGULAR = {"images": "image", "labels": "labels", "points": "points", "shapes": "shapes",
            "tables": "table"}
#: The coordinate system points are placed through when image and points share several
#: (spatialdata's default one; the exported stores use it too).
DEFAULT_COORDINATE_SYSTEM = "global"


def is_spatialdata_store(path: str | os.PathLike | None) -> bool:
    """Whether a section input is given as a SpatialData store: a path ending in ``.zarr``.

    Parameters
    ----------
    path : str or os.PathLike or None
        The config's ``image`` or ``spots``.

    Returns
    -------
    bool
        True for a ``.zarr`` path.
    """
    return isinstance(path, (str, os.PathLike)) and Path(path).name.lower().endswith(".zarr")


def store_elements(path: str | os.PathLike) -> dict[str, list[str]]:
    """Element names by kind, read from the store's folders (without opening the elements).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.zarr`` store.

    Returns
    -------
    dict of str to list of str
        ``{"images": [...], "points": [...], ...}`` for the kinds in ``ELEMENT_KINDS``.
    """
    root = Path(path)
    return {kind: sorted(p.name for p in (root / kind).iterdir()
                         if p.is_dir() and not p.name.startswith("."))
            if (root / kind).is_dir() else []
            for kind in ELEMENT_KINDS}


def _listing(elements: Mapping[str, Sequence[str]]) -> str:
    found = [f"{kind} {', '.join(repr(n) for n in names)}" for kind, names in elements.items() if names]
    return "; ".join(found) if found else "no elements at all"


def check_store_elements(section: str, path: str | os.PathLike, wanted: Mapping[str, str | None]
                         ) -> dict[str, str]:
    """The element of each kind in ``wanted``, checked against the store.

    A name left out (None) is taken when the store has exactly one element of that kind.

    Parameters
    ----------
    section : str
        The section, for messages.
    path : str or os.PathLike
        The ``.zarr`` store.
    wanted : Mapping of str to str or None
        ``{"images": name or None, "points": ...}``.

    Returns
    -------
    dict of str to str
        The element name of each kind.

    Raises
    ------
    InputError
        Naming the section, the store, the element, the elements the store does have and the
        config key to set, when the store or the element is missing.
    """
    root = Path(path)
    key_of = {"images": "image_element", "points": "points_element"}
    if not root.is_dir():
        raise InputError(f"section '{section}': the SpatialData store {path} does not exist (or is "
                         "not a folder). Check the path in config.yaml.")
    elements = store_elements(root)
    if not any(elements.values()) and not (root / "zarr.json").is_file() \
            and not (root / ".zattrs").is_file():
        raise InputError(f"section '{section}': {path} is not a SpatialData store (no zarr.json or "
                         ".zattrs, no images/ or points/ folder). Write it with "
                         "spatialdata's SpatialData.write, spatialdata-io or sopa.")
    chosen = {}
    for kind, name in wanted.items():
        names = elements.get(kind, [])
        key = key_of.get(kind, kind)
        if name is None:
            if len(names) == 1:
                chosen[kind] = names[0]
                continue
            raise InputError(
                f"section '{section}': the SpatialData store {path} has "
                f"{len(names) or 'no'} {kind} elements ({_listing(elements)}); set '{key}' for "
                f"this section in config.yaml to the one to use." if names else
                f"section '{section}': the SpatialData store {path} has no {SINGULAR[kind]} "
                f"element ({_listing(elements)}). Add one to the store (spatialdata-io readers and sopa "
                f"write them), or give this section's {'image' if kind == 'images' else 'spots'} "
                "as a file.")
        if name not in names:
            raise InputError(
                f"section '{section}': the SpatialData store {path} has no {SINGULAR[kind]} "
                f"element '{name}'; it has {_listing(elements)}. Set '{key}' for this section in "
                f"config.yaml to one of its {kind} elements"
                + (f" ({', '.join(repr(n) for n in names)})" if names else "")
                + ", or write that element to the store.")
        chosen[kind] = name
    return chosen



def _read_element(path: str | os.PathLike, kind: str, name: str) -> Any:
    """One element of a store, read lazily (dask), with its transformations."""
    import spatialdata

    store = spatialdata.read_zarr(path, selection=(kind,))
    elements = getattr(store, kind)
    if name not in elements:
        raise InputError(f"{path}: spatialdata could not read the {kind} element '{name}' "
                         f"(it read {', '.join(elements) or 'none'}); re-write the store.")
    return elements[name]


def _image_level(element: Any, level: int, where: str) -> Any:
    """The DataArray of an image element at pyramid ``level`` (scale0 = full resolution)."""
    from xarray import DataArray

    if isinstance(element, DataArray):
        levels = [element]
    else:  # DataTree: scale0, scale1, ... each holding one variable
        levels = [next(iter(element[key].ds.data_vars.values()))
                  for key in sorted(element.children, key=lambda k: int(k.removeprefix("scale")))]
    if not isinstance(level, int) or not 0 <= level < len(levels):
        listing = ", ".join(f"{i}: {dict(lv.sizes)}" for i, lv in enumerate(levels))
        raise InputError(f"{where}: has no resolution level {level!r}; the levels are {listing}. "
                         "Set 'level' for this section in config.yaml to one of them.")
    return levels[level]


class _DaskPlane:
    """One (y, x) plane of a dask-backed image, ``plane[r0:r1, c0:c1]`` computing that window."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return np.asarray(self.array[key].compute())


def open_spatialdata_image(path: str | os.PathLike, element: str, *, level: int = 0,
                           channel: int | str | None = None, z_projection: str = "max"
                           ) -> tuple[ImageSource, int]:
    """An image element of a SpatialData store as one plane, like ``io.images.open_image``.

    A 3-D element is max-projected over ``z``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.zarr`` store.
    element : str
        The image element.
    level : int
        Multiscale level (0 = full resolution).
    channel : int or str or None
        The DAPI channel by index or by its ``c`` coordinate (name); a single channel needs none.
    z_projection : str
        "max" or "none" (a z-stack is then refused).

    Returns
    -------
    tuple of (ImageSource, int)
        The plane, read window by window from the dask array, and the width of the element's
        full-resolution level (to scale spot coordinates to ``level``).
    """
    where = f"image element '{element}' of {path}"
    image = _read_element(path, "images", element)
    full = _image_level(image, 0, where)
    data = _image_level(image, level, where)
    dims = tuple(data.dims)
    names = [str(c) for c in data.coords["c"].values] if "c" in dims else []
    found = f"dims {dims}, shape {tuple(data.shape)}"
    if "c" in dims and data.sizes["c"] > 1:
        chosen = pick_channel(where, channel, names, found)
        data = data.isel(c=chosen)
    elif "c" in dims:
        chosen = 0
        if channel not in (None, 0, "0") and str(channel).casefold() != names[0].casefold():
            raise InputError(f"{where}: has a single channel ({names[0]!r}), so 'channel: "
                             f"{channel}' does not exist. Remove 'channel' or set it to 0.")
        data = data.isel(c=0)
    else:
        chosen = None
    nz = data.sizes.get("z", 1)
    if nz > 1 and z_projection == "none":
        raise InputError(f"{where}: a z-stack of {nz} planes ({found}) and z_projection is 'none'. "
                         "Set z_projection: max in config.yaml.")
    planes = ([(_DaskPlane(data.isel(z=z).transpose("y", "x").data), []) for z in range(nz)]
              if "z" in data.dims else [(_DaskPlane(data.transpose("y", "x").data), [])])
    shape = (int(data.sizes["y"]), int(data.sizes["x"]))
    text = f"{Path(path).name}: image element '{element}' {found}, level {level} {shape}"
    text += f", channel {chosen} ({names[chosen]!r})" if chosen is not None else ""
    text += f", max projection over {nz} z-planes" if nz > 1 else ""
    source = ImageSource(Path(path), shape, np.dtype(data.dtype), planes, pixel_size_um=None,
                         description=f"{text}; read by window (dask)", level=level,
                         channel=chosen, channel_name=names[chosen] if chosen is not None else None)
    return source, int(full.sizes["x"])


def _transform_to(element: Any, coordinate_system: str) -> np.ndarray:
    """The 3x3 affine matrix (x, y) of an element to ``coordinate_system``."""
    from spatialdata.transformations import get_transformation

    transformation = get_transformation(element, to_coordinate_system=coordinate_system)
    return np.asarray(transformation.to_affine_matrix(input_axes=("x", "y"),
                                                      output_axes=("x", "y")), dtype=np.float64)


def shared_coordinate_system(image: Any, points: Any, chosen: str | None, where: str) -> str:
    """The coordinate system to map the points onto the image through.

    Parameters
    ----------
    image, points : SpatialData elements
        The image and points elements.
    chosen : str or None
        The section's ``coordinate_system``, used when both elements have it.
    where : str
        How messages name the store.

    Returns
    -------
    str
        ``chosen``, else the one they share (``global`` when they share several).

    Raises
    ------
    InputError
        When they share none, or do not both have ``chosen``.
    """
    from spatialdata.transformations import get_transformation

    on_image = set(get_transformation(image, get_all=True))
    on_points = set(get_transformation(points, get_all=True))
    shared = sorted(on_image & on_points)
    if chosen is not None:
        if chosen not in shared:
            raise InputError(
                f"{where}: coordinate system '{chosen}' is not one that both the image "
                f"({', '.join(sorted(on_image))}) and the points ({', '.join(sorted(on_points))}) "
                f"have; set 'coordinate_system' to one of {', '.join(shared) or '(none shared)'}.")
        return chosen
    if not shared:
        raise InputError(
            f"{where}: the image ({', '.join(sorted(on_image))}) and the points "
            f"({', '.join(sorted(on_points))}) share no coordinate system, so the points cannot be "
            "placed on the image. Add a transformation to a shared one (spatialdata."
            "transformations.set_transformation).")
    return (DEFAULT_COORDINATE_SYSTEM if DEFAULT_COORDINATE_SYSTEM in shared
            else shared[0])


@dataclass
class PointsOnImage:
    """Transcripts of a points element placed on an image element.

    Attributes: ``spots`` (gene, x, y in pixels of the image element's full-resolution level),
    ``coordinate_system`` (the one used), ``gene_column`` (the points' column read as gene),
    ``description`` (one line for the log).
    """
    spots: pd.DataFrame  # gene, x, y in pixels of the image element's full-resolution level
    coordinate_system: str
    gene_column: str
    description: str


def read_points_on_image(path: str | os.PathLike, points_element: str, image_path: str | os.PathLike,
                         image_element: str, coordinate_system: str | None = None,
                         gene_column: str | None = None) -> PointsOnImage:
    """The transcripts of a points element in pixels of an image element (full resolution).

    Each point goes to the coordinate system through its element's transformation, then back
    through the inverse of the image's: both transformations are applied, whatever they are
    (scale, translation, affine).

    Parameters
    ----------
    path : str or os.PathLike
        The store with the points.
    points_element : str
        The points element.
    image_path : str or os.PathLike
        The store with the image (may be the same).
    image_element : str
        The image element.
    coordinate_system : str or None
        The section's ``coordinate_system`` (see ``shared_coordinate_system``).
    gene_column : str or None
        Used when the points have no ``feature_key``.

    Returns
    -------
    PointsOnImage
        The spots and how they were placed.
    """
    where = f"points element '{points_element}' of {path}"
    points = _read_element(path, "points", points_element)
    image = _read_element(image_path, "images", image_element)
    system = shared_coordinate_system(image, points, coordinate_system, where)
    attrs = points.attrs.get("spatialdata_attrs", {})
    gene = attrs.get("feature_key") or gene_column
    if gene is None or gene not in points.columns:
        raise InputError(
            f"{where}: {'has no feature_key' if gene is None else f'has no column {gene!r}'} "
            f"naming the gene of each point (columns: {', '.join(map(str, points.columns))}). "
            "Write the points with PointsModel.parse(..., feature_key=...) or set "
            "'columns: {gene: ...}' for this section in config.yaml.")
    table = points[["x", "y", gene]].compute()
    to_pixels = np.linalg.inv(_transform_to(image, system)) @ _transform_to(points, system)
    xy = np.column_stack([table["x"].to_numpy(np.float64), table["y"].to_numpy(np.float64),
                          np.ones(len(table))])
    placed = xy @ to_pixels.T
    spots = pd.DataFrame({"gene": table[gene].astype(str).to_numpy(), "x": placed[:, 0],
                          "y": placed[:, 1]})
    description = (f"{Path(path).name}: points element '{points_element}', {len(spots)} points, "
                   f"gene column '{gene}', placed on image element '{image_element}' through "
                   f"coordinate system '{system}'")
    return PointsOnImage(spots, system, gene, description)
