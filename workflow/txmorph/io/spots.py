"""A section's spot table, from the user's format to the canonical one (rules import_spots,
import_spatialdata_points).

``import_spots`` reads the table in its vendor format (``txmorph.io.vendors``), then
``fit_spots_to_image`` checks it against the image as read and the configured genes
(``check_spots``: every gene present, spots on the image), crops it to the section's region and
scales it by the downsampling (``crop_spots``). The result, in pixels of the canonical
``image.tif``, is written by ``write_spots``; later rules read it through
``txmorph.io.canonical``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.files import GENES_KEY, OUTSIDE_KEY, describe_row, write_summary
from txmorph.io.vendors import read_spot_table
from txmorph.outputs import atomic_path


def spot_options(params: Mapping[str, Any], level_scale: float) -> dict[str, Any]:
    """The ``txmorph.io.vendors.read_spot_table`` options of a section (its rule params).

    Coordinates come out in pixels of the image as read at its pyramid level: micrometres
    through ``pixel_size_um`` (already per pixel of that level), and pixel coordinates or a
    transform (which refer to the full-resolution image) scaled by the level's ``level_scale``.

    Parameters
    ----------
    params : Mapping
        The section's import params (``import_params`` in common.smk).
    level_scale : float
        Pixels of the chosen level per full-resolution pixel (``image.json``).

    Returns
    -------
    dict
        The ``VENDOR_KEYS`` that are set, ``format`` and ``image_scale``.
    """
    options = {key: params[key] for key in VENDOR_KEYS if params.get(key) is not None}
    options["format"] = params.get("spots_format", "table")
    pixel_route = (options.get("transform") is not None or options["format"] == "cosmx"
                   or (options["format"] == "table" and params.get("units", "px") == "px"))
    options["image_scale"] = float(level_scale) if pixel_route else 1.0
    return options


VENDOR_KEYS = ("columns", "units", "pixel_size_um", "origin_um", "transform", "min_qv",
               "fov_positions")


def crop_spots(
    spots: pd.DataFrame, region: Mapping[str, Sequence[int]] | None, downsample: int
) -> tuple[pd.DataFrame, int]:
    """Spots inside ``region``, shifted to its corner and divided by ``downsample``.

    A spot at continuous position x belongs to source pixel ``floor(x)``, hence to
    downsampled pixel ``floor(x / f)``: dividing keeps it in the block it was averaged into.
    The input is not modified (the result may share its columns).

    Parameters
    ----------
    spots : pandas.DataFrame
        ``gene``, ``x``, ``y`` in pixels of the image as read.
    region : Mapping or None
        ``{"x": [x0, x1], "y": [y0, y1]}`` (pixels, ends exclusive; either may be absent).
    downsample : int
        The section's block size.

    Returns
    -------
    tuple of (pandas.DataFrame, int)
        The spots in pixels of the canonical image, and how many lay outside the region.
    """
    x, y = spots["x"].to_numpy(), spots["y"].to_numpy()
    x0, y0 = 0, 0
    inside = np.ones(len(spots), bool)
    if region:
        if "x" in region:
            x0, x1 = region["x"]
            inside &= (x >= x0) & (x < x1)
        if "y" in region:
            y0, y1 = region["y"]
            inside &= (y >= y0) & (y < y1)
    kept = spots.copy(deep=False) if inside.all() else spots.loc[inside]  # no data copied
    if (x0, y0, downsample) != (0, 0, 1):  # (v - 0) / 1 == v: nothing to compute
        kept = kept.assign(x=(kept["x"].to_numpy() - x0) / downsample,
                           y=(kept["y"].to_numpy() - y0) / downsample)
    return kept, int((~inside).sum())


def import_spots(
    path: str, params: Mapping[str, Any], image_info: Mapping[str, Any], genes: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A section's spots in pixels of its canonical image, and a summary of what was dropped.

    Reads the table in its vendor format, maps it onto the image as read (``spot_options``),
    then ``fit_spots_to_image``.

    Parameters
    ----------
    path : str
        The spot table.
    params : Mapping
        The section's import params (``import_params`` in common.smk).
    image_info : Mapping
        import_image's summary (``image.json``).
    genes : sequence of str
        The configured genes: each must occur in the table.
    log : callable
        Receives progress lines.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The canonical spots (``gene``, ``x``, ``y``) and the summary for ``spots.json``.
    """
    table = read_spot_table(path, spot_options(params, image_info["level_scale"]))
    log(table.description)
    return fit_spots_to_image(table.spots, table.filtered, path, params, image_info, genes, log)


