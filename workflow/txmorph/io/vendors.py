"""Read the transcript tables of the common spatial-transcriptomics platforms as image pixels.

``read_spot_table(path, options)`` reads one section's spot table, given that section's config
block, and returns a ``SpotTable``: columns ``gene`` (str), ``x`` (image column), ``y`` (image
row) in pixels of the image as read, the counts of what was dropped and why, and one line for
the log. Formats:

* ``table`` (default): any CSV/TSV/TXT/Parquet with configurable ``columns``, in ``units`` px
  (default) or um; read by ``io.plaintable.read_spots``. Nothing is dropped.
* ``xenium``: 10x Genomics Xenium ``transcripts.parquet`` / ``transcripts.csv.gz``; micrometres.
  Control and unassigned codewords, ``is_gene == False`` and ``qv < min_qv`` are dropped.
* ``merscope``: Vizgen ``detected_transcripts.csv``; micrometres (``global_x``, ``global_y``),
  mapped by the ``micron_to_mosaic_pixel_transform.csv`` when given. ``Blank-*`` dropped.
* ``cosmx``: NanoString/Bruker CosMx ``*_tx_file.csv``; pixels (``x_global_px``, ``y_global_px``,
  or FOV-local pixels plus the ``fov_positions`` file). Negative/system controls dropped.

Micrometres become pixels by ``pixel_size_um`` + ``origin_um`` or by an affine ``transform``;
pixel coordinates (cosmx, table in px) are multiplied by ``image_scale``; see
``txmorph.io.coordinates`` (CosMx FOVs: ``txmorph.io.fovs``).

Vendor tables are read column-selectively and in chunks of ``CHUNK_ROWS`` rows
(``txmorph.io.tables``); rows that are dropped are discarded chunk by chunk and the kept ones are
reduced right away to compact arrays (``io.collector.SpotCollector``), so tens of millions of
transcripts fit in memory. The index of the result is the 0-based data row in the file (see
``io.files.describe_row``), so later checks can still name the line.

At ~450 lines (~390 of code) this module is over the ~400-line guide on purpose: the format list
(``FORMATS``, ``LAYOUTS``), the option checks, the format hints and one short reader per vendor
belong together, so that adding a vendor is one edit in one file (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io import plaintable
from txmorph.io.collector import SpotCollector
from txmorph.io.coordinates import (
    Coordinates,
    config_error,
    finite_number,
    parse_coordinates,
    parse_units,
    scale_pixels,
    um_to_pixels,
)
from txmorph.io.files import existing_file, spots_format
from txmorph.io.fovs import place_fovs
from txmorph.io.plaintable import read_spots
from txmorph.io.tables import (
    drop_blank_rows,
    flag_column,
    gene_text,
    numeric_column,
    present_columns,
    read_chunks,
)

FORMATS = ("table", "xenium", "merscope", "cosmx")
DEFAULT_MIN_QV = 20.0
CHUNK_ROWS = plaintable.CHUNK_ROWS  # rows per chunk of a vendor table (module global: tests shrink it)

XENIUM_CONTROLS = (
    "NegControlProbe_",
    "NegControlCodeword_",
    "UnassignedCodeword_",
    "DeprecatedCodeword_",
    "Intergenic_",
    "BLANK_",
)
MERSCOPE_CONTROLS = ("Blank-",)
COSMX_CONTROLS = ("NegPrb", "Negative", "SystemControl", "FalseCode")
NEGATIVE = "negative_controls"  # filtered key: control / blank / unassigned codewords
NOT_GENES = "not_genes"  # filtered key: Xenium is_gene == False (not already a control)
LOW_QUALITY = "low_quality"  # filtered key: Xenium qv < min_qv


@dataclass(frozen=True)
class SpotTable:
    """One section's spots in pixels of its image, with what was dropped on the way."""

    spots: pd.DataFrame  # gene (str), x = image column, y = image row (float64); index = data row
    filtered: dict[str, int]  # reason -> number of spots dropped, e.g. {"low_quality": 340}
    description: str  # one line for the log: format, file, conversion used


