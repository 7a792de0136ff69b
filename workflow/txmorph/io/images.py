"""Open the user's nuclei (DAPI) image lazily as one 2-D plane (rule import_image; its
canonical copy: ``txmorph.io.imagewrite.write_canonical_image``).

Whole-section nuclei images are large (often 10^9 pixels; pyramidal OME-TIFF with channels and
z-planes, tiled and compressed), so a TIFF is never read whole: ``open_image`` parses only its
structure and returns an ``ImageSource`` (``txmorph.io.imagesource``) for the plane chosen by
level, channel and z-projection. A window decodes only the tiles/strips it intersects and
uncompressed contiguous data is memory-mapped (``txmorph.io.tiffplanes``); a max projection over
z is taken window by window.
The plane is never guessed: several channels, time points, unlabelled stacks, or z without
``z_projection="max"`` raise ``InputError`` naming what to set in config.yaml. Grey saved as RGB
(identical channels) is taken as its first channel, checked on every read.

Why not tifffile's zarr interface (``TiffFile.aszarr()`` + zarr) instead of our own segment
reader: measured on a 16384 x 16384 uint16 BigTIFF in 512 x 512 zlib tiles
(workflow/benchmarks/lazy_tiff.py; docs/benchmark.md, "Lazy TIFF reading"), both keep memory
bounded by the window (+5 MiB ours, +10 MiB zarr over the opened file for 200 random 1024^2
windows; +35 / +41 MiB streaming 1024-row strips), ours is as fast on strips and 1.2-1.5x faster
on random windows; zarr is only in the spatialdata extra, and the core env should not grow a
dependency that buys neither memory nor time.

Limits: a compressed page stored as one strip is decoded whole (the last segment is cached, so
streaming decodes it once); PNG/JPEG are read whole, and so is a TIFF layout that cannot be
mapped to pages (rare; ``description`` then says "read whole").
"""

from __future__ import annotations

import math
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from txmorph.errors import InputError
from txmorph.io import imagesource
from txmorph.io.files import existing_file, is_int
from txmorph.io.imagesource import ImageSource, failing_as
from txmorph.io.tiffplanes import Plane, tiff_planes, view

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
OTHER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
Z_PROJECTIONS = ("max", "none")
UM_PER_UNIT = {"m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "μm": 1.0, "um": 1.0, "nm": 1e-3,
               "pm": 1e-6, "Å": 1e-4}
COLOUR_NAMES = ("red", "green", "blue", "alpha")


def open_image(path: str | Path, *, level: int = 0, channel: int | str | None = None,
               z_projection: str = "max") -> ImageSource:
    """Open a nuclei image (TIFF/BigTIFF/OME-TIFF, pyramidal or not; PNG; JPEG) as one plane.

    Only the file's structure is read; pixels are read window by window (``ImageSource``).

    Parameters
    ----------
    path : str or Path
        The image.
    level : int
        Pyramid level (0 = full resolution).
    channel : int or str or None
        Index or OME channel name (case-insensitive) of the DAPI channel; None for a
        single-channel image (or grey stored as RGB).
    z_projection : str
        "max" (maximum over z, window by window) or "none" (a z-stack is refused).

    Returns
    -------
    ImageSource
        The chosen plane; close it (or use it as a context manager).

    Raises
    ------
    InputError
        For every problem the user can fix, naming what to set in config.yaml.
    """
    where = f"image file '{path}'"
    p = existing_file(path, where, "image")
    suffix = p.suffix.lower()
    if suffix not in TIFF_SUFFIXES + OTHER_IMAGE_SUFFIXES:
        raise InputError(f"{where}: unsupported file type '{p.suffix}'. Use a TIFF (.tif, .tiff, "
                         ".ome.tif, .btf), PNG or JPEG.")
    if z_projection not in Z_PROJECTIONS:
        raise InputError(f"config.yaml: z_projection is {z_projection!r}; use 'max' or 'none'.")
    if suffix in TIFF_SUFFIXES:
        return _open_tiff(p, where, level, channel, z_projection)
    if level != 0:
        raise InputError(f"{where}: has one resolution level only; set 'level' to 0 in config.yaml.")
    with failing_as(where, f"read as a {suffix[1:].upper()} image"):
        import imageio.v3 as iio

        array = np.asarray(iio.imread(p, plugin="pillow"))
    axes = "YX" if array.ndim == 2 else "I" * (array.ndim - 3) + "YXS"
    return _build(p, where, axes, array.shape, array.dtype, [], None, channel, z_projection,
                  lambda index: view(array, axes, index), level=0, about="read whole")


