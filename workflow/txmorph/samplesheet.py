"""Sections from a sample sheet: one TSV row per section, as snakemake-workflows do with
``samples.tsv``.

``sections: config/sections.tsv`` in the config names a tab-separated file whose header holds
``name`` and the keys of a section mapping (``role``, ``image``, ``spots``, ``pixel_size_um``,
...). A nested key is either one column holding a YAML flow value (``columns`` =
``{gene: target, x: xc, y: yc}``, ``region`` = ``{x: [0, 2301]}``) or one column per leaf with
a dotted name (``columns.gene``, ``region.x``). An empty cell leaves the key out (its default
applies), so rows of different roles share one sheet: a ``predict`` row leaves ``spots``
empty; a row may end before its trailing empty cells. Lines starting with ``#`` and blank
lines are skipped. Paths are relative to the
working directory, as in config.yaml.

Every row is checked against the schema's section entry here, before the workflow uses it:
a problem is reported with the file, the row's line number, the section and the column
(:class:`SheetError`). The result is the same mapping a ``sections:`` block in YAML would
give, so the same section gives the same jobs whichever way it is written.
"""

from __future__ import annotations

import copy
import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from txmorph import configcheck, roles
from txmorph.errors import InputError

NAME_COLUMN = "name"


class SheetError(InputError):
    """A sample sheet that cannot be used; the message names file, row and column.

    Parameters
    ----------
    message : str
        The whole message the user sees.
    """


def section_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema of one section entry (``sections.<name>``) of the config schema.

    Parameters
    ----------
    schema : Mapping[str, Any]
        The whole config schema.

    Returns
    -------
    Mapping[str, Any]
        The section entry's schema (references resolved).
    """
    return configcheck.resolve_ref(schema["properties"]["sections"]["additionalProperties"],
                                schema)


def read_section_sheet(path: str | os.PathLike, schema: Mapping[str, Any]) -> dict[str, dict]:
    """The sections of a sample sheet, ``{name: section mapping}`` in row order.

    Raises :class:`SheetError` for a missing or unreadable file, a missing ``name`` or
    required column, an unknown column, a row with more cells than the header, a duplicate
    name, or a value the schema refuses. Rows are numbered by their line in the file.

    Parameters
    ----------
    path : str or os.PathLike
        The TSV sheet.
    schema : Mapping[str, Any]
        The whole config schema; each row is validated against its section entry.

    Returns
    -------
    dict[str, dict]
        The sections, as ``config["sections"]`` holds them.
    """
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise SheetError(f"Sample sheet {shown} (config `sections`) not found: give the path of "
                         "a tab-separated file with one row per section, relative to the "
                         "working directory")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SheetError(f"Sample sheet {shown} cannot be read: {error}") from None
    numbered = [(number, line) for number, line in enumerate(lines, start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise SheetError(f"Sample sheet {shown} is empty: it needs a header line (name, role, "
                         "image, spots, ...) and one row per section")
    rows = list(csv.reader([line for _, line in numbered], delimiter="\t"))
    header = [cell.strip() for cell in rows[0]]
    entry = section_schema(schema)
    _check_header(shown, numbered[0][0], header, entry, schema)
    sections: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    for (number, _), cells in zip(numbered[1:], rows[1:]):
        where = f"Sample sheet error in {shown}, row {number}"
        if len(cells) > len(header):
            raise SheetError(f"{where}: {len(cells)} tab-separated cells, the header has "
                             f"{len(header)}; separate the cells by tabs (a cell may hold "
                             "spaces, not tabs)")
        # Editors drop trailing empty cells: a shorter row leaves its last keys out.
        cells = cells + [""] * (len(header) - len(cells))
        values = {column: cell.strip() for column, cell in zip(header, cells)}
        name = values.pop(NAME_COLUMN)
        if not name:
            raise SheetError(f"{where}, column `{NAME_COLUMN}`: the section name is empty")
        if name in first_line:
            raise SheetError(f"{where}, column `{NAME_COLUMN}`: duplicate section name {name!r} "
                             f"(also on row {first_line[name]}); names must be unique, they "
                             "name the folders in results/")
        first_line[name] = number
        section = _section_from_cells(values, entry, schema, f"{where} (section {name!r})")
        _validate(section, name, entry, schema, f"{where} (section {name!r})")
        problem = roles.spots_problem(name, section)
        if problem:
            raise SheetError(f"{where}, column `spots`: {problem}")
        sections[name] = section
    if not sections:
        raise SheetError(f"Sample sheet {shown} has a header but no section rows")
    return sections


def _check_header(shown: str, number: int, header: list[str], entry: Mapping[str, Any],
                  schema: Mapping[str, Any]) -> None:
    where = f"Sample sheet error in {shown}, header (row {number})"
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise SheetError(f"{where}: column {repeated[0]!r} appears more than once")
    known = set(entry.get("properties", {}))
    required = [NAME_COLUMN, *entry.get("required", [])]
    missing = [column for column in required if column not in header]
    if missing:
        raise SheetError(f"{where}: no column `{missing[0]}` (required columns: "
                         f"{', '.join(required)}); the header names the keys of a section, "
                         "separated by tabs")
    for column in header:
        top = column.split(".")[0]
        if column == NAME_COLUMN or top in known:
            continue
        # Only keys of a section: a sheet column is never a key elsewhere in the config.
        guesses = [guess.split(".")[-1] for guess in
                   configcheck.suggest(("sections", "row"), top, schema)
                   if guess.startswith("sections.")]
        hint = (f"did you mean `{guesses[0]}`?" if guesses
                else f"valid columns: {NAME_COLUMN}, {', '.join(sorted(known))}")
        raise SheetError(f"{where}: unknown column `{column}`; {hint}")


def _section_from_cells(values: Mapping[str, str], entry: Mapping[str, Any],
                        schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One row's cells as a section mapping: empty cells left out, values typed by the schema,
    dotted columns nested."""
    section: dict[str, Any] = {}
    for column, text in values.items():
        if not text:
            continue
        parts = column.split(".")
        subschema = _subschema(entry, parts, schema)
        try:
            value = _typed(text, subschema, schema)
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise SheetError(f"{where}, column `{column}`: {text!r} is not a valid value "
                             f"({problem})") from None
        node = section
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SheetError(f"{where}, column `{column}`: `{part}` is also given as a "
                                 "whole; use either the column or its dotted parts")
            node = child
        if parts[-1] in node:
            raise SheetError(f"{where}, column `{column}`: given twice (as a whole and by its "
                             "dotted parts); use one of them")
        node[parts[-1]] = value
    return section


