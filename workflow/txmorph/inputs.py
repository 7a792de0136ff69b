"""Read and check the user's spot tables before any heavy computation (images: ``txmorph.images``).

Every problem a user can fix raises ``InputError`` with one plain message that names the file,
the line/column, what is wrong and what to do, because the users are biologists reading a
Snakemake console, not a traceback. Checks are vectorised so that a bad section fails within
seconds instead of after an hour of training.

Line numbers of text tables are 1-based and count the header line (what an editor shows):
data row ``i`` (0-based) is line ``i + 2``. ``read_spots`` keeps that 0-based data-row number as
the index of the returned table so that later checks (``check_spots``) can name the line too.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError

ROLES = ("gene", "x", "y")
UNREADABLE_SUFFIXES = (".xlsx", ".xls", ".zip", ".ods", ".h5", ".hdf5", ".zarr")
SPOT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".parquet": "parquet", ".pq": "parquet"}
# Config keys named in messages (see workflow/schemas/config.schema.yaml).
OUTSIDE_KEY = "spots_outside_image"
GENES_KEY = "genes"
COLUMNS_KEY = "columns"
CHUNK_ROWS = 1_000_000  # text tables are parsed in chunks of this many rows


def _existing_file(path: str | Path, where: str, key: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{where}: not found. Check the '{key}' path of this section in config.yaml.")
    if not p.is_file():
        raise InputError(f"{where}: is a directory, not a file. Point '{key}' in config.yaml to a file.")
    return p


def _unreadable(where: str, error: BaseException, what: str = "read") -> InputError:
    return InputError(
        f"{where}: could not be {what} ({type(error).__name__}: {error}). The file may be "
        "incomplete or corrupt; re-export or re-copy it."
    )


# ----------------------------------------------------------------------------- spots


def spots_format(path: str | Path) -> str:
    """'csv', 'tsv', 'txt' (separator sniffed) or 'parquet', from the file name (.gz allowed)."""
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
    """Where 0-based data row ``row`` is, as a user sees it: 'line 18 (data row 17)'."""
    if spots_format(path) == "parquet":
        return f"row {row + 1}"
    return f"line {row + 2} (data row {row + 1})"


def read_spots(path: str | Path, columns: Mapping[str, str]) -> pd.DataFrame:
    """Read a spot table and return columns ``gene`` (str), ``x``, ``y`` (float64) in file order.

    ``columns`` maps the roles "gene", "x", "y" to the file's column names. The table is read
    in chunks of ``CHUNK_ROWS`` rows, each checked and reduced right away (``SpotCollector``),
    so memory does not grow with the table's text. Completely blank lines are skipped; the
    index is the 0-based data row in the file, see ``describe_row``. Gene names are stripped
    of surrounding spaces.
    """
    where = f"spots file '{path}'"
    fix_columns = f"Set '{COLUMNS_KEY}' (gene, x, y) for this section in config.yaml."
    if missing := [role for role in ROLES if not columns.get(role)]:
        roles = ", ".join(map(repr, missing))
        raise InputError(f"{where}: no column name given for {roles}. {fix_columns}")
    names = {role: str(columns[role]) for role in ROLES}
    if len(set(names.values())) < 3:
        raise InputError(f"{where}: the same column is given for two roles ({names}). {fix_columns}")
    p = _existing_file(path, where, "spots")
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
        raise _unreadable(where, error, "read as Parquet") from error
    _check_columns(present, names, where, sep=None)
    return parquet_chunks(p, where, list(names.values()), CHUNK_ROWS)


def parquet_chunks(
    p: Path, where: str, columns: list[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """A Parquet file's ``columns`` in record batches of ``chunk_rows`` rows; index = row."""
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
        raise _unreadable(where, error, "read as Parquet") from error


def _first_line(p: Path, where: str) -> tuple[str, str | None]:
    """The header line of a text table and its compression, told by content rather than name."""
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
        raise _unreadable(where, error) from error