def _open_tiff(p: Path, where: str, level: int, channel: int | str | None,
               z_projection: str) -> ImageSource:
    import tifffile

    with failing_as(where, "read as a TIFF image"):
        tif = tifffile.TiffFile(p)
    with failing_as(where, "read as a TIFF image", cleanup=tif.close):
        if not tif.series:
            raise InputError(f"{where}: the TIFF holds no image. Re-export it.")
        levels = tif.series[0].levels
        if not is_int(level) or not 0 <= level < len(levels):
            listing = ", ".join(f"{i}: {lv.shape}" for i, lv in enumerate(levels))
            raise InputError(f"{where}: has no resolution level {level!r}; the levels are "
                             f"{listing}. Set 'level' for this section in config.yaml to one of them.")
        series = levels[level]
        names, pixel_size = _ome_info(tif.ome_metadata)
        if pixel_size is not None and "X" in series.axes:
            x0, x = levels[0].shape[levels[0].axes.index("X")], series.shape[series.axes.index("X")]
            pixel_size *= x0 / x
        _check_pixels(where, series.dtype, series.shape)  # before any memory map
        make, about = tiff_planes(p, tif, series, threading.Lock())
        return _build(p, where, series.axes, series.shape, series.dtype, names, pixel_size,
                      channel, z_projection, make, level=level, about=about, closer=tif.close)


def _ome_info(xml: str | None) -> tuple[list[str], float | None]:
    """Channel names and pixel size (µm) of the first OME image; ([], None) when absent."""
    try:
        root = ElementTree.fromstring(xml) if xml else None
    except ElementTree.ParseError:
        root = None
    elements = [] if root is None else [e for e in root.iter() if e.tag.endswith("Pixels")]
    if not elements:
        return [], None
    pixels = elements[0]
    names = [c.get("Name") or "" for c in pixels if c.tag.rsplit("}", 1)[-1] == "Channel"]
    size, unit = pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit", "µm")
    try:
        value = float(size) * UM_PER_UNIT[unit] if size is not None else None
    except (ValueError, KeyError):  # a number we cannot read, or a unit such as 'pixel'
        value = None
    return names, value if value is not None and math.isfinite(value) and value > 0 else None