def fit_spots_to_image(
    spots: pd.DataFrame, filtered: Mapping[str, int], path: str, params: Mapping[str, Any],
    image_info: Mapping[str, Any], genes: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Spots in pixels of the image as read -> the canonical table and its summary.

    Checks them against that image and ``genes`` (``check_spots``, which drops or refuses spots
    off the image as configured), crops them to the region and scales them by the downsampling
    (``crop_spots``), then checks them against the canonical image. Shared by every route in
    (spot tables, SpatialData points).

    Parameters
    ----------
    spots : pandas.DataFrame
        ``gene``, ``x``, ``y`` in pixels of the image as read.
    filtered : Mapping of str to int
        What the reader dropped, by reason.
    path : str
        The source, for messages.
    params : Mapping
        The section's import params: ``name``, ``spots_format``, ``spots_outside_image``,
        ``region``, ``downsample``.
    image_info : Mapping
        import_image's summary (``source_shape``, ``shape``).
    genes : sequence of str
        The configured genes.
    log : callable
        Receives progress lines.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The canonical spots and the summary for ``spots.json``.
    """
    spots, outside = check_spots(spots, image_info["source_shape"], genes, path,
                                 outside=params["spots_outside_image"])
    if outside:
        log(f"dropped {outside} spots outside the image")
    spots, outside_region = crop_spots(spots, params.get("region"), params["downsample"])
    if outside_region:
        log(f"dropped {outside_region} spots outside the section's region {params['region']}")
    spots, _ = check_spots(spots, image_info["shape"], genes, path)
    counts = spots["gene"].value_counts()
    summary = {
        "section": params["name"],
        "spots": str(path),
        "format": params["spots_format"],
        "spots_total": int(len(spots)),
        "spots_per_gene": {g: int(counts.get(g, 0)) for g in genes},
        "genes_in_table": int(len(counts)),
        "filtered": {**filtered, "outside_image": outside, "outside_region": outside_region},
    }
    return spots, summary


# ----------------------------------------------------------------------------- checks


def check_spots(
    spots: pd.DataFrame,
    image_shape: tuple[int, ...],
    genes: Sequence[str],
    path: str | Path,
    outside: str = "error",
) -> tuple[pd.DataFrame, int]:
    """Check a spot table against the config genes and the image.

    Every requested gene must occur in the table, since a class without spots cannot be
    learned. Spots must lie on the image (0 <= x < W, 0 <= y < H, pixels); spots off the image
    almost always mean wrong units (micrometres vs pixels), swapped x/y or the wrong image, so
    by default they are an error; ``outside="drop"`` discards them instead (but all spots, or all
    of a requested gene, off the image is an error either way). The table is not filtered to
    ``genes``.

    Parameters
    ----------
    spots : pandas.DataFrame
        ``gene``, ``x``, ``y``, indexed by data row (for messages).
    image_shape : tuple of int
        (H, W) of the image the coordinates refer to.
    genes : sequence of str
        The configured genes.
    path : str or Path
        The source, for messages.
    outside : str
        "error" or "drop".

    Returns
    -------
    tuple of (pandas.DataFrame, int)
        The spots (without those dropped) and the number dropped.
    """
    where = f"spots file '{path}'"
    if outside not in ("error", "drop"):
        raise InputError(f"config.yaml: '{OUTSIDE_KEY}' is {outside!r}; use 'error' or 'drop'.")
    height, width = int(image_shape[0]), int(image_shape[1])
    _check_genes(spots["gene"].value_counts(), genes, where)
    x, y = spots["x"].to_numpy(), spots["y"].to_numpy()
    off = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    if not (n_off := int(off.sum())):
        return spots, 0
    if outside == "error" or n_off == len(spots):
        first = int(np.flatnonzero(off)[0])
        message = (
            f"{where}: {n_off} of {len(spots)} spots{' (all of them)' if n_off == len(spots) else ''} "
            f"lie outside the image, which is {width} pixels wide (x) and {height} high (y); the "
            f"first is at {describe_row(path, int(spots.index[first]))}: x={x[first]:g}, "
            f"y={y[first]:g}. Spots range over x {x.min():g} to {x.max():g}, y {y.min():g} to "
            f"{y.max():g}. {_units_hint(x, y, width, height)}Spot coordinates must be pixels of "
            "this image (x = column, y = row): check the units (micrometres need dividing by the "
            "pixel size), the x/y columns and that the image belongs to these spots."
        )
        if n_off < len(spots):
            message += (
                f" To discard such spots instead, set '{OUTSIDE_KEY}: drop' for this section "
                "in config.yaml."
            )
        raise InputError(message)
    kept = spots.loc[~off]
    left = kept["gene"].value_counts()
    if emptied := [g for g in genes if left.get(g, 0) == 0]:
        raise InputError(
            f"{where}: after dropping {n_off} spots outside the image, gene(s) "
            f"{', '.join(map(repr, emptied))} have no spots left. Check the spot coordinates "
            f"and the image, or remove these genes from '{GENES_KEY}' in config.yaml."
        )
    return kept, n_off


def _check_genes(counts: pd.Series, genes: Sequence[str], where: str) -> None:
    if not (missing := [g for g in genes if g not in counts.index]):
        return
    present = [str(g) for g in counts.index]
    top = ", ".join(f"{g} ({n})" for g, n in counts.head(10).items())
    message = (
        f"{where}: gene(s) {', '.join(map(repr, missing))} requested in config.yaml are not in "
        f"the gene column ({len(present)} distinct genes). Most frequent genes: {top}."
    )
    hints = []
    for gene in missing:
        folded = [g for g in present if g.lower() == gene.lower()]
        if close := folded or difflib.get_close_matches(gene, present, n=3, cutoff=0.6):
            hints.append(f"{gene!r} -> {' or '.join(map(repr, close))}?")
    if hints:
        message += f" Close matches: {'; '.join(hints)}"
    raise InputError(f"{message} Fix '{GENES_KEY}' in config.yaml (names are case-sensitive).")


def _units_hint(x: np.ndarray, y: np.ndarray, width: int, height: int) -> str:
    """A guess at the cause when all spots would fit once swapped or scaled."""
    if x.min() >= 0 and y.min() >= 0:
        if x.max() < height and y.max() < width and (x.max() >= width or y.max() >= height):
            return "They would fit if x and y were swapped: check the x/y column names. "
        if (ratio := max(x.max() / width, y.max() / height)) > 1.5:
            return f"They reach {ratio:.1f} times the image size: micrometres rather than pixels? "
    return ""


def write_spots(spots: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the canonical spot table: Parquet columns gene (text), x, y (float64).

    In the order of ``spots``, without its index; the columns are written as they are, not
    copied first.

    Parameters
    ----------
    spots : pandas.DataFrame
        ``gene``, ``x``, ``y`` in pixels of the canonical image.
    path : str or os.PathLike
        The Parquet file (rule import_spots writes through ``write_section_spots``).
    """
    frame = pd.DataFrame({"gene": spots["gene"].astype(str), "x": spots["x"], "y": spots["y"]},
                         copy=False)
    frame.to_parquet(path, index=False)


def write_section_spots(spots: pd.DataFrame, summary: Mapping[str, Any], spots_path: str | Path,
                        summary_path: str | Path,
                        log: Callable[[str], None] = lambda message: None) -> None:
    """The import rules' canonical spots: ``spots.parquet`` and its summary ``spots.json``.

    Shared by rules import_spots and import_spatialdata_points; both files are written
    atomically.

    Parameters
    ----------
    spots : pandas.DataFrame
        ``gene``, ``x``, ``y`` in pixels of the canonical image (``fit_spots_to_image``).
    summary : Mapping
        Its summary (``fit_spots_to_image``, completed by the rule), with ``section``.
    spots_path, summary_path : str or Path
        ``results/sections/{s}/spots.parquet`` and ``spots.json``.
    log : callable
        Receives one line with the summary.
    """
    log(f"spots of section {summary['section']}: {json.dumps(summary)}")
    with atomic_path(spots_path) as tmp:
        write_spots(spots, tmp)
    write_summary(summary_path, dict(summary))