@dataclass(frozen=True)
class _Layout:
    """A vendor's documented transcript-table layout."""

    vendor: str
    doc: str  # where users find the layout documented
    gene: str
    x: str
    y: str
    columns: tuple[str, ...]  # the documented columns, listed in messages
    controls: tuple[str, ...]  # gene-name prefixes of non-gene codewords (case-insensitive)
    units: str


XENIUM = _Layout(
    "Xenium",
    "10x Genomics Xenium Onboard Analysis output 'transcripts.parquet' (or transcripts.csv.gz)",
    "feature_name", "x_location", "y_location",
    ("transcript_id", "cell_id", "overlaps_nucleus", "feature_name", "x_location", "y_location",
     "z_location", "qv"),
    XENIUM_CONTROLS, "um",
)
MERSCOPE = _Layout(
    "MERSCOPE",
    "Vizgen MERSCOPE output 'detected_transcripts.csv'",
    "gene", "global_x", "global_y",
    ("barcode_id", "global_x", "global_y", "global_z", "x", "y", "fov", "gene", "transcript_id",
     "cell_id"),
    MERSCOPE_CONTROLS, "um",
)
COSMX = _Layout(
    "CosMx",
    "NanoString/Bruker CosMx SMI flat-file export '*_tx_file.csv'",
    "target", "x_global_px", "y_global_px",
    ("fov", "cell_ID", "x_global_px", "y_global_px", "x_local_px", "y_local_px", "z", "target",
     "CellComp"),
    COSMX_CONTROLS, "px",
)
LAYOUTS = {"xenium": XENIUM, "merscope": MERSCOPE, "cosmx": COSMX}


@dataclass(frozen=True)
class _Options:
    format: str
    units: str | None  # None: not given
    columns: dict[str, str]
    coords: Coordinates  # pixel_size_um, origin_um, transform, image_scale
    min_qv: Any
    fov_positions: Any


# ----------------------------------------------------------------------------- entry point


def read_spot_table(path: str | Path, options: Mapping[str, Any]) -> SpotTable:
    """Read a section's spot table as pixels of its image (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The spot table.
    options : Mapping
        The section's config block as ``io.spots.spot_options`` makes it: ``format``,
        ``columns`` (format table), ``units``, ``pixel_size_um``, ``origin_um``, ``transform``,
        ``min_qv``, ``fov_positions``, ``image_scale``; unrelated keys are ignored.

    Returns
    -------
    SpotTable
        ``gene``, ``x``, ``y`` in pixels of the image as read, what was dropped, a log line.

    Raises
    ------
    InputError
        For every problem the user can fix, naming the file and what to do.
    """
    where = f"spots file '{path}'"
    opts = _parse_options(options, where)
    if opts.format == "table":
        return _read_table(path, opts, where)
    p = existing_file(path, where, "spots")
    spots_format(p)  # refuses unsupported file types up front
    if opts.format == "xenium":
        return _read_xenium(p, opts, where)
    if opts.format == "merscope":
        return _read_merscope(p, opts, where)
    return _read_cosmx(p, opts, where)


# ----------------------------------------------------------------------------- options


def _given(options: Mapping[str, Any], key: str) -> bool:
    return options.get(key) is not None


