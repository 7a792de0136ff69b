"""Shared helpers of the import readers: where a user's file is, what kind it is, and the
one-line ``InputError`` messages that name its line and column.

Every problem a user can fix raises ``InputError`` with one plain message that names the file,
the line/column, what is wrong and what to do, because the users are biologists reading a
Snakemake console, not a traceback.

Line numbers of text tables are 1-based and count the header line (what an editor shows):
data row ``i`` (0-based) is line ``i + 2``; readers keep that 0-based data-row number as the
index of the tables they return, so that later checks can name the line too (``describe_row``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.outputs import atomic_path

UNREADABLE_SUFFIXES = (".xlsx", ".xls", ".zip", ".ods", ".h5", ".hdf5", ".zarr")
SPOT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".parquet": "parquet", ".pq": "parquet"}
# Config keys named in messages (see workflow/schemas/config.schema.yaml).
OUTSIDE_KEY = "spots_outside_image"
GENES_KEY = "genes"
COLUMNS_KEY = "columns"


def existing_file(path: str | Path, where: str, key: str) -> Path:
    """The path of a user's input file, refused unless it is an existing regular file.

    Parameters
    ----------
    path : str or Path
        The file as configured.
    where : str
        How messages name it, e.g. "spots file 'a.csv'".
    key : str
        Its config key (image, spots, transform, ...), named in the fix.

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    InputError
        If it does not exist or is a directory.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{where}: not found. Check the '{key}' path of this section in config.yaml.")
    if not p.is_file():
        raise InputError(f"{where}: is a directory, not a file. Point '{key}' in config.yaml to a file.")
    return p


def unreadable(where: str, error: BaseException, what: str = "read") -> InputError:
    """The ``InputError`` for a file that exists but cannot be read or decoded.

    Parameters
    ----------
    where : str
        How the message names the file.
    error : BaseException
        What the reader raised (its type and text are quoted).
    what : str
        The verb: "read", "read as Parquet", ...

    Returns
    -------
    InputError
        To be raised by the caller (``raise unreadable(...) from error``).
    """
    return InputError(
        f"{where}: could not be {what} ({type(error).__name__}: {error}). The file may be "
        "incomplete or corrupt; re-export or re-copy it."
    )


def spots_format(path: str | Path) -> str:
    """The kind of a spot table, from its name (.gz allowed), else from its first bytes.

    Parameters
    ----------
    path : str or Path
        The table.

    Returns
    -------
    str
        'csv', 'tsv', 'txt' (separator sniffed later) or 'parquet'.

    Raises
    ------
    InputError
        For spreadsheets, archives and other files that are not text or Parquet.
    """
    name = Path(path).name.lower().removesuffix(".gz")
    for suffix, kind in SPOT_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    # No known suffix (e.g. "transcripts.gz"): tell the kind by content, as long as it is a
    # Parquet file or plain/gzipped text; spreadsheets and other binaries are refused.
    if not Path(path).suffix.lower() in UNREADABLE_SUFFIXES and Path(path).is_file():
        with open(path, "rb") as handle:
            head = handle.read(4)
        if head == b"PAR1":
            return "parquet"
        if head[:2] == b"\x1f\x8b" or (head and all(32 <= c < 127 or c in (9, 10, 13) for c in head)):
            return "txt"
    raise InputError(
        f"spots file '{path}': unsupported file type. Use .csv, .tsv or .txt (optionally "
        "gzipped: .csv.gz, .tsv.gz) or .parquet."
    )


def describe_row(path: str | Path, row: int) -> str:
    """Where 0-based data row ``row`` is, as a user sees it.

    Parameters
    ----------
    path : str or Path
        The table (Parquet rows are counted from 1, text lines include the header).
    row : int
        0-based data row, as in the index of the tables the readers return.

    Returns
    -------
    str
        E.g. 'line 18 (data row 17)' or 'row 18'.
    """
    if spots_format(path) == "parquet":
        return f"row {row + 1}"
    return f"line {row + 2} (data row {row + 1})"


