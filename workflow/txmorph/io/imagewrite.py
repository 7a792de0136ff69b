"""Write the canonical section image of the import rules: ``image.tif`` (and ``image.json``).

``write_canonical_image`` streams the chosen plane (cropped, block-mean downsampled) strip by
strip, memory O(strip), into an uncompressed, untiled, contiguous BigTIFF, written atomically:
later rules read any window of it without decoding (``txmorph.io.canonical``), pages shared
between processes, with no dependence on the layouts accepted on import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from txmorph.errors import InputError
from txmorph.io.files import is_int, write_summary
from txmorph.io.images import nonfinite, nonfinite_message
from txmorph.io.imagesource import ImageSource
from txmorph.outputs import atomic_path


def _group_sums(a: np.ndarray, k: int) -> np.ndarray:
    """Float64 sums of groups of k rows (the last may be shorter), without a float copy of a."""
    full = a.shape[0] // k * k
    out = np.empty((-(-a.shape[0] // k), *a.shape[1:]))
    a[:full].reshape(full // k, k, *a.shape[1:]).sum(axis=1, dtype=np.float64, out=out[: full // k])
    if full < a.shape[0]:
        a[full:].sum(axis=0, dtype=np.float64, out=out[-1])
    return out


def _block_mean(block: np.ndarray, k: int) -> np.ndarray:
    """Mean of k x k blocks in the block's dtype; partial edge blocks average what they have."""
    if k == 1:
        return block
    h, w = block.shape
    sums = _group_sums(_group_sums(block, k).T, k).T
    mean = sums / np.outer(np.minimum(k, h - np.arange(0, h, k)), np.minimum(k, w - np.arange(0, w, k)))
    if block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        mean = np.clip(np.rint(mean), info.min, info.max)
    return mean.astype(block.dtype)


def _blank_message(where: str, value: Any, source: ImageSource, cropped: bool) -> str:
    """A blank plane: every pixel has one value, so there is no tissue to learn from or score."""
    value = value.item() if hasattr(value, "item") else value
    chosen = f"level {source.level}" + (f", channel {source.channel_name or source.channel}"
                                        if source.channel is not None else "")
    return (f"{where}: the image is blank: every pixel{' of the region' if cropped else ''} "
            f"is {value} ({chosen}). There is no tissue to learn from or to score. Check that "
            "'image' is the nuclei (DAPI) stain of this section and that 'channel', 'level', "
            "'z_projection' and 'region' select it.")


