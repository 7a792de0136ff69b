"""One tissue section as the rules see it: its checked image and spot table."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from txmorph.inputs import check_spots, read_spots
from txmorph.vendors import read_spot_table


def load_spots(
    spots_path: str, params: Mapping[str, Any], image_shape: tuple[int, int], genes: Sequence[str]
) -> tuple[pd.DataFrame, int]:
    """Read and check a section's spots against its image shape; returns (spots, dropped)."""
    spots = read_spots(spots_path, params["columns"])
    return check_spots(spots, image_shape, genes, spots_path, outside=params["spots_outside_image"])


def spots_by_gene(spots: pd.DataFrame, genes: Sequence[str]) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each gene's spots, in the order of ``genes``."""
    return {
        gene: spots.loc[spots["gene"] == gene, ["x", "y"]].to_numpy(np.float64) for gene in genes
    }


def spots_by_class(
    spots: pd.DataFrame, groups: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each class's spots (the spots of all its genes), in the order of
    ``groups`` (``{class name: [genes]}``; a single gene is ``{gene: [gene]}``)."""
    return {
        name: spots.loc[spots["gene"].isin(list(genes)), ["x", "y"]].to_numpy(np.float64)
        for name, genes in groups.items()
    }


def spot_options(params: Mapping[str, Any], level_scale: float) -> dict[str, Any]:
    """The ``txmorph.vendors.read_spot_table`` options of a section (its rule params).

    Coordinates come out in pixels of the image as read at its pyramid level: micrometres
    through ``pixel_size_um`` (already per pixel of that level), and pixel coordinates or a
    transform (which refer to the full-resolution image) scaled by the level's ``level_scale``.
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
    """Spots inside ``region`` (x/y ranges, pixels), shifted and divided by ``downsample``.

    Returns the spots in pixels of the canonical image and how many lay outside the region.
    A spot at continuous position x belongs to source pixel ``floor(x)``, hence to
    downsampled pixel ``floor(x / f)``: dividing keeps it in the block it was averaged into.
    The input is not modified (the result may share its columns).
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
    checks it against that image and ``genes`` (``inputs.check_spots``, which drops or refuses
    spots off the image as configured), then crops it to the section's region and scales it
    by the downsampling (``crop_spots``). ``image_info`` is import_image's summary.
    """
    table = read_spot_table(path, spot_options(params, image_info["level_scale"]))
    log(table.description)
    return fit_spots_to_image(table.spots, table.filtered, path, params, image_info, genes, log)


def fit_spots_to_image(
    spots: pd.DataFrame, filtered: Mapping[str, int], path: str, params: Mapping[str, Any],
    image_info: Mapping[str, Any], genes: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Spots in pixels of the image as read (``gene``, ``x``, ``y``) -> the canonical table
    and its summary: checked against that image and ``genes``, cropped to the region, scaled
    by the downsampling. Shared by every route in (spot tables, SpatialData points);
    ``filtered`` counts what the reader dropped."""
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


def write_spots(spots: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the canonical spot table (rule import_spots): Parquet columns gene (text), x, y
    (float64), in the order of ``spots``, without its index. The columns are written as they
    are, not copied first."""
    frame = pd.DataFrame({"gene": spots["gene"].astype(str), "x": spots["x"], "y": spots["y"]},
                         copy=False)
    frame.to_parquet(path, index=False)