def _parse_options(options: Mapping[str, Any], where: str) -> _Options:
    fmt = options.get("format")
    fmt = "table" if fmt is None else str(fmt).strip().lower()
    if fmt not in FORMATS:
        raise config_error(
            where, f"'spots_format' is {options.get('format')!r}; use one of {', '.join(FORMATS)} "
            "(table: a plain table with 'columns' and 'units'; the others read the vendor's "
            "own transcript file)."
        )
    units = parse_units(options.get("units"), where)
    # No defaults here: the validated config carries the schema's (columns: gene, x, y).
    columns: dict[str, str] = {}
    if _given(options, "columns"):
        given = options["columns"]
        if not isinstance(given, Mapping):
            raise config_error(where, "'columns' must map gene, x and y to column names.")
        columns = {k: str(v) for k, v in given.items() if v is not None}
    if fmt != "table" and any(column != role for role, column in columns.items()):
        raise config_error(
            where, f"'columns' applies only to 'spots_format: table'; the {LAYOUTS[fmt].vendor} "
            "layout is fixed. Remove 'columns', or convert the file and use 'spots_format: table'."
        )

    coords = parse_coordinates(options, where)
    if _given(options, "fov_positions") and fmt != "cosmx":
        raise config_error(
            where, f"'fov_positions' applies only to 'spots_format: cosmx' (this section has spots_format "
            f"{fmt}). Remove it."
        )
    return _Options(
        format=fmt, units=units, columns=columns, coords=coords,
        min_qv=options.get("min_qv"), fov_positions=options.get("fov_positions"),
    )


# ----------------------------------------------------------------------------- table format


def _read_table(path: str | Path, opts: _Options, where: str) -> SpotTable:
    spots = read_spots(path, opts.columns)
    names = ", ".join(f"{role}={opts.columns[role]}" for role in plaintable.ROLES)
    if (opts.units or "px") == "um":
        spots, how = um_to_pixels(spots, opts.coords, where)
    else:
        spots, how = scale_pixels(spots, opts.coords, where, "the coordinates ('units: px')")
    return SpotTable(spots, {}, f"table {where} (columns {names}): {len(spots)} spots; {how}")


# ----------------------------------------------------------------------------- vendor tables


def _looks_like(present: Sequence[str]) -> tuple[str | None, str]:
    """(format, hint) when the columns look like a known table, else (None, "")."""
    s = set(present)
    if {"feature_name", "x_location", "y_location"} <= s:
        return "xenium", "The columns look like a Xenium transcripts table: set 'spots_format: xenium'."
    if {"global_x", "global_y"} <= s:
        return "merscope", (
            "The columns look like a MERSCOPE detected_transcripts.csv: set 'spots_format: merscope'."
        )
    if {"barcode_id", "gene", "fov"} <= s:
        return "merscope", (
            "The columns look like a MERSCOPE detected_transcripts.csv: set 'spots_format: merscope'."
        )
    if "target" in s and ({"x_global_px", "x_local_px"} & s):
        return "cosmx", "The columns look like a CosMx *_tx_file.csv: set 'spots_format: cosmx'."
    if {"x_centroid", "y_centroid"} <= s:
        return None, (
            "This looks like a Xenium cell table (cells.parquet), not the transcripts: use "
            "transcripts.parquet from the same output folder."
        )
    if {"center_x", "center_y"} <= s:
        return None, (
            "This looks like a MERSCOPE cell_metadata.csv, not the transcripts: use "
            "detected_transcripts.csv from the same output folder."
        )
    if any(c.lower().startswith("centerx") for c in s):
        return None, (
            "This looks like a CosMx *_metadata_file.csv (cells), not the transcripts: use the "
            "*_tx_file.csv of the same export."
        )
    if {"gene", "x", "y"} <= s:
        return "table", (
            "This looks like a plain gene/x/y table: set 'spots_format: table' (with 'units')."
        )
    return None, ""