def _subschema(entry: Mapping[str, Any], parts: list[str],
               schema: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Mapping[str, Any] = entry
    for part in parts:
        node = configcheck.resolve_ref(node, schema).get("properties", {}).get(part, {})
    return configcheck.resolve_ref(node, schema)


def _allowed_types(subschema: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for alternatives in ("oneOf", "anyOf"):
        for each in subschema.get(alternatives, ()):
            found |= _allowed_types(configcheck.resolve_ref(each, schema), schema)
    kind = subschema.get("type")
    found |= {kind} if isinstance(kind, str) else set(kind or ())
    return found


def _typed(text: str, subschema: Mapping[str, Any], schema: Mapping[str, Any]) -> Any:
    """A cell's value: kept as text where the key can only be a string (paths, roles: never
    ``no`` -> False or ``123`` -> 123), otherwise read as YAML (numbers, lists, mappings)."""
    types = _allowed_types(subschema, schema)
    if types == {"string"}:
        return text
    return yaml.safe_load(text)


def _validate(section: dict[str, Any], name: str, entry: Mapping[str, Any],
              schema: Mapping[str, Any], where: str) -> None:
    """The first schema violation of one row, as ``<where>, column `key`: what is wrong``."""
    root = {"definitions": schema.get("definitions", {}), "type": "object",
            "properties": {"sections": {
                "type": "object",
                "propertyNames": schema["properties"]["sections"].get("propertyNames", {}),
                "additionalProperties": entry}}}
    config = {"sections": {name: copy.deepcopy(section)}}
    errors = configcheck.schema_errors(config, root)
    if not errors:
        return
    error = errors[0]
    path = tuple(error.absolute_path)
    text, key = configcheck.explain_error(error, config, root)
    key_parts = (key if key is not None else path)[2:]
    if "propertyNames" in error.schema_path:
        column = NAME_COLUMN
        text = text.replace("section name", "the name", 1)
    elif error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        column = ".".join(str(part) for part in (*key_parts, missing[0]))
        text = f"`{column}` is empty; this row needs it"
    else:
        column = ".".join(str(part) for part in key_parts if not isinstance(part, int)) or "?"
        text = text.replace(f"`sections.{name}.", "`")
    raise SheetError(f"{where}, column `{column}`: {text}")
