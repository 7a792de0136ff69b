"""Gene-pair ranking: separated, well-sampled genes first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from txmorph.genechoice import candidate_genes, plot_gene_pair, rank_gene_pairs


def _spots(rng: np.random.Generator, gene: str, n: int, x: tuple[float, float],
           y: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"gene": gene, "x": rng.uniform(*x, n), "y": rng.uniform(*y, n)})


def _section(seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    mask = np.ones((200, 200), bool)
    spots = pd.concat([
        _spots(rng, "Left", 400, (0, 60), (0, 200)),      # a band on the left
        _spots(rng, "Right", 300, (140, 200), (0, 200)),  # a band on the right
        _spots(rng, "LeftToo", 350, (0, 70), (0, 200)),   # overlaps Left
        _spots(rng, "Rare", 20, (90, 110), (90, 110)),    # too few spots
        _spots(rng, "Everywhere", 2000, (0, 200), (0, 200)),
    ], ignore_index=True)
    return mask, spots


def test_candidates_need_spots_in_every_section() -> None:
    counts = [pd.Series({"A": 500, "B": 90, "C": 300}), pd.Series({"A": 40, "B": 200, "C": 250})]
    assert candidate_genes(counts, min_spots=100, max_genes=5) == ["C"]
    assert candidate_genes(counts, min_spots=30, max_genes=2) == ["C", "B"]


def test_separated_pair_ranks_first(tmp_path) -> None:
    sections = [_section(0), _section(1)]
    table, regions = rank_gene_pairs(sections, [10.0, 10.0], min_spots=100)
    assert "Rare" not in set(table["gene_a"]) | set(table["gene_b"])
    assert {table.iloc[0]["gene_a"], table.iloc[0]["gene_b"]} in ({"Left", "Right"},
                                                                  {"LeftToo", "Right"})
    overlap = table.set_index(["gene_a", "gene_b"])["overlap_dice"]
    pair = ("Left", "LeftToo") if ("Left", "LeftToo") in overlap.index else ("LeftToo", "Left")
    assert overlap[pair] > 0.5 > overlap.iloc[0]
    assert len(regions) == 2 and regions[0]["Left"][:, :40].mean() > 0.5
    path = tmp_path / "pair.png"
    images = {"a": np.random.default_rng(0).random((200, 200)), "b": np.zeros((200, 200))}
    plot_gene_pair(images, {"a": regions[0], "b": regions[1]},
                   {"a": sections[0][1], "b": sections[1][1]}, ("Left", "Right"), table, str(path))
    assert path.stat().st_size > 1000


def test_too_few_genes_is_explained() -> None:
    with pytest.raises(ValueError, match="fewer than two genes"):
        rank_gene_pairs([_section(0)], [10.0], min_spots=1000)