def write_canonical_image(source: ImageSource, out_path: str | Path, *, downsample: int = 1,
                          region: tuple[int, int, int, int] | None = None,
                          rows_per_strip: int = 1024) -> dict:
    """Write the plane as an uncompressed, contiguous BigTIFF (memory-mappable), atomically.

    The plane is cropped to ``region`` first; ``downsample`` then takes the mean of each k x k
    block: partial blocks at the bottom/right edge average the pixels they have; integer dtypes
    are rounded back. It is streamed in strips of ``rows_per_strip`` rows (rounded down to a
    multiple of ``downsample``), so memory is O(strip).

    Parameters
    ----------
    source : ImageSource
        The chosen plane.
    out_path : str or Path
        The canonical ``image.tif``.
    downsample : int
        Block size k >= 1.
    region : tuple of int or None
        ``(row0, row1, col0, col1)`` in pixels of the plane, ends exclusive; None = whole.
    rows_per_strip : int
        Rows read at a time.

    Returns
    -------
    dict
        JSON-serialisable summary: path, shape, dtype, source, source_shape, level, channel,
        channel_name, projection, z_planes, downsample, region, pixel_size_um, min, max.

    Raises
    ------
    InputError
        For a bad region or downsample, NaN/inf pixels, or a blank (constant) image.
    """
    import tifffile

    where = f"image file '{source.path}'"
    if not is_int(downsample) or downsample < 1:
        raise InputError(f"config.yaml: downsample is {downsample!r}; use a whole number >= 1.")
    if rows_per_strip < 1:
        raise ValueError("rows_per_strip must be >= 1")
    k, (height, width) = int(downsample), source.shape
    box = tuple(region) if isinstance(region, (list, tuple)) else (0, height, 0, width)
    box = () if region is not None and not isinstance(region, (list, tuple)) else box
    if not (len(box) == 4 and all(is_int(v) for v in box)
            and 0 <= box[0] < box[1] <= height and 0 <= box[2] < box[3] <= width):
        raise InputError(f"{where}: region {region!r} (row0, row1, col0, col1 in pixels) is empty or "
                         f"not inside the image of {height} x {width} pixels (rows x columns). "
                         "Fix the region of this section in config.yaml.")
    r0, r1, c0, c1 = (int(v) for v in box)
    shape = (-(-(r1 - r0) // k), -(-(c1 - c0) // k))
    if min(shape) < 2:
        raise InputError(f"{where}: downsampling {r1 - r0} x {c1 - c0} pixels by {k} leaves {shape}, "
                         "fewer than 2 pixels a side. Lower 'downsample' or enlarge the region.")
    options: dict[str, Any] = {"bigtiff": True, "photometric": "minisblack", "metadata": {"axes": "YX"}}
    if source.pixel_size_um:
        per_cm = 1e4 / (source.pixel_size_um * k)
        options.update(resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
    step, bad, low, high = max(k, rows_per_strip // k * k), None, None, None
    with atomic_path(out_path) as tmp:
        out = tifffile.memmap(tmp, shape=shape, dtype=source.dtype, **options)
        try:
            for top in range(r0, r1, step):
                block = source.read(slice(top, min(top + step, r1)), slice(c0, c1))
                found = nonfinite(block, top, c0)
                if found:  # keep counting to report the total; the first position stays
                    bad = found if bad is None else (bad[0] + found[0], bad[1], bad[2])
                if bad:
                    continue
                small = _block_mean(block, k)
                out[(top - r0) // k : (top - r0) // k + small.shape[0]] = small
                low = small.min() if low is None else min(low, small.min())
                high = small.max() if high is None else max(high, small.max())
            if bad:
                raise InputError(nonfinite_message(where, *bad))
            if low == high:
                raise InputError(_blank_message(where, low, source, box != (0, height, 0, width)))
            out.flush()
        finally:
            del out
    return {
        "path": str(out_path), "shape": list(shape), "dtype": str(source.dtype),
        "source": str(source.path), "source_shape": list(source.shape), "level": source.level,
        "channel": source.channel, "channel_name": source.channel_name,
        "projection": source.projection, "z_planes": source.z_planes, "downsample": k,
        "region": None if region is None else [r0, r1, c0, c1],
        "pixel_size_um": source.pixel_size_um,
        "min": np.asarray(low).item(), "max": np.asarray(high).item(),
    }


def import_section_image(source: ImageSource, image_path: str | Path, summary_path: str | Path,
                         params: Mapping[str, Any], full_width: int, extra: Mapping[str, Any],
                         log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """The import rules' canonical image: ``image.tif`` and its summary ``image.json``.

    Crops ``source`` to the section's ``region`` (default: the whole plane), downsamples it
    (``write_canonical_image``), completes the summary with what later rules need and writes
    it. Shared by rules import_image and import_spatialdata_image.

    Parameters
    ----------
    source : ImageSource
        The chosen plane at the section's level.
    image_path, summary_path : str or Path
        ``results/sections/{s}/image.tif`` and ``image.json``.
    params : Mapping
        The section's import params (``import_params`` in common.smk): ``name``, ``region``
        (``{"x": [x0, x1], "y": [y0, y1]}`` or None), ``downsample``, ``pixel_size_um`` (of
        the image as read).
    full_width : int
        Width of the full-resolution plane (level 0), to scale pixel coordinates to this level.
    extra : Mapping
        Further summary entries of the route (metadata pixel size, fingerprint, element ...),
        appended in their order.
    log : callable
        Receives one line with the summary.

    Returns
    -------
    dict
        The summary as written.
    """
    region = params.get("region") or {}
    x0, x1 = region.get("x", [0, source.shape[1]])
    y0, y1 = region.get("y", [0, source.shape[0]])
    summary = write_canonical_image(source, image_path, downsample=params["downsample"],
                                    region=(y0, y1, x0, x1))
    summary.update(
        section=params["name"],
        # Pixels of this level per full-resolution pixel: scales pixel coordinates of spots.
        level_scale=summary["source_shape"][1] / full_width,
        pixel_size_um=params["pixel_size_um"] * params["downsample"],
        **extra,
    )
    log(f"image of section {params['name']}: {json.dumps(summary)}")
    write_summary(summary_path, summary)
    return summary
