"""Joint expression niches (txmorph.niches): one clustering over sections, so a niche is the
same kind of tissue in each; named by size and by their enriched genes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("points2regions")

from txmorph.niches import joint_niches, niche_genes  # noqa: E402


def _section(rng: np.random.Generator, flip: bool, n: int = 6000) -> tuple[pd.DataFrame, np.ndarray]:
    """A 400 x 400 µm section: a 'white matter' mix on one side, a 'cortex' mix on the other
    (which side depends on ``flip``), plus genes found everywhere."""
    x, y = rng.uniform(0, 400, n), rng.uniform(0, 400, n)
    white = (x < 160) if not flip else (x > 240)
    genes = np.where(white, rng.choice(["Mbp", "Plp1", "Mobp", "Actb"], n, p=[.35, .3, .25, .1]),
                     rng.choice(["Slc17a7", "Neurod6", "Satb2", "Actb"], n, p=[.35, .3, .25, .1]))
    return pd.DataFrame({"gene": genes, "x": x, "y": y}), white


def test_a_niche_is_the_same_tissue_in_both_sections_and_is_named_by_its_genes() -> None:
    rng = np.random.default_rng(0)
    (first, white1), (second, white2) = _section(rng, False), _section(rng, True)
    niches = joint_niches([first, second], k=2, bin_um=10.0, sigma_um=20.0, seed=1)
    assert [len(labels) for labels in niches.labels] == [len(first), len(second)]

    def majority(labels, where):
        return np.bincount(labels[where & (labels >= 0)]).argmax()

    white_niche = majority(niches.labels[0], white1)
    assert majority(niches.labels[1], white2) == white_niche  # one clustering, one meaning
    assert majority(niches.labels[0], ~white1) == majority(niches.labels[1], ~white2) != white_niche
    assert set(niches.top_genes[white_niche]) == {"Mbp", "Plp1", "Mobp"}
    # niche1 is the larger: the 'cortex' mix covers 60 % of each section
    assert niches.names[0].startswith("niche1 (") and "Slc17a7" in niches.names[0]
    assert niches.shares.shape == (2, 2) and np.allclose(niches.shares.sum(1), 1)
    # Seeded: the same labels again
    again = joint_niches([first, second], k=2, bin_um=10.0, sigma_um=20.0, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(niches.labels, again.labels))


def test_bad_settings_are_refused() -> None:
    table = pd.DataFrame({"gene": ["A"], "x": [0.0], "y": [0.0]})
    with pytest.raises(ValueError, match="at least 2"):
        joint_niches([table], k=1, bin_um=10.0, sigma_um=20.0, seed=0)
    with pytest.raises(ValueError, match="positive"):
        joint_niches([table], k=2, bin_um=0.0, sigma_um=20.0, seed=0)
    with pytest.raises(ValueError, match="no spots"):
        joint_niches([table.iloc[:0]], k=2, bin_um=10.0, sigma_um=20.0, seed=0)


def test_rare_genes_do_not_name_a_niche() -> None:
    genes = np.array(["Rare"] * 3 + ["Common"] * 100 + ["Other"] * 100)
    labels = np.array([0] * 3 + [0] * 60 + [1] * 40 + [1] * 100)
    assert niche_genes(genes, labels, 2) == [["Common"], ["Other", "Common"]]