def _build(p: Path, where: str, axes: str, shape: tuple[int, ...], dtype: Any, names: list[str],
           pixel_size: float | None, channel: int | str | None, z_projection: str,
           make: Callable[[list[int]], Plane], *, level: int, about: str,
           closer: Callable[[], None] | None = None) -> ImageSource:
    """Check shape and axes, pick the channel and z-planes, and assemble the source."""
    _check_pixels(where, dtype, shape)
    found = f"axes {axes}, shape {tuple(shape)}"
    plane = tuple(shape[axes.index(a)] for a in "YX" if a in axes)
    if len(plane) < 2 or min(plane) < 2:
        raise InputError(f"{where}: expected a 2-D image, found {found}. Re-export it.")
    sizes = {a: n for a, n in zip(axes, shape) if n > 1 and a not in "YX"}
    if sizes.get("T", 1) > 1:
        raise InputError(f"{where}: a time series of {sizes['T']} frames ({found}) where one nuclei "
                         "image is expected. Export one time point (or a projection over time).")
    if sizes.get("C", 1) > 1 and sizes.get("S", 1) > 1:
        raise InputError(f"{where}: several channels that are each colour images ({found}). "
                         "Export the DAPI channel alone as a grey-scale TIFF.")
    chan_axis = "C" if "C" in sizes else "S" if "S" in sizes else None
    unknown = [a for a in sizes if a not in "CSZT"]
    if unknown and chan_axis is None and len(unknown) == 1 and channel is not None:
        chan_axis = unknown.pop()  # the user says that the unlabelled planes are channels
    if unknown:
        stacks = ", ".join(f"{sizes[a]} along '{a}'" for a in unknown)
        raise InputError(
            f"{where}: a stack of planes ({stacks}; {found}) that the file does not label as "
            "channels or z-planes. Export one 2-D plane (the DAPI channel, or a maximum projection "
            "of the z-stack: Fiji Image > Stacks > Z Project, Max), or, if the planes are channels, "
            "set 'channel' for this section in config.yaml to the DAPI plane's index.")
    chosen, name, twins = None, None, []
    if chan_axis is not None:
        n = sizes[chan_axis]
        labels = (names if chan_axis == "C" and len(names) == n and all(names) else
                  list(COLOUR_NAMES[:n]) if chan_axis == "S" and n in (3, 4) else
                  [str(i) for i in range(n)])
        if channel is None and chan_axis == "S" and n in (3, 4):
            chosen, twins = 0, [1, 2]  # grey stored as colour? checked on every read
        else:
            chosen = pick_channel(where, channel, labels, found)
            name = labels[chosen]
    elif channel is not None:  # one channel: accept index 0, or its OME name if it has one
        label = names[0] if len(names) == 1 and names[0] else None
        if not (channel in (0, "0") or isinstance(channel, str)
                and (label is None or channel.strip().casefold() == label.casefold())):
            raise InputError(f"{where}: has a single channel{f' ({label!r})' if label else ''}, so "
                             f"'channel: {channel}' does not exist. Remove 'channel' or set it to 0 "
                             "for this section in config.yaml.")
        chosen, name = 0, label
    nz = sizes.get("Z", 1)
    if nz > 1 and z_projection == "none":
        raise InputError(f"{where}: a z-stack of {nz} planes ({found}) and z_projection is 'none'. "
                         "Set z_projection: max in config.yaml, or export one plane.")

    def index(z: int, c: int) -> list[int]:
        return [z if a == "Z" else c if a == chan_axis else 0 for a in axes]

    planes = [(make(index(z, chosen or 0)), [make(index(z, t)) for t in twins]) for z in range(nz)]
    text = f"{p.name}: series 0 {found}, level {level} {plane}"
    text += f", channel {chosen} ({name!r})" if name is not None else ""
    text += ", grey stored as colour: first channel" if twins else ""
    text += f", max projection over {nz} z-planes" if nz > 1 else ""
    source = ImageSource(p, plane, np.dtype(dtype), planes, pixel_size_um=pixel_size,
                         description=f"{text}; {about}", level=level, channel=chosen,
                         channel_name=name, closer=closer)
    band = max(1, imagesource.BAND_PIXELS // plane[1])
    for top in sorted({0, max(0, plane[0] // 2 - band // 2)}) if twins else []:
        source.read(slice(top, top + band), slice(None))  # so that a colour image fails now
    return source


def _check_pixels(where: str, dtype: Any, shape: tuple[int, ...]) -> None:
    if dtype is None or np.dtype(dtype) == bool or np.dtype(dtype).kind in "cOUSVMm":
        raise InputError(f"{where}: pixel type '{dtype}' is not supported. Export the nuclei image "
                         "with integer (8- or 16-bit) or floating-point grey values.")
    if math.prod(shape) == 0:
        raise InputError(f"{where}: the image is empty (shape {tuple(shape)}). Re-export it.")


def pick_channel(where: str, channel: int | str | None, labels: list[str], found: str) -> int:
    """The index of the configured channel among an image's channels.

    Parameters
    ----------
    where : str
        How messages name the image.
    channel : int or str or None
        The config's ``channel``: an index, a name (case-insensitive) or a digit string.
    labels : list of str
        The channels' names (their indices as text when unnamed).
    found : str
        The image's axes and shape, for messages.

    Returns
    -------
    int
        The channel's index.

    Raises
    ------
    InputError
        If ``channel`` is None (several channels) or names no channel; the message lists them.
    """
    listing = ", ".join(f"{i} '{label}'" if label != str(i) else str(i)
                        for i, label in enumerate(labels))
    fix = (f"has {len(labels)} channels ({listing}; {found}). Set 'channel' for this "
           "section in config.yaml to the DAPI channel's name or index.")
    if channel is None:
        raise InputError(f"{where}: {fix}")
    if isinstance(channel, str):
        match = [i for i, label in enumerate(labels) if label.casefold() == channel.strip().casefold()]
        if match:
            return match[0]
        channel = int(channel) if channel.strip().isdigit() else channel
    if is_int(channel) and 0 <= channel < len(labels):  # type: ignore[operator]
        return int(channel)  # type: ignore[arg-type]
    raise InputError(f"{where}: there is no channel {channel!r}; the image {fix}")


def read_image(path: str | Path, **options: Any) -> np.ndarray:
    """The whole selected plane of a user's image in memory (tests and tools; rules read the
    canonical image through ``txmorph.io.canonical``).

    Parameters
    ----------
    path : str or Path
        The image.
    **options
        ``level``, ``channel``, ``z_projection`` as for ``open_image``.

    Returns
    -------
    numpy.ndarray
        (H, W) in the image's dtype.

    Raises
    ------
    InputError
        As ``open_image``, and for NaN/inf pixels.
    """
    with open_image(path, **options) as source:
        image = source.read(slice(None), slice(None))
    bad = nonfinite(image, 0, 0)
    if bad:
        raise InputError(nonfinite_message(f"image file '{path}'", *bad))
    return image


def nonfinite(block: np.ndarray, top: int, left: int) -> tuple[int, int, int] | None:
    """The NaN/inf pixels of a block, if any.

    Parameters
    ----------
    block : numpy.ndarray
        A window of the plane.
    top, left : int
        Its position in the plane, added to the reported row and column.

    Returns
    -------
    tuple of (int, int, int) or None
        (count, row, column of the first), or None when every pixel is finite.
    """
    if block.dtype.kind != "f":
        return None
    bad = ~np.isfinite(block)
    count = int(np.count_nonzero(bad))
    if not count:
        return None
    row, col = np.argwhere(bad)[0]
    return count, top + int(row), left + int(col)


def nonfinite_message(where: str, count: int, row: int, col: int) -> str:
    """The user's message for NaN/inf pixels.

    Parameters
    ----------
    where : str
        How the message names the image.
    count, row, col : int
        As returned by ``nonfinite``.

    Returns
    -------
    str
        The message, with the fix.
    """
    return (f"{where}: {count} pixels are NaN or infinite (the first at row {row}, column {col}). "
            "Replace them by 0 (or the background value) and re-export the image.")
