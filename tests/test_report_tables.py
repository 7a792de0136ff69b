"""Markdown tables of the summary and the real-data report (txmorph.evaluate.tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from txmorph.evaluate.metrics import dice_table
from txmorph.evaluate.tables import dice_markdown

CLASSES = ["background", "tissue", "Prox1", "Mbp"]


def test_dice_markdown_contains_every_model_and_class() -> None:
    table = pd.concat(
        [
            dice_table("test", "size32", CLASSES, [0.9, 0.5, np.nan, 0.25]),
            dice_table("test", "ensemble", CLASSES, [0.95, 0.6, 0.4, 0.3]),
        ]
    )
    text = dice_markdown(table)
    lines = text.splitlines()
    assert lines[0] == "| model | background | tissue | Prox1 | Mbp | mean |"
    assert len(lines) == 4
    for word in ["size32", "ensemble", *CLASSES, "mean", "n/e", "0.550", "0.250"]:
        assert word in text
    other = dice_table("other", "size32", CLASSES, [1, 1, 1, 1])
    several = dice_markdown(pd.concat([table, other]))
    assert several.splitlines()[0].startswith("| section | model |")
    with pytest.raises(ValueError, match="duplicate"):
        dice_markdown(pd.concat([table, table]))
