"""Read the transcript tables of the common spatial-transcriptomics platforms as image pixels.

``read_spot_table(path, options)`` reads one section's spot table, given that section's config
block, and returns a ``SpotTable``: columns ``gene`` (str), ``x`` (image column), ``y`` (image
row) in pixels of the image as read, the counts of what was dropped and why, and one line for
the log. Formats:

* ``table`` (default): any CSV/TSV/TXT/Parquet with configurable ``columns``, in ``units`` px
  (default) or um; read by ``inputs.read_spots``. Nothing is dropped.
* ``xenium``: 10x Genomics Xenium ``transcripts.parquet`` / ``transcripts.csv.gz``; micrometres.
  Control and unassigned codewords, ``is_gene == False`` and ``qv < min_qv`` are dropped.
* ``merscope``: Vizgen ``detected_transcripts.csv``; micrometres (``global_x``, ``global_y``),
  mapped by the ``micron_to_mosaic_pixel_transform.csv`` when given. ``Blank-*`` dropped.
* ``cosmx``: NanoString/Bruker CosMx ``*_tx_file.csv``; pixels (``x_global_px``, ``y_global_px``,
  or FOV-local pixels plus the ``fov_positions`` file). Negative/system controls dropped.

Micrometres become pixels either by ``pixel = (um - origin_um) / pixel_size_um`` or, when a
``transform`` (3x3 affine, um -> pixels of the frame it was made for) is given, by
``pixel = image_scale * (A @ [x_um, y_um, 1])``. Pixel coordinates (cosmx, table in px) are
multiplied by ``image_scale`` (pixels of the image as read per pixel of the coordinates' frame).
``pixel_size_um`` is always the micrometres per pixel of the image *as read*, so it already
includes any downsampling; ``image_scale`` therefore does not apply to the pixel-size route and
is refused there rather than applied twice.

Vendor tables are read column-selectively (Parquet ``columns=``, CSV ``usecols=``) and in chunks
of ``CHUNK_ROWS`` rows; rows that are dropped are discarded chunk by chunk, so tens of millions
of transcripts fit in memory. The index of the result is the 0-based data row in the file (see
``inputs.describe_row``), so later checks can still name the line.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph import inputs
from txmorph.errors import InputError
from txmorph.inputs import (
    _bad_rows,
    _blank,
    _clean_spots,
    _existing_file,
    _first_line,
    _unreadable,
    read_spots,
    spots_format,
)

FORMATS = ("table", "xenium", "merscope", "cosmx")
UNITS = ("px", "um")
UNIT_ALIASES = {"px": "px", "pixel": "px", "pixels": "px", "um": "um", "µm": "um", "μm": "um"}
DEFAULT_COLUMNS = {"gene": "gene", "x": "x", "y": "y"}
DEFAULT_MIN_QV = 20.0
CHUNK_ROWS = inputs.CHUNK_ROWS  # rows per chunk of a vendor table (module global: tests shrink it)
TRANSFORM_ATOL = 1e-6  # tolerance on the last row (0, 0, 1) of an affine matrix
MAX_CONDITION = 1e12  # a transform's 2x2 part with a larger condition number counts as singular
PIXEL_SIZE_RTOL = 0.10  # allowed mismatch of pixel_size_um and the one a transform implies

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
    pixel_size_um: float | None  # None: not given (or not a positive number, see pixel_size_raw)
    pixel_size_raw: Any
    origin_um: tuple[float, float]
    transform: Any  # None, a path or an inline matrix (parsed later)
    image_scale: float
    min_qv: Any
    fov_positions: Any


# ----------------------------------------------------------------------------- entry point


def read_spot_table(path: str | Path, options: Mapping[str, Any]) -> SpotTable:
    """Read a section's spot table as pixels of its image (see the module docstring).

    ``options`` is the section's config block; unrelated keys (image, role, ...) are ignored.
    Every problem the user can fix is an ``InputError`` naming the file and what to do.
    """
    where = f"spots file '{path}'"
    opts = _parse_options(options, where)
    if opts.format == "table":
        return _read_table(path, opts, where)
    p = _existing_file(path, where, "spots")
    spots_format(p)  # refuses unsupported file types up front
    if opts.format == "xenium":
        return _read_xenium(p, opts, where)
    if opts.format == "merscope":
        return _read_merscope(p, opts, where)
    return _read_cosmx(p, opts, where)


# ----------------------------------------------------------------------------- options


def _config_error(where: str, text: str) -> InputError:
    return InputError(f"config.yaml, section with {where}: {text}")


def _given(options: Mapping[str, Any], key: str) -> bool:
    return options.get(key) is not None


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _parse_options(options: Mapping[str, Any], where: str) -> _Options:
    fmt = options.get("format")
    fmt = "table" if fmt is None else str(fmt).strip().lower()
    if fmt not in FORMATS:
        raise _config_error(
            where, f"'format' is {options.get('format')!r}; use one of {', '.join(FORMATS)} "
            "(table: a plain table with 'columns' and 'units'; the others read the vendor's "
            "own transcript file)."
        )
    units = options.get("units")
    if units is not None:
        if (key := str(units).strip().lower()) not in UNIT_ALIASES:
            raise _config_error(
                where, f"'units' is {units!r}; use one of {', '.join(UNITS)} (pixels of the image, "
                "or micrometres, converted with pixel_size_um or a transform)."
            )
        units = UNIT_ALIASES[key]
    columns = dict(DEFAULT_COLUMNS)
    if _given(options, "columns"):
        given = options["columns"]
        if not isinstance(given, Mapping):
            raise _config_error(where, "'columns' must map gene, x and y to column names.")
        columns.update({k: str(v) for k, v in given.items() if v is not None})
    if fmt != "table" and columns != DEFAULT_COLUMNS:
        raise _config_error(
            where, f"'columns' applies only to 'format: table'; the {LAYOUTS[fmt].vendor} "
            "layout is fixed. Remove 'columns', or convert the file and use 'format: table'."
        )

    raw_size = options.get("pixel_size_um")
    size = _number(raw_size)
    origin = options.get("origin_um")
    if origin is None:
        origin_xy = (0.0, 0.0)
    else:
        values = [_number(v) for v in origin] if isinstance(origin, Sequence) and not isinstance(
            origin, str) else []
        if len(values) != 2 or any(v is None for v in values):
            raise _config_error(
                where, f"'origin_um' is {origin!r}; give two finite numbers [x0, y0]: the "
                "micrometre position of the image's pixel (0, 0) corner."
            )
        origin_xy = (float(values[0]), float(values[1]))
    scale_raw = options.get("image_scale")
    scale = 1.0 if scale_raw is None else _number(scale_raw)
    if scale is None or scale <= 0:
        raise _config_error(
            where, f"'image_scale' is {scale_raw!r}; give a positive number: pixels of the image "
            "as read per pixel of the coordinates (e.g. 0.25 for an image downsampled by 4)."
        )
    if _given(options, "fov_positions") and fmt != "cosmx":
        raise _config_error(
            where, f"'fov_positions' applies only to 'format: cosmx' (this section has format "
            f"{fmt}). Remove it."
        )
    return _Options(
        format=fmt, units=units, columns=columns,
        pixel_size_um=size if size is not None and size > 0 else None, pixel_size_raw=raw_size,
        origin_um=origin_xy, transform=options.get("transform"), image_scale=scale,
        min_qv=options.get("min_qv"), fov_positions=options.get("fov_positions"),
    )


# ----------------------------------------------------------------------------- conversion


def _um_to_pixels(spots: pd.DataFrame, opts: _Options, where: str) -> tuple[pd.DataFrame, str]:
    """Micrometres -> pixels of the image as read; returns the table and how it was done."""
    if opts.transform is not None:
        if opts.origin_um != (0.0, 0.0):
            raise _config_error(
                where, f"'origin_um' {list(opts.origin_um)} and a 'transform' are both given; the "
                "transform already contains the offset. Remove 'origin_um'."
            )
        matrix, source = _read_transform(opts.transform, where)
        _check_pixel_size(matrix, opts, source, where)
        x, y = spots["x"].to_numpy(), spots["y"].to_numpy()
        px = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) * opts.image_scale
        py = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) * opts.image_scale
        rows = "; ".join(" ".join(f"{v:.6g}" for v in row) for row in matrix[:2])
        how = f"um -> px by the affine transform {source} [{rows}]"
        how += f" x image_scale {opts.image_scale:g}" if opts.image_scale != 1 else ""
        return spots.assign(x=px, y=py), how
    if opts.pixel_size_um is None:
        raise _config_error(
            where, f"the coordinates are micrometres but 'pixel_size_um' is "
            f"{opts.pixel_size_raw!r}; set it to the micrometres per pixel of the image as read "
            "(e.g. 0.2125 for a full-resolution Xenium morphology image), or give a 'transform'."
        )
    if opts.image_scale != 1:
        raise _config_error(
            where, f"'image_scale' {opts.image_scale:g} does not apply when micrometres are "
            "converted with 'pixel_size_um', which is already the micrometres per pixel of the "
            f"image as read (e.g. {opts.pixel_size_um:g} / {opts.image_scale:g} = "
            f"{opts.pixel_size_um / opts.image_scale:g} if pixel_size_um is that of the full "
            "resolution). Remove 'image_scale' and set pixel_size_um accordingly, or give a "
            "'transform' for image_scale to act on."
        )
    x0, y0 = opts.origin_um
    px = (spots["x"].to_numpy() - x0) / opts.pixel_size_um
    py = (spots["y"].to_numpy() - y0) / opts.pixel_size_um
    how = f"um -> px: (um - origin ({x0:g}, {y0:g})) / pixel_size_um {opts.pixel_size_um:g}"
    return spots.assign(x=px, y=py), how


def _scale_pixels(
    spots: pd.DataFrame, opts: _Options, where: str, what: str
) -> tuple[pd.DataFrame, str]:
    """Pixel coordinates -> pixels of the image as read (only image_scale applies)."""
    if opts.transform is not None:
        raise _config_error(
            where, f"a 'transform' maps micrometres to pixels, but {what} are already pixels. "
            "Remove 'transform' (use 'image_scale' if the image is downsampled)."
        )
    if opts.origin_um != (0.0, 0.0):
        raise _config_error(
            where, f"'origin_um' {list(opts.origin_um)} applies to micrometre coordinates, but "
            f"{what} are pixels. Remove 'origin_um'."
        )
    if opts.image_scale == 1:
        return spots, "pixels as given"
    return (
        spots.assign(x=spots["x"].to_numpy() * opts.image_scale,
                     y=spots["y"].to_numpy() * opts.image_scale),
        f"pixels x image_scale {opts.image_scale:g}",
    )


def _check_pixel_size(matrix: np.ndarray, opts: _Options, source: str, where: str) -> None:
    """pixel_size_um (used for every micrometre setting downstream) must match the transform."""
    if opts.pixel_size_um is None:
        return
    per_um = math.sqrt(abs(float(np.linalg.det(matrix[:2, :2])))) * opts.image_scale
    implied = 1.0 / per_um
    if abs(opts.pixel_size_um / implied - 1.0) > PIXEL_SIZE_RTOL:
        raise _config_error(
            where, f"the transform {source} with image_scale {opts.image_scale:g} makes "
            f"{per_um:.6g} pixels of the image per micrometre, i.e. {implied:.6g} um per pixel, "
            f"but 'pixel_size_um' is {opts.pixel_size_um:g}. Set pixel_size_um to {implied:.6g} "
            "(other micrometre settings use it), or check the transform file and image_scale "
            "(e.g. 0.25 if the image is the mosaic downsampled by 4)."
        )


def _read_transform(value: Any, where: str) -> tuple[np.ndarray, str]:
    """The 3x3 affine matrix from a file path or an inline 2x3/3x3 list; checked."""
    if isinstance(value, (str, PathLike)):
        source = f"file '{value}'"
        tw = f"transform file '{value}' (of the section with {where})"
        p = Path(value)
        if not p.exists():
            raise InputError(f"{tw}: not found. Check the 'transform' path in config.yaml.")
        if not p.is_file():
            raise InputError(f"{tw}: is a directory, not a file. Point 'transform' to a file.")
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise _unreadable(tw, error) from error
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not (line := line.strip()) or line.startswith("#"):
                continue
            fields = [f for f in re.split(r"[\s,;]+", line) if f]
            try:
                rows.append([float(f) for f in fields])
            except ValueError:
                bad = next(f for f in fields if not _is_float(f))
                raise InputError(
                    f"{tw}: line {number}: {bad!r} is not a number. The file must hold 3 rows of "
                    "3 numbers separated by spaces or commas (e.g. MERSCOPE's "
                    "micron_to_mosaic_pixel_transform.csv), nothing else."
                ) from None
        shape = sorted({len(r) for r in rows})
        if len(rows) != 3 or shape != [3]:
            found = f"{len(rows)} row{'s' if len(rows) != 1 else ''}" + (
                f" of {'/'.join(map(str, shape))} numbers" if rows else ""
            )
            raise InputError(
                f"{tw}: expected a 3x3 affine matrix (3 rows of 3 numbers, as in MERSCOPE's "
                f"micron_to_mosaic_pixel_transform.csv), found {found}."
            )
        matrix = np.asarray(rows, dtype=np.float64)
    else:
        source = "given inline"
        tw = f"config.yaml, section with {where}: the inline 'transform'"
        value = value.tolist() if isinstance(value, np.ndarray) else value
        listed = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
        rows = value if listed else None
        ok = rows is not None and all(
            isinstance(r, Sequence) and not isinstance(r, (str, bytes)) for r in rows
        )
        numbers = [[_number(v) for v in r] for r in rows] if ok else []
        ok = ok and len(numbers) in (2, 3) and all(len(r) == 3 for r in numbers)
        if not ok or any(v is None for r in numbers for v in r):
            raise InputError(
                f"{tw} is {value!r}; give a 2x3 or 3x3 matrix of finite numbers (a list of rows) "
                "mapping micrometres to pixels, or the path of a transform file."
            )
        if len(numbers) == 2:
            numbers.append([0.0, 0.0, 1.0])
        matrix = np.asarray(numbers, dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise InputError(f"{tw}: contains non-finite numbers (nan/inf). Re-export the transform.")
    if not np.allclose(matrix[2], (0.0, 0.0, 1.0), rtol=0, atol=TRANSFORM_ATOL):
        raise InputError(
            f"{tw}: the last row is {' '.join(f'{v:g}' for v in matrix[2])}, but an affine "
            "transform's last row must be 0 0 1. Is it the right file (not transposed)?"
        )
    if not np.isfinite(cond := np.linalg.cond(matrix[:2, :2])) or cond > MAX_CONDITION:
        raise InputError(
            f"{tw}: the matrix is singular (not invertible): it would map the spots onto a line "
            "or a point. Check the transform."
        )
    return matrix, source


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- table format


def _read_table(path: str | Path, opts: _Options, where: str) -> SpotTable:
    spots = read_spots(path, opts.columns)
    names = ", ".join(f"{role}={opts.columns[role]}" for role in inputs.ROLES)
    if (opts.units or "px") == "um":
        spots, how = _um_to_pixels(spots, opts, where)
    else:
        spots, how = _scale_pixels(spots, opts, where, "the coordinates ('units: px')")
    return SpotTable(spots, {}, f"table {where} (columns {names}): {len(spots)} spots; {how}")


# ----------------------------------------------------------------------------- vendor tables


def _text_options(p: Path, where: str) -> dict[str, Any]:
    first, compression = _first_line(p, where)
    if not first.strip():
        raise InputError(
            f"{where}: the file is empty or its first line is blank. The first line must be the "
            "header naming the columns."
        )
    kind = spots_format(p)
    if kind in ("csv", "tsv"):
        sep = "," if kind == "csv" else "\t"
    else:
        best = max(("\t", ",", ";"), key=first.count)
        sep = best if first.count(best) else r"\s+"
    return dict(sep=sep, compression=compression, encoding="utf-8-sig", encoding_errors="replace")


def _present_columns(p: Path, where: str) -> list[str]:
    if spots_format(p) == "parquet":
        import pyarrow.parquet as pq

        try:
            return [str(c) for c in pq.read_schema(p).names]
        except Exception as error:
            raise _unreadable(where, error, "read as Parquet") from error
    try:
        header = pd.read_csv(p, nrows=0, **_text_options(p, where))
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise _unreadable(where, error) from error
    return [str(c) for c in header.columns]


def _parse_error(where: str, sep: str, error: Exception) -> InputError:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    detail = (
        f"line {found[2]} has {found[3]} fields but the header has {found[1]}" if found else error
    )
    return InputError(
        f"{where}: could not be parsed as a {'tab' if sep == chr(9) else repr(sep)}-separated "
        f"table: {detail}. The file may be truncated or corrupt; re-export or re-copy it."
    )


def _chunks(
    p: Path, where: str, columns: list[str], text_columns: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """The file's ``columns`` in chunks of CHUNK_ROWS rows; index = 0-based data row.

    ``text_columns`` are read as strings. All-blank rows are kept (row numbers stay file line
    numbers); the caller drops them.
    """
    if spots_format(p) == "parquet":
        import pyarrow.parquet as pq

        try:
            source = pq.ParquetFile(p)
            offset = 0
            for batch in source.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                offset += len(frame)
                yield frame[columns]
        except (OSError, ValueError, RuntimeError) as error:  # pyarrow's errors derive from these
            raise _unreadable(where, error, "read as Parquet") from error
        return
    options = _text_options(p, where)
    try:
        reader = pd.read_csv(
            p, usecols=columns, dtype={c: str for c in text_columns}, keep_default_na=False,
            skip_blank_lines=False, index_col=False, chunksize=CHUNK_ROWS, **options,
        )
        with reader:
            while True:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", pd.errors.ParserWarning)
                    try:
                        chunk = reader.get_chunk()
                    except StopIteration:
                        return
                yield chunk[columns]
    except pd.errors.ParserError as error:
        raise _parse_error(where, options["sep"], error) from error
    except (OSError, EOFError, pd.errors.EmptyDataError) as error:
        raise _unreadable(where, error) from error


def _looks_like(present: Sequence[str]) -> tuple[str | None, str]:
    """(format, hint) when the columns look like a known table, else (None, "")."""
    s = set(present)
    if {"feature_name", "x_location", "y_location"} <= s:
        return "xenium", "The columns look like a Xenium transcripts table: set 'format: xenium'."
    if {"global_x", "global_y"} <= s:
        return "merscope", (
            "The columns look like a MERSCOPE detected_transcripts.csv: set 'format: merscope'."
        )
    if {"barcode_id", "gene", "fov"} <= s:
        return "merscope", (
            "The columns look like a MERSCOPE detected_transcripts.csv: set 'format: merscope'."
        )
    if "target" in s and ({"x_global_px", "x_local_px"} & s):
        return "cosmx", "The columns look like a CosMx *_tx_file.csv: set 'format: cosmx'."
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
            "This looks like a plain gene/x/y table: set 'format: table' (with 'units')."
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
        f"found, which 'format: {fmt}' needs. Expected the columns of the {layout.doc}: "
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


def _gene_text(gene: pd.Series) -> pd.Series:
    """Gene names as text: bytes (some Parquet exports) decoded, categories expanded."""
    def decode(v: Any) -> Any:
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else v

    if isinstance(gene.dtype, pd.CategoricalDtype):  # dictionary-encoded Parquet column
        names = pd.Index([decode(c) for c in gene.cat.categories], dtype=object).astype(str)
        codes = gene.cat.codes.to_numpy()
        text = names.take(np.where(codes < 0, 0, codes)).to_numpy(dtype=object)
        text[codes < 0] = None
        return pd.Series(text, index=gene.index, dtype=str)
    if gene.dtype == object:
        gene = gene.map(decode)
    return gene


def _has_prefix(gene: pd.Series, prefixes: Sequence[str]) -> np.ndarray:
    lowered = gene.fillna("").astype(str).str.strip().str.lower()
    return lowered.str.startswith(tuple(p.lower() for p in prefixes)).to_numpy(dtype=bool)


def _numbers(chunk: pd.DataFrame, column: str, p: Path, where: str) -> np.ndarray:
    """A numeric column as float64; an InputError naming the line for anything else."""
    raw = chunk[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if (bad := ~np.isfinite(values)).any():
        text = str(raw[bad].iloc[0]).strip()
        empty = text in ("", "None", "nan")
        problem = "the value is empty" if empty else f"value {text!r} is not a number"
        raise _bad_rows(where, column, p, raw.index[bad], problem, "Fix or remove")
    return values


def _flags(chunk: pd.DataFrame, column: str, p: Path, where: str) -> np.ndarray:
    """A True/False column (bool in Parquet, text in CSV) as a boolean array."""
    raw = chunk[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    text = raw.astype(str).str.strip().str.lower()
    true = text.isin(("true", "t", "1", "1.0", "yes"))
    false = text.isin(("false", "f", "0", "0.0", "no"))
    if (bad := ~(true | false).to_numpy(dtype=bool)).any():
        raise _bad_rows(
            where, column, p, raw.index[bad],
            f"value {str(raw[bad].iloc[0])!r} is not True or False", "Fix or remove",
        )
    return true.to_numpy(dtype=bool)


def _not_blank(chunk: pd.DataFrame) -> pd.DataFrame:
    """Without rows whose every read column is blank (blank lines of a text file)."""
    blank = np.ones(len(chunk), dtype=bool)
    numeric_first = sorted(chunk.columns, key=lambda c: chunk[c].dtype.kind not in "fiub")
    for column in numeric_first:  # cheap columns first; text only where those are blank
        if not blank.any():
            return chunk
        rows = np.flatnonzero(blank)
        blank[rows] = _blank(chunk[column].iloc[rows])
    return chunk.loc[~blank] if blank.any() else chunk


def _collect(
    p: Path, where: str, layout: _Layout, columns: list[str], drop, filtered: dict[str, int],
) -> pd.DataFrame:
    """Read ``columns`` chunk by chunk; returns the rows that none of ``drop(chunk)``'s
    {reason: mask} drops, counting the dropped ones into ``filtered``."""
    kept, total = [], 0
    for chunk in _chunks(p, where, columns, [layout.gene]):
        chunk = _not_blank(chunk)
        if chunk.empty:
            continue
        total += len(chunk)
        chunk[layout.gene] = _gene_text(chunk[layout.gene])
        dropped = np.zeros(len(chunk), dtype=bool)
        for reason, mask in drop(chunk).items():
            mask = mask & ~dropped  # each spot counted once, under its first reason
            filtered[reason] += int(mask.sum())
            dropped |= mask
        kept.append(chunk.loc[~dropped])
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
    return pd.concat(kept)


def _describe_filtered(filtered: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in filtered.items()) or "nothing"


def _read_xenium(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = XENIUM
    min_qv = DEFAULT_MIN_QV if opts.min_qv is None else _number(opts.min_qv)
    if min_qv is None:
        raise _config_error(where, f"'min_qv' is {opts.min_qv!r}; give a number (default 20).")
    present = _present_columns(p, where)
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
        qv = _numbers(chunk, "qv", p, where)
        return {
            NEGATIVE: _has_prefix(chunk[layout.gene], layout.controls),
            NOT_GENES: (
                ~_flags(chunk, "is_gene", p, where) if has_is_gene else np.zeros(len(chunk), bool)
            ),
            LOW_QUALITY: qv < min_qv,
        }

    table = _collect(p, where, layout, columns, drop, filtered)
    spots = _clean_spots(table, {"gene": layout.gene, "x": layout.x, "y": layout.y}, p, where)
    spots, how = _um_to_pixels(spots, opts, where)
    return SpotTable(spots, filtered, (
        f"xenium {where}: {len(spots)} transcripts kept, dropped {_describe_filtered(filtered)} "
        f"(min_qv {min_qv:g}); {how}"
    ))


def _read_merscope(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = MERSCOPE
    present = _present_columns(p, where)
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

    table = _collect(p, where, layout, [layout.gene, layout.x, layout.y], drop, filtered)
    spots = _clean_spots(table, {"gene": layout.gene, "x": layout.x, "y": layout.y}, p, where)
    spots, how = _um_to_pixels(spots, opts, where)
    return SpotTable(spots, filtered, (
        f"merscope {where}: {len(spots)} transcripts kept, dropped {_describe_filtered(filtered)}; "
        f"{how}"
    ))


def _read_cosmx(p: Path, opts: _Options, where: str) -> SpotTable:
    layout = COSMX
    present = _present_columns(p, where)
    has_global = {"x_global_px", "y_global_px"} <= set(present)
    local = {"x_local_px", "y_local_px", "fov"} <= set(present)
    if has_global:
        x, y, columns = "x_global_px", "y_global_px", [layout.gene, "x_global_px", "y_global_px"]
    elif local:
        x, y, columns = "x_local_px", "y_local_px", [layout.gene, "x_local_px", "y_local_px", "fov"]
        if opts.fov_positions is None:
            raise _config_error(
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

    table = _collect(p, where, layout, columns, drop, filtered)
    spots = _clean_spots(table, {"gene": layout.gene, "x": x, "y": y}, p, where)
    if has_global:
        placed = "x_global_px/y_global_px"
        placed += " (fov_positions not needed, ignored)" if opts.fov_positions is not None else ""
    else:
        offsets, source = _fov_offsets(opts, where)
        fov = _fov_keys(table.loc[spots.index, "fov"], p, where)
        known = fov.isin(offsets.index).to_numpy()
        if not known.all():
            first = int(np.flatnonzero(~known)[0])
            missing = pd.unique(fov[~known])
            raise InputError(
                f"{where}: fov {missing[0]}, first at "
                f"{inputs.describe_row(p, int(spots.index[first]))}, "
                f"is not in the FOV positions file '{opts.fov_positions}'"
                + (f"; {len(missing)} fovs are missing: {', '.join(map(str, missing[:10]))}"
                   f"{' ...' if len(missing) > 10 else ''}" if len(missing) > 1 else "")
                + f" ({int((~known).sum())} transcripts). Use the positions file of the same "
                "slide and export."
            )
        dx = offsets["x"].reindex(fov.to_numpy()).to_numpy()
        dy = offsets["y"].reindex(fov.to_numpy()).to_numpy()
        spots = spots.assign(x=spots["x"].to_numpy() + dx, y=spots["y"].to_numpy() + dy)
        placed = f"x_local_px/y_local_px + FOV offsets from {source}"
    spots, how = _scale_pixels(spots, opts, where, "CosMx coordinates")
    return SpotTable(spots, filtered, (
        f"cosmx {where}: {len(spots)} transcripts kept, dropped {_describe_filtered(filtered)}; "
        f"{placed}; {how}"
    ))


def _fov_keys(fov: pd.Series, p: Path, where: str) -> pd.Series:
    """FOV ids as comparable text: integral numbers as '12' (not '12.0'), else stripped text."""
    numbers = pd.to_numeric(fov, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0):
        return numbers.astype(np.int64).astype(str)
    text = fov.astype(str).str.strip()
    if (bad := _blank(fov) | (text == "").to_numpy(dtype=bool)).any():
        raise _bad_rows(where, "fov", p, fov.index[bad], "the fov is empty", "Fix or remove")
    return text


def _fov_offsets(opts: _Options, where: str) -> tuple[pd.DataFrame, str]:
    """Offsets (columns x, y: CosMx pixels before image_scale) indexed by FOV id."""
    fw = f"FOV positions file '{opts.fov_positions}' (of the section with {where})"
    p = _existing_file(opts.fov_positions, fw, "fov_positions")
    try:
        table = pd.read_csv(p, **_text_options(p, fw))
    except (pd.errors.ParserError, OSError, EOFError, pd.errors.EmptyDataError) as error:
        raise _unreadable(fw, error) from error
    by_lower = {str(c).strip().lower(): c for c in table.columns}
    present = ", ".join(map(repr, map(str, table.columns)))
    if "fov" not in by_lower:
        raise InputError(
            f"{fw}: no 'fov' column. Expected the CosMx *_fov_positions_file.csv columns fov, "
            f"x_global_px, y_global_px (or X_mm, Y_mm); the file has: {present}."
        )
    if {"x_global_px", "y_global_px"} <= by_lower.keys():
        cx, cy, factor = by_lower["x_global_px"], by_lower["y_global_px"], 1.0
        source = f"'{p}' (x_global_px, y_global_px)"
    else:
        mm = next(((a, b) for a, b in (("x_mm", "y_mm"), ("x_global_mm", "y_global_mm"))
                   if {a, b} <= by_lower.keys()), None)
        if mm is None:
            raise InputError(
                f"{fw}: no FOV position columns. Expected x_global_px, y_global_px (pixels) or "
                f"X_mm, Y_mm (millimetres); the file has: {present}."
            )
        if opts.pixel_size_um is None:
            raise _config_error(
                where, f"the FOV positions in '{p}' are millimetres; converting them to pixels "
                f"needs 'pixel_size_um' > 0, which is {opts.pixel_size_raw!r}."
            )
        # pixel_size_um is per pixel of the image as read: one CosMx pixel is
        # pixel_size_um * image_scale micrometres.
        cx, cy = by_lower[mm[0]], by_lower[mm[1]]
        factor = 1000.0 / (opts.pixel_size_um * opts.image_scale)
        source = f"'{p}' ({cx}, {cy} in mm / pixel_size_um {opts.pixel_size_um:g})"
    fov = _fov_keys(table[by_lower["fov"]], p, fw)
    if (dup := fov.duplicated(keep=False)).any():
        lines = [inputs.describe_row(p, int(i)) for i in fov.index[dup][:2]]
        raise InputError(
            f"{fw}: fov {fov[dup].iloc[0]} appears more than once ({' and '.join(lines)}). If the "
            "file covers several slides, keep only the rows of this section's slide."
        )
    offsets = {}
    for key, column in (("x", cx), ("y", cy)):
        offsets[key] = _numbers(table, column, p, fw) * factor
    return pd.DataFrame(offsets, index=pd.Index(fov.to_numpy())), source