def _require(present: Sequence[str], wanted: Sequence[str], layout: _Layout, fmt: str, where: str,
             extra: str = "") -> None:
    """InputError listing present and expected columns when any of ``wanted`` is missing."""
    if not (missing := [c for c in wanted if c not in present]):
        return
    listed = ", ".join(repr(c) for c in present[:30]) + (" ..." if len(present) > 30 else "")
    message = (
        f"{where}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} not "
        f"found, which 'spots_format: {fmt}' needs. Expected the columns of the {layout.doc}: "
        f"{', '.join(layout.columns)}. The file has column{'s' if len(present) != 1 else ''}: "
        f"{listed}."
    )
    for name in missing if len(present) > 1 else []:
        folded = [c for c in present if c.strip().lower() == name.lower()]
        others = [c for c in present if c not in layout.columns]  # a documented column is no typo
        if close := folded or difflib.get_close_matches(name, others, n=2, cutoff=0.7):
            message += f" For {name!r} did you mean {' or '.join(map(repr, close))}?"
    if len(present) == 1 and any(s in present[0] for s in ",\t;"):
        message += " Only one column was found: the separator does not match the file's name."
    guess, hint = _looks_like(present)
    if hint and guess != fmt:
        message += f" {hint}"
    raise InputError(f"{message}{extra}")


def _has_prefix(gene: pd.Series, prefixes: Sequence[str]) -> np.ndarray:
    lowered = gene.fillna("").astype(str).str.strip().str.lower()
    return lowered.str.startswith(tuple(p.lower() for p in prefixes)).to_numpy(dtype=bool)