def first_line(p: Path, where: str) -> tuple[str, str | None]:
    """The header line of a text table and its compression, told by content rather than name.

    Parameters
    ----------
    p : Path
        The table.
    where : str
        How messages name it.

    Returns
    -------
    tuple of (str, str or None)
        The first line (with its newline) and "gzip" or None.

    Raises
    ------
    InputError
        For Parquet or zip/Excel content, or a file that cannot be read.
    """
    with open(p, "rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        raise InputError(f"{where}: is a Parquet file; rename it to end in .parquet.")
    if magic[:2] == b"PK":
        raise InputError(
            f"{where}: looks like an Excel workbook or zip archive, not a text table. Save it as "
            "CSV (comma-separated) and point 'spots' in config.yaml to that file."
        )
    gzipped = magic[:2] == b"\x1f\x8b"
    try:
        with (gzip.open if gzipped else open)(p, "rt", encoding="utf-8-sig", errors="replace") as f:
            return f.readline(), ("gzip" if gzipped else None)
    except (OSError, EOFError) as error:
        raise unreadable(where, error) from error


def parse_error(where: str, sep: str, error: Exception, advice: str) -> InputError:
    """A pandas ParserError as the user needs it: which line, how many fields, what to do.

    Parameters
    ----------
    where : str
        How the message names the file.
    sep : str
        The separator the table was parsed with.
    error : Exception
        pandas' ParserError.
    advice : str
        What to do, appended to the message.

    Returns
    -------
    InputError
        To be raised by the caller.
    """
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    detail = (
        f"line {found[2]} has {found[3]} fields but the header has {found[1]}" if found else error
    )
    return InputError(
        f"{where}: could not be parsed as a {'tab' if sep == chr(9) else repr(sep)}-separated "
        f"table: {detail}. {advice}"
    )


def bad_rows(where: str, column: str, path: Path, rows: pd.Index, problem: str, fix: str) -> InputError:
    """The ``InputError`` for bad values in one column, named by the first bad row.

    E.g. "column 'x', line 18 (data row 17): <problem> (3 rows are affected). <fix> those rows."

    Parameters
    ----------
    where : str
        How the message names the file.
    column : str
        The column's name in the file.
    path : Path
        The file (for ``describe_row``).
    rows : pandas.Index
        The 0-based data rows that are bad, first one first.
    problem, fix : str
        What is wrong, and the verb of the fix ("Fix or remove").

    Returns
    -------
    InputError
        To be raised by the caller.
    """
    return bad_rows_at(where, column, path, int(rows[0]), len(rows), problem, fix)


def bad_rows_at(where: str, column: str, path: Path, first: int, count: int, problem: str,
                 fix: str) -> InputError:
    """``bad_rows`` from the first bad data row and the number of bad rows.

    Parameters
    ----------
    where, column, path, problem, fix
        As for ``bad_rows``.
    first : int
        The first bad 0-based data row.
    count : int
        How many rows are bad.

    Returns
    -------
    InputError
        To be raised by the caller.
    """
    many = count > 1
    return InputError(
        f"{where}: column {column!r}, {describe_row(path, first)}: {problem}"
        f"{f' ({count} rows are affected)' if many else ''}. "
        f"{fix} {'those rows' if many else 'that row'}."
    )


def is_blank(col: pd.Series) -> np.ndarray:
    """Which values of a column are missing or only spaces.

    Parameters
    ----------
    col : pandas.Series
        A column as read (numbers, or text when read as strings).

    Returns
    -------
    numpy.ndarray
        Boolean, one per row.
    """
    if col.dtype.kind in "fiub":
        return col.isna().to_numpy()
    return (col.isna() | (col.astype(str).str.strip() == "")).to_numpy(dtype=bool)


def is_int(value: Any) -> bool:
    """Whether a config value is a whole number (Python or numpy integer, not bool).

    Parameters
    ----------
    value : Any
        The value.

    Returns
    -------
    bool
        True for int and numpy integers, False for bool and everything else.
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def write_summary(path: str | os.PathLike[str], summary: dict[str, Any]) -> None:
    """Write an import rule's JSON summary (``image.json``, ``spots.json``), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write it.
    summary : dict
        JSON-serialisable; written indented, keys in their order.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
