"""The plain spot-table format (``spots_format: table``): any CSV/TSV/TXT (optionally gzipped)
or Parquet file with configurable ``columns`` for gene, x and y.

``read_spots`` checks the file and its header (naming close matches of missing columns and a
wrong separator), then reads it in chunks of ``CHUNK_ROWS`` rows, each checked and reduced at
once (``txmorph.io.collector.SpotCollector``).
"""

from __future__ import annotations

import difflib
import importlib.util
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from txmorph.errors import InputError
from txmorph.io.collector import SpotCollector
from txmorph.io.files import (
    COLUMNS_KEY,
    existing_file,
    first_line,
    parse_error,
    spots_format,
    unreadable,
)
from txmorph.io.tables import parquet_chunks

ROLES = ("gene", "x", "y")
CHUNK_ROWS = 1_000_000  # text tables are parsed in chunks of this many rows


def read_spots(path: str | Path, columns: Mapping[str, str]) -> pd.DataFrame:
    """Read a plain spot table (``spots_format: table``) as ``gene``, ``x``, ``y`` in file order.

    The table is read in chunks of ``CHUNK_ROWS`` rows, each checked and reduced right away
    (``SpotCollector``), so memory does not grow with the table's text. Completely blank lines
    are skipped; gene names are stripped of surrounding spaces.

    Parameters
    ----------
    path : str or Path
        CSV/TSV/TXT (optionally gzipped) or Parquet.
    columns : Mapping of str to str
        The roles "gene", "x", "y" -> the file's column names (the config's ``columns``).

    Returns
    -------
    pandas.DataFrame
        ``gene`` (str), ``x``, ``y`` (float64), indexed by the 0-based data row in the file
        (see ``describe_row``).

    Raises
    ------
    InputError
        For a missing or unreadable file, missing columns, bad values (naming the line).
    """
    where = f"spots file '{path}'"
    fix_columns = f"Set '{COLUMNS_KEY}' (gene, x, y) for this section in config.yaml."
    if missing := [role for role in ROLES if not columns.get(role)]:
        roles = ", ".join(map(repr, missing))
        raise InputError(f"{where}: no column name given for {roles}. {fix_columns}")
    names = {role: str(columns[role]) for role in ROLES}
    if len(set(names.values())) < 3:
        raise InputError(f"{where}: the same column is given for two roles ({names}). {fix_columns}")
    p = existing_file(path, where, "spots")
    if spots_format(p) == "parquet":
        chunks = _parquet_spot_chunks(p, names, where)
    else:
        chunks = _text_spot_chunks(p, spots_format(p), names, where)
    collector = SpotCollector(names, p, where)
    for chunk in chunks:
        collector.add(chunk)
    return collector.finish()[0]


def _parquet_spot_chunks(p: Path, names: dict[str, str], where: str) -> Iterator[pd.DataFrame]:
    if importlib.util.find_spec("pyarrow") is None:
        raise InputError(
            f"{where}: reading Parquet needs the 'pyarrow' package, which is not installed. "
            "Install it (pip install pyarrow, or add it to the conda environment) or convert the "
            "table to CSV."
        )
    import pyarrow.parquet as pq

    try:
        present = list(pq.read_schema(p).names)
    except Exception as error:
        raise unreadable(where, error, "read as Parquet") from error
    _check_columns(present, names, where, sep=None)
    return parquet_chunks(p, where, list(names.values()), CHUNK_ROWS)


def _text_spot_chunks(
    p: Path, kind: str, names: dict[str, str], where: str
) -> Iterator[pd.DataFrame]:
    """The wanted columns of a text table in chunks of ``CHUNK_ROWS`` rows (index = data row)."""
    first, compression = first_line(p, where)
    if not first.strip():
        raise InputError(
            f"{where}: the file is empty or its first line is blank. The first line must be the "
            f"header naming the columns ({', '.join(names.values())})."
        )
    if kind in ("csv", "tsv"):
        sep = "," if kind == "csv" else "\t"
    else:  # .txt: the most frequent candidate in the header line, else runs of spaces
        best = max(("\t", ",", ";"), key=first.count)
        sep = best if first.count(best) else r"\s+"
    options: dict[str, Any] = dict(
        sep=sep, compression=compression, encoding="utf-8-sig", encoding_errors="replace"
    )
    try:
        header = pd.read_csv(p, nrows=0, **options)
        _check_columns([str(c) for c in header.columns], names, where, sep=sep)
        # Nothing is turned into NaN, so the checks see the raw values. All columns are parsed
        # because with ``usecols`` pandas silently cuts rows that have too many fields;
        # index_col=False tolerates a trailing separator on every line.
        wanted = list(names.values())
        with pd.read_csv(
            p, dtype={names["gene"]: str}, keep_default_na=False, skip_blank_lines=False,
            index_col=False, chunksize=CHUNK_ROWS, **options,
        ) as reader:
            while True:
                with warnings.catch_warnings():  # not around the yield: the caller's warnings
                    warnings.simplefilter("ignore", pd.errors.ParserWarning)
                    try:
                        chunk = reader.get_chunk()
                    except StopIteration:
                        return
                yield chunk[wanted]
    except pd.errors.ParserError as error:
        raise parse_error(
            where, sep, error, "That row probably has an extra separator (e.g. a gene name with "
            "a comma that is not in quotes) or an unclosed quote; fix or remove it."
        ) from error
    except (OSError, EOFError, pd.errors.EmptyDataError) as error:
        raise unreadable(where, error) from error


def _check_columns(present: list[str], names: dict[str, str], where: str, sep: str | None) -> None:
    if not (missing := [name for name in names.values() if name not in present]):
        return
    listed = ", ".join(repr(c) for c in present[:30]) + (" ..." if len(present) > 30 else "")
    message = (
        f"{where}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} not "
        f"found. The file has column{'s' if len(present) != 1 else ''}: {listed}."
    )
    for name in missing if len(present) > 1 else []:
        folded = [c for c in present if c.strip().lower() == name.strip().lower()]
        if close := folded or difflib.get_close_matches(name, present, n=2, cutoff=0.6):
            message += f" For {name!r} did you mean {' or '.join(map(repr, close))}?"
    if sep is not None and len(present) == 1:
        seps = ((",", "commas"), ("\t", "tabs"), (";", "semicolons"))
        others = [word for c, word in seps if c != sep and c in present[0]]
        message += (
            " Only one column was found, so the separator is probably wrong"
            + (f": the header seems to use {others[0]}" if others else "")
            + ". Save the file as .csv (comma-separated) or .tsv (tab-separated), or name it .txt"
            " to have the separator detected."
        )
    raise InputError(
        f"{message} Otherwise set '{COLUMNS_KEY}' (gene, x, y) for this section in config.yaml."
    )
