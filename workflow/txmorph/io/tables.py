"""Read transcript tables column-selectively and in chunks, and parse their columns (for the
vendor readers, ``txmorph.io.vendors``; the plain ``table`` format: ``txmorph.io.plaintable``).

Parquet files are read with ``columns=`` in record batches, text tables (CSV/TSV/TXT, optionally
gzip-compressed) with ``usecols=`` and ``chunksize=``, so that a caller can discard unwanted rows
chunk by chunk and tens of millions of transcripts fit in memory. The index of every chunk is the
0-based data row in the file (see ``io.files.describe_row``), so later checks can still name the
line. The column parsers raise an ``InputError`` naming the file, line and column of the first
bad value.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.files import bad_rows, first_line, is_blank, parse_error, spots_format, unreadable


# ----------------------------------------------------------------------------- generic tables


def parquet_chunks(
    p: Path, where: str, columns: list[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """A Parquet file's ``columns`` in record batches.

    Parameters
    ----------
    p : Path
        The file.
    where : str
        How messages name it.
    columns : list of str
        The columns to read.
    chunk_rows : int
        Rows per batch.

    Yields
    ------
    pandas.DataFrame
        The next batch, its index the 0-based row in the file.
    """
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(p)
        offset = 0
        for batch in source.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            yield frame[columns]
    except (OSError, ValueError, RuntimeError) as error:  # pyarrow's errors derive from these
        raise unreadable(where, error, "read as Parquet") from error


def text_options(p: Path, where: str) -> dict[str, Any]:
    """``pandas.read_csv`` options for a text table.

    Parameters
    ----------
    p : Path
        The table.
    where : str
        How messages name it.

    Returns
    -------
    dict
        ``sep`` (from the file name, or sniffed from the header of a .txt), ``compression``,
        ``encoding``, ``encoding_errors``.

    Raises
    ------
    InputError
        If the first line is empty.
    """
    first, compression = first_line(p, where)
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


def present_columns(p: Path, where: str) -> list[str]:
    """The column names of a Parquet or text table, read from its schema or header only.

    Parameters
    ----------
    p : Path
        The table.
    where : str
        How messages name it.

    Returns
    -------
    list of str
        The names, in file order.
    """
    if spots_format(p) == "parquet":
        import pyarrow.parquet as pq

        try:
            return [str(c) for c in pq.read_schema(p).names]
        except Exception as error:
            raise unreadable(where, error, "read as Parquet") from error
    try:
        header = pd.read_csv(p, nrows=0, **text_options(p, where))
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise unreadable(where, error) from error
    return [str(c) for c in header.columns]


def read_chunks(
    p: Path, where: str, columns: list[str], text_columns: Sequence[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The file's ``columns`` in chunks, for the vendor readers.

    All-blank rows are kept (row numbers stay file line numbers); the caller drops them
    (``drop_blank_rows``).

    Parameters
    ----------
    p : Path
        A Parquet or text table.
    where : str
        How messages name it.
    columns : list of str
        The columns to read.
    text_columns : sequence of str
        Those read as strings.
    chunk_rows : int
        Rows per chunk.

    Yields
    ------
    pandas.DataFrame
        The next chunk, indexed by the 0-based data row.
    """
    if spots_format(p) == "parquet":
        yield from parquet_chunks(p, where, columns, chunk_rows)
        return
    options = text_options(p, where)
    try:
        reader = pd.read_csv(
            p, usecols=columns, dtype={c: str for c in text_columns}, keep_default_na=False,
            skip_blank_lines=False, index_col=False, chunksize=chunk_rows, **options,
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
        raise parse_error(where, options["sep"], error,
                          "The file may be truncated or corrupt; re-export or re-copy it.") from error
    except (OSError, EOFError, pd.errors.EmptyDataError) as error:
        raise unreadable(where, error) from error


# ----------------------------------------------------------------------------- columns


def gene_text(gene: pd.Series) -> pd.Series:
    """Gene names as text: bytes (some Parquet exports) decoded, categories expanded.

    Parameters
    ----------
    gene : pandas.Series
        The gene column as read.

    Returns
    -------
    pandas.Series
        Text (missing values stay missing), same index.
    """
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


def numeric_column(chunk: pd.DataFrame, column: str, p: Path, where: str) -> np.ndarray:
    """A numeric column as float64.

    Parameters
    ----------
    chunk : pandas.DataFrame
        Rows of a table (index = data row).
    column : str
        The column.
    p : Path
        The file, for messages.
    where : str
        How messages name it.

    Returns
    -------
    numpy.ndarray
        float64 values.

    Raises
    ------
    InputError
        Naming the first line whose value is empty or not a finite number.
    """
    raw = chunk[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if (bad := ~np.isfinite(values)).any():
        text = str(raw[bad].iloc[0]).strip()
        empty = text in ("", "None", "nan")
        problem = "the value is empty" if empty else f"value {text!r} is not a number"
        raise bad_rows(where, column, p, raw.index[bad], problem, "Fix or remove")
    return values


def flag_column(chunk: pd.DataFrame, column: str, p: Path, where: str) -> np.ndarray:
    """A True/False column (bool in Parquet, text in CSV) as a boolean array.

    Parameters
    ----------
    chunk, column, p, where
        As for ``numeric_column``.

    Returns
    -------
    numpy.ndarray
        bool values.

    Raises
    ------
    InputError
        Naming the first line whose value is not true/false, 1/0 or yes/no.
    """
    raw = chunk[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    text = raw.astype(str).str.strip().str.lower()
    true = text.isin(("true", "t", "1", "1.0", "yes"))
    false = text.isin(("false", "f", "0", "0.0", "no"))
    if (bad := ~(true | false).to_numpy(dtype=bool)).any():
        raise bad_rows(
            where, column, p, raw.index[bad],
            f"value {str(raw[bad].iloc[0])!r} is not True or False", "Fix or remove",
        )
    return true.to_numpy(dtype=bool)


def drop_blank_rows(chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk without rows whose every read column is blank (blank lines of a text file).

    Parameters
    ----------
    chunk : pandas.DataFrame
        Rows of a table.

    Returns
    -------
    pandas.DataFrame
        The other rows (the chunk itself when none is blank).
    """
    blank = np.ones(len(chunk), dtype=bool)
    numeric_first = sorted(chunk.columns, key=lambda c: chunk[c].dtype.kind not in "fiub")
    for column in numeric_first:  # cheap columns first; text only where those are blank
        if not blank.any():
            return chunk
        rows = np.flatnonzero(blank)
        blank[rows] = is_blank(chunk[column].iloc[rows])
    return chunk.loc[~blank] if blank.any() else chunk