def _text_spot_chunks(
    p: Path, kind: str, names: dict[str, str], where: str
) -> Iterator[pd.DataFrame]:
    """The wanted columns of a text table in chunks of ``CHUNK_ROWS`` rows (index = data row)."""
    first, compression = _first_line(p, where)
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
        raise _unreadable(where, error) from error


def parse_error(where: str, sep: str, error: Exception, advice: str) -> InputError:
    """A pandas ParserError as the user needs it: which line, how many fields, what to do."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    detail = (
        f"line {found[2]} has {found[3]} fields but the header has {found[1]}" if found else error
    )
    return InputError(
        f"{where}: could not be parsed as a {'tab' if sep == chr(9) else repr(sep)}-separated "
        f"table: {detail}. {advice}"
    )


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


def _bad_rows(where: str, column: str, path: Path, rows: pd.Index, problem: str, fix: str) -> InputError:
    """"column 'x', line 18 (data row 17): <problem> (3 rows are affected). <fix> those rows.\""""
    return _bad_rows_at(where, column, path, int(rows[0]), len(rows), problem, fix)


def _bad_rows_at(where: str, column: str, path: Path, first: int, count: int, problem: str,
                 fix: str) -> InputError:
    """``_bad_rows`` from the first bad data row and the number of bad rows."""
    many = count > 1
    return InputError(
        f"{where}: column {column!r}, {describe_row(path, first)}: {problem}"
        f"{f' ({count} rows are affected)' if many else ''}. "
        f"{fix} {'those rows' if many else 'that row'}."
    )


def _blank(col: pd.Series) -> np.ndarray:
    if col.dtype.kind in "fiub":
        return col.isna().to_numpy()
    return (col.isna() | (col.astype(str).str.strip() == "")).to_numpy(dtype=bool)


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
        codes, uniques = pd.factorize(chunk[self.names["gene"]])  # missing values: -1
        text = _name_text(uniques)
        empty = np.append((text == "").to_numpy(dtype=bool), True)  # the last: missing values
        no_gene = empty[codes]
        if no_gene.any():  # blank lines were kept so that row numbers stay line numbers
            rows = np.flatnonzero(no_gene)
            line = np.zeros(len(chunk), dtype=bool)
            line[rows] = (_blank(chunk[self.names["x"]].iloc[rows])
                          & _blank(chunk[self.names["y"]].iloc[rows]))
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
        """(gene/x/y table, extra columns), both indexed by data row; or the first problem.
        Called once, after the last chunk."""
        if self.rows == 0:
            raise InputError(
                f"{self.where}: the table has no data rows (only a header). Is it the right file?"
            )
        for role in ("x", "y"):
            if role in self.problems:
                first, count, text = self.problems[role]
                raise _bad_rows_at(self.where, self.names[role], self.p, first, count,
                                   _coordinate_problem(text), "Fix or remove")
        if "gene" in self.problems:
            first, count, _ = self.problems["gene"]
            raise _bad_rows_at(self.where, self.names["gene"], self.p, first, count,
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


# ----------------------------------------------------------------------------- checks


def check_spots(
    spots: pd.DataFrame,
    image_shape: tuple[int, ...],
    genes: Sequence[str],
    path: str | Path,
    outside: str = "error",
) -> tuple[pd.DataFrame, int]:
    """Check a spot table (from ``read_spots``) against the config genes and the image.

    Every requested gene must occur in the table, since a class without spots cannot be
    learned. Spots must lie on the image (0 <= x < W, 0 <= y < H, pixels); spots off the image
    almost always mean wrong units (micrometres vs pixels), swapped x/y or the wrong image, so
    by default they are an error; ``outside="drop"`` discards them instead (but all spots, or all
    of a requested gene, off the image is an error either way). The table is not filtered to
    ``genes``. Returns (spots, number dropped).
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
