"""Markdown tables of the run's summary (``results/report/summary.md``, rule summary) and of
the real-data report (``workflow/benchmarks/realbench.py``): the Dice table, the input checks,
the classes that were not evaluable. Text, not figures: no matplotlib here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from txmorph.classes import MEAN_CLASS


def _cell(value: float) -> str:
    # Not a number means not evaluable (empty reference or tissue, or a class absent).
    return "n/e" if value is None or not np.isfinite(value) else f"{value:.3f}"


def not_evaluable_markdown(table: pd.DataFrame) -> str:
    """Bullet list of the not-evaluable classes of a Dice table and why (empty if none).

    Parameters
    ----------
    table : pd.DataFrame
        Dice rows with ``section``, ``class``, ``evaluable`` and ``note``.

    Returns
    -------
    str
        One ``- `section` / class: not evaluable (note)`` line per class; "" if none.
    """
    if "evaluable" not in table.columns:
        return ""
    rows = table.loc[~table["evaluable"].astype(bool), ["section", "class", "note"]]
    rows = rows.drop_duplicates()
    return "\n".join(f"- `{s}` / {c}: not evaluable ({n})"
                     for s, c, n in rows.itertuples(index=False))


def checks_markdown(records: Sequence[Mapping]) -> str:
    """Markdown table of the input checks of each section (``checks.json`` records), then
    every warning and not-evaluable finding as a bullet.

    Parameters
    ----------
    records : Sequence[Mapping]
        One ``results/sections/{s}/checks.json`` record per section.

    Returns
    -------
    str
        The table, then the findings.
    """
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    lines = ["| section | role | image (px) | tissue | spots | spots on tissue | tissue within "
             "spot extent | spots per gene |", "|---|---|---|---|---|---|---|---|"]
    notes = []
    for record in records:
        genes = ", ".join(f"{g} {facts['spots']}" for g, facts in record["genes"].items())
        height, width = record["image_shape"]
        lines.append(
            f"| `{record['section']}` | {record['role']} | {height} x {width} | "
            f"{pct(record['tissue_fraction'])} | {record['spots_total']} | "
            f"{pct(record['fraction_in_tissue'])} | {pct(record['tissue_covered_by_spots'])} | "
            f"{genes} |")
        notes += [f"- {f['severity'].replace('_', ' ')}: {f['message']}"
                  for f in record["findings"]]
    return "\n".join(lines + ([""] + notes if notes else []))


def dice_markdown(table: pd.DataFrame) -> str:
    """Markdown pivot of a Dice table: a row per model, a column per class, then ``mean``.

    Classes and models keep their order of first appearance. With several sections in the
    table, a leading ``section`` column tells the rows apart. NaN (class absent from both
    maps, or not evaluable) is written ``n/e``. Duplicate (section, model, class) rows are a
    bug upstream and raise rather than being silently averaged.

    Parameters
    ----------
    table : pd.DataFrame
        Rows with ``section``, ``model``, ``class`` and ``dice``.

    Returns
    -------
    str
        The Markdown table.
    """
    needed = {"section", "model", "class", "dice"}
    if not needed <= set(table.columns):
        raise ValueError(f"table needs columns {sorted(needed)}, has {list(table.columns)}")
    keys = ["section", "model", "class"]
    if table.duplicated(keys).any():
        raise ValueError("table has duplicate (section, model, class) rows")
    classes = [c for c in dict.fromkeys(table["class"]) if c != MEAN_CLASS]
    if (table["class"] == MEAN_CLASS).any():
        classes.append(MEAN_CLASS)
    several = table["section"].nunique() > 1
    lookup = {
        (s, m, c): float(d)
        for s, m, c, d in table[["section", "model", "class", "dice"]].itertuples(index=False)
    }
    head = (["section"] if several else []) + ["model", *classes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for section, model in dict.fromkeys(zip(table["section"], table["model"])):
        cells = [_cell(lookup.get((section, model, c), float("nan"))) for c in classes]
        lead = ([str(section)] if several else []) + [str(model)]
        lines.append("| " + " | ".join(lead + cells) + " |")
    return "\n".join(lines)