def _collect(
    p: Path, where: str, layout: _Layout, columns: list[str], names: dict[str, str], drop,
    filtered: dict[str, int], extra: Sequence[str] = (),
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Read ``columns`` chunk by chunk; returns the gene/x/y table (``names``: role -> column)
    of the rows that none of ``drop(chunk)``'s {reason: mask} drops, counting the dropped ones
    into ``filtered``, and the ``extra`` columns of those rows. Each chunk is reduced to compact
    arrays right away (``io.collector.SpotCollector``), so memory does not grow with the table's text.
    """
    kept, total = SpotCollector(names, p, where, extra), 0
    for chunk in read_chunks(p, where, columns, [layout.gene], CHUNK_ROWS):
        chunk = drop_blank_rows(chunk)
        if chunk.empty:
            continue
        total += len(chunk)
        chunk[layout.gene] = gene_text(chunk[layout.gene])
        dropped = np.zeros(len(chunk), dtype=bool)
        for reason, mask in drop(chunk).items():
            mask = mask & ~dropped  # each spot counted once, under its first reason
            filtered[reason] += int(mask.sum())
            dropped |= mask
        kept.add(chunk.loc[~dropped] if dropped.any() else chunk)
    if total == 0:
        raise InputError(
            f"{where}: the table has no data rows (only a header). Is it the right file?"
        )
    if sum(filtered.values()) == total:
        reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in filtered.items() if n)
        raise InputError(
            f"{where}: all {total} transcripts were dropped ({reasons}); none is left to use. "
            "Is it the right file? For Xenium, check 'min_qv'."
        )
    return kept.finish()


def _describe_filtered(filtered: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in filtered.items()) or "nothing"


def _read_xenium(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = XENIUM
    min_qv = DEFAULT_MIN_QV if opts.min_qv is None else finite_number(opts.min_qv)
    if min_qv is None:
        raise config_error(where, f"'min_qv' is {opts.min_qv!r}; give a number (default 20).")
    present = present_columns(p, where)
    _require(present, [layout.gene, layout.x, layout.y, "qv"], layout, opts.format, where)
    columns = [layout.gene, layout.x, layout.y, "qv"]
    has_is_gene = "is_gene" in present
    columns += ["is_gene"] if has_is_gene else []
    filtered = {NEGATIVE: 0, NOT_GENES: 0, LOW_QUALITY: 0}

    def drop(chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        gene = chunk[layout.gene]
        # CSVs written from an old Parquet with bytes names hold "b'ACTB'": unwrap those.
        text = gene.fillna("").astype(str)
        if len(text) and text.iloc[0].startswith("b'") and text.str.fullmatch(r"b'.*'").all():
            chunk[layout.gene] = text.str.slice(2, -1)
        qv = numeric_column(chunk, "qv", p, where)
        return {
            NEGATIVE: _has_prefix(chunk[layout.gene], layout.controls),
            NOT_GENES: (
                ~flag_column(chunk, "is_gene", p, where) if has_is_gene
                else np.zeros(len(chunk), bool)
            ),
            LOW_QUALITY: qv < min_qv,
        }

    return _micrometre_table(p, opts, where, layout, columns, drop, filtered,
                             f" (min_qv {min_qv:g})")


def _read_merscope(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = MERSCOPE
    present = present_columns(p, where)
    extra = ""
    if "global_x" not in present and {"x", "y"} <= set(present):
        extra = (
            " Its 'x' and 'y' are pixels within each field of view, not mosaic positions, so "
            "they cannot be used; re-export detected_transcripts.csv with global_x/global_y."
        )
    _require(present, [layout.gene, layout.x, layout.y], layout, opts.format, where, extra)
    filtered = {NEGATIVE: 0}

    def drop(chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        return {NEGATIVE: _has_prefix(chunk[layout.gene], layout.controls)}

    return _micrometre_table(p, opts, where, layout, [layout.gene, layout.x, layout.y], drop,
                             filtered)


def _micrometre_table(p: Path, opts: _Options, where: str, layout: _Layout, columns: list[str],
                      drop: Any, filtered: dict[str, int], note: str = "") -> SpotTable:
    """Collect, check and convert a vendor table in micrometres (Xenium, MERSCOPE)."""
    names = {"gene": layout.gene, "x": layout.x, "y": layout.y}
    spots, _ = _collect(p, where, layout, columns, names, drop, filtered)
    spots, how = um_to_pixels(spots, opts.coords, where)
    return SpotTable(spots, filtered, (
        f"{opts.format} {where}: {len(spots)} transcripts kept, dropped "
        f"{_describe_filtered(filtered)}{note}; {how}"
    ))


def _read_cosmx(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = COSMX
    present = present_columns(p, where)
    has_global = {"x_global_px", "y_global_px"} <= set(present)
    local = {"x_local_px", "y_local_px", "fov"} <= set(present)
    if has_global:
        x, y, columns = "x_global_px", "y_global_px", [layout.gene, "x_global_px", "y_global_px"]
    elif local:
        x, y, columns = "x_local_px", "y_local_px", [layout.gene, "x_local_px", "y_local_px", "fov"]
        if opts.fov_positions is None:
            raise config_error(
                where, "this CosMx file has only FOV-local coordinates (x_local_px, y_local_px, "
                "fov), no x_global_px/y_global_px. Set 'fov_positions' to the "
                "*_fov_positions_file.csv of the same export (columns fov, x_global_px, "
                "y_global_px) so the FOVs can be placed in the image."
            )
    else:
        x, y, columns = "x_global_px", "y_global_px", [layout.gene, "x_global_px", "y_global_px"]
    _require(present, columns, layout, opts.format, where, extra=(
        " CosMx spot positions are x_global_px, y_global_px, or x_local_px, y_local_px and fov "
        "together with 'fov_positions'."
    ))
    filtered = {NEGATIVE: 0}

    def drop(chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        return {NEGATIVE: _has_prefix(chunk[layout.gene], layout.controls)}

    spots, extra = _collect(p, where, layout, columns, {"gene": layout.gene, "x": x, "y": y},
                            drop, filtered, extra=[] if has_global else ["fov"])
    if has_global:
        placed = "x_global_px/y_global_px"
        placed += " (fov_positions not needed, ignored)" if opts.fov_positions is not None else ""
    else:
        spots, placed = place_fovs(
            spots, extra["fov"], p, opts.fov_positions, opts.coords, where
        )
    spots, how = scale_pixels(spots, opts.coords, where, "CosMx coordinates")
    return SpotTable(spots, filtered, (
        f"cosmx {where}: {len(spots)} transcripts kept, dropped {_describe_filtered(filtered)}; "
        f"{placed}; {how}"
    ))

