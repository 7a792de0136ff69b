"""Check and reduce a spot table chunk by chunk (``SpotCollector``), so that memory does not
grow with the table's text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.files import bad_rows_at, is_blank


def _coordinate_problem(text: str) -> str:
    """What is wrong with a coordinate that is not a finite number (its text, stripped)."""
    if text in ("", "None"):
        return "the value is empty"
    if text.lower().lstrip("+-") in ("nan", "na", "inf", "infinity", "null"):
        return f"value {text!r} is not a finite number"
    problem = f"value {text!r} is not a number"
    return problem + (" (it has a decimal comma; use a decimal point)" if "," in text else "")


def _name_text(uniques: pd.Index) -> pd.Series:
    """Distinct raw gene values as stripped text (bytes, as some Parquet exports store, decoded)."""
    if uniques.dtype == object or isinstance(uniques.dtype, pd.CategoricalDtype):
        uniques = pd.Index(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in uniques],
            dtype=object,
        )
    return pd.Series(uniques, dtype=uniques.dtype).astype(str).str.strip()


def _text_column(codes: np.ndarray, names: list[str]) -> Any:
    """The names ``names[codes]`` as pandas' text (str) array, without a Python str per row."""
    try:
        import pyarrow as pa
    except ImportError:  # pandas' own string storage
        return pd.array(np.asarray(names, dtype=object)[codes], dtype=str)
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names, pa.large_string()))
    return pd.array(dictionary.cast(pa.large_string()), dtype=str)


class SpotCollector:
    """A spot table's gene, x and y, checked and reduced chunk by chunk to compact arrays.

    ``add(chunk)`` takes the next rows of the table (index = 0-based data row, file order). It
    drops blank lines, parses x and y as float64 and turns the gene names (stripped) into codes
    against a dictionary of the names seen so far, so that each kept spot costs two floats, a
    code and a row number however long the table's text is. Bad values are counted and the
    first of each kind is remembered; ``finish()`` reports them as a check of the whole table
    would (x, then y, then gene; first row and number of rows) or returns the table, with the
    ``extra`` columns of the kept rows (e.g. CosMx fov) as raw values.

    Parameters
    ----------
    names : Mapping of str to str
        The roles "gene", "x", "y" -> the table's column names.
    p : Path
        The table, for messages.
    where : str
        How messages name it.
    extra : sequence of str
        Further columns to keep for the kept rows.
    """

    def __init__(self, names: Mapping[str, str], p: Path, where: str, extra: Sequence[str] = ()):
        self.names, self.p, self.where, self.extra = dict(names), p, where, tuple(extra)
        self.codes: dict[str, int] = {}  # gene name -> code, in order of first appearance
        self.parts: dict[str, list[Any]] = {k: [] for k in ("gene", "x", "y", "row", *self.extra)}
        self.problems: dict[str, list[Any]] = {}  # role -> [first row, count, first text]
        self.rows = 0

    def _note(self, role: str, rows: np.ndarray, text: str = "") -> None:
        if role not in self.problems:
            self.problems[role] = [int(rows[0]), 0, text]
        self.problems[role][1] += len(rows)

    def add(self, chunk: pd.DataFrame) -> None:
        """Take the next rows of the table.

        Parameters
        ----------
        chunk : pandas.DataFrame
            The next rows, in file order, indexed by the 0-based data row.
        """
        codes, uniques = pd.factorize(chunk[self.names["gene"]])  # missing values: -1
        text = _name_text(uniques)
        empty = np.append((text == "").to_numpy(dtype=bool), True)  # the last: missing values
        no_gene = empty[codes]
        if no_gene.any():  # blank lines were kept so that row numbers stay line numbers
            rows = np.flatnonzero(no_gene)
            line = np.zeros(len(chunk), dtype=bool)
            line[rows] = (is_blank(chunk[self.names["x"]].iloc[rows])
                          & is_blank(chunk[self.names["y"]].iloc[rows]))
            if line.any():
                chunk, codes, no_gene = chunk.loc[~line], codes[~line], no_gene[~line]
        if not len(chunk):
            return
        self.rows += len(chunk)
        index = chunk.index
        coords = {}
        for role in ("x", "y"):
            column = chunk[self.names[role]]
            values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            if (bad := ~np.isfinite(values)).any():
                self._note(role, index[bad], str(column[bad].iloc[0]).strip())
            # a view into the chunk's block would keep the chunk's other columns alive
            coords[role] = values if values.base is None else values.copy()
        if no_gene.any():
            self._note("gene", index[no_gene])
        if self.problems:  # the table will be refused: only the problems are counted on
            return
        known = [-1 if blank else self.codes.setdefault(name, len(self.codes))
                 for name, blank in zip(text, empty)]
        self.parts["gene"].append(np.asarray(known + [-1], dtype=np.int32)[codes])
        self.parts["x"].append(coords["x"])
        self.parts["y"].append(coords["y"])
        self.parts["row"].append(index)  # a RangeIndex where no line was left out: no array
        for column in self.extra:
            self.parts[column].append(chunk[column].copy())

    def finish(self) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
        """The collected table, or the first problem; called once, after the last chunk.

        Returns
        -------
        tuple of (pandas.DataFrame, dict of str to pandas.Series)
            The ``gene``/``x``/``y`` table and the ``extra`` columns, both indexed by data row.

        Raises
        ------
        InputError
            For a table without data rows, or its first bad x, y or gene value.
        """
        if self.rows == 0:
            raise InputError(
                f"{self.where}: the table has no data rows (only a header). Is it the right file?"
            )
        for role in ("x", "y"):
            if role in self.problems:
                first, count, text = self.problems[role]
                raise bad_rows_at(self.where, self.names[role], self.p, first, count,
                                   _coordinate_problem(text), "Fix or remove")
        if "gene" in self.problems:
            first, count, _ = self.problems["gene"]
            raise bad_rows_at(self.where, self.names["gene"], self.p, first, count,
                               "the gene name is empty", "Fill in the gene name or remove")
        parts = self.parts  # each column joined in turn, its chunks freed before the next
        rows = parts.pop("row")
        index = rows[0].append(rows[1:]).astype(np.int64)  # consecutive ranges stay a range
        del rows
        gene = _text_column(np.concatenate(parts.pop("gene")), list(self.codes))
        x = np.concatenate(parts.pop("x"))
        y = np.concatenate(parts.pop("y"))
        spots = pd.DataFrame({"gene": gene, "x": x, "y": y}, index=index, copy=False)
        extra = {c: pd.concat(parts.pop(c)) for c in self.extra}
        return spots, extra

