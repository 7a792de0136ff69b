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
    niches = joint_niches([first, second], k=2, bin_um=10.0, smoothing_um=20.0, seed=1)
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
    again = joint_niches([first, second], k=2, bin_um=10.0, smoothing_um=20.0, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(niches.labels, again.labels))


def test_bad_settings_are_refused() -> None:
    table = pd.DataFrame({"gene": ["A"], "x": [0.0], "y": [0.0]})
    with pytest.raises(ValueError, match="at least 2"):
        joint_niches([table], k=1, bin_um=10.0, smoothing_um=20.0, seed=0)
    with pytest.raises(ValueError, match="positive"):
        joint_niches([table], k=2, bin_um=0.0, smoothing_um=20.0, seed=0)
    with pytest.raises(ValueError, match="no spots"):
        joint_niches([table.iloc[:0]], k=2, bin_um=10.0, smoothing_um=20.0, seed=0)


def test_rare_genes_do_not_name_a_niche() -> None:
    genes = np.array(["Rare"] * 3 + ["Common"] * 100 + ["Other"] * 100)
    labels = np.array([0] * 3 + [0] * 60 + [1] * 40 + [1] * 100)
    # Rare: all 3 in niche 0, the most enriched, but too few spots to name it
    assert niche_genes(genes, labels, 2) == [["Common"], ["Other"]]
    everywhere = np.array(["A"] * 300 + ["B"] * 300 + ["C"] * 600)
    where = np.array([0] * 300 + [1] * 300 + [0] * 200 + [1] * 400)
    assert niche_genes(everywhere, where, 2) == [["A"], ["B"]]  # C is everywhere


def test_the_niche_map_partitions_the_tissue_by_local_majority() -> None:
    from txmorph.niches import niche_labels

    rng = np.random.default_rng(3)
    mask = np.zeros((200, 300), bool)
    mask[10:190, 10:290] = True
    left = np.column_stack([rng.uniform(10, 150, 3000), rng.uniform(10, 190, 3000)])
    right = np.column_stack([rng.uniform(150, 290, 3000), rng.uniform(10, 190, 3000)])
    speck = np.array([[60.0, 100.0]] * 5)  # a few right-niche spots inside the left niche
    labels = niche_labels(mask, {"niche1": left, "niche2": np.vstack([right, speck])}, 8.0)
    assert labels.dtype == np.uint8 and (labels[~mask] == 0).all()
    assert set(np.unique(labels[mask])) == {2, 3}  # no general tissue left: a partition
    assert (labels[20:180, 20:130] == 2).mean() > 0.99  # the speck joined its surroundings
    assert (labels[20:180, 170:280] == 3).mean() > 0.99
    # no niche spot on the tissue at all: general tissue
    empty = niche_labels(mask, {"niche1": left[:0], "niche2": right[:0]}, 8.0)
    assert set(np.unique(empty)) == {0, 1}


def test_a_sparse_section_and_too_many_niches_are_explained() -> None:
    from txmorph.niches import Niches, scale_problem, support_problem

    assert scale_problem("s", 10_000, 1e6, 15.0, 10) is None  # 28 spots per 30 µm disk
    message = scale_problem("s", 100, 1e6, 15.0, 10)
    assert "section s" in message and "truth.sigma_um" in message and "at least" in message
    niches = Niches([np.array([0] * 90 + [1] * 5)], ["niche1 (A)", "niche2 (B)", "niche3"],
                    [["A"], ["B"], []], np.zeros((1, 3)))
    problem = support_problem(niches, 3, [0], 50)
    assert "found 2 niche(s)" in problem and "niche2 (B): 5" in problem
    assert "at most 2" in problem
    assert support_problem(Niches([np.array([0] * 60 + [1] * 60)], ["a", "b"], [[], []],
                                  np.zeros((1, 2))), 2, [0], 50) is None


def test_a_niche_of_the_test_sections_only_is_left_out_not_an_error() -> None:
    from txmorph.niches import Niches, support_problem, untrained_niches

    train, test = np.array([0] * 80 + [1] * 70 + [2] * 3), np.array([2] * 900 + [0] * 100)
    shares = np.array([[80 / 153, 70 / 153, 3 / 153], [0.1, 0.0, 0.9]])
    niches = Niches([train, test], ["niche1 (A)", "niche2 (B)", "niche3 (C)"],
                    [["A"], ["B"], ["C"]], shares)
    assert support_problem(niches, 3, [0], 50) is None  # K is fine: niche3 is everywhere else
    gaps = untrained_niches(niches, 3, [0], 50, ["left", "right"])
    assert list(gaps) == ["niche3 (C)"] and "3 of its spots" in gaps["niche3 (C)"]
    assert "right 90%" in gaps["niche3 (C)"]
    # the test section holds every niche, the training one only one: nothing to learn
    lonely = Niches([np.array([0] * 80 + [1] * 3), np.array([1] * 500 + [0] * 50)],
                    ["niche1", "niche2"], [[], []], np.zeros((2, 2)))
    assert "nothing to learn" in support_problem(lonely, 2, [0], 50)


def test_reused_niche_models_ask_for_niches_not_genes() -> None:
    from txmorph.reference import class_labels, make_reference, reference_problem

    settings = {"quantity": "density", "sigma_um": 15.0, "rule": "otsu", "enrichment": 2.0}
    groups = {"niche1": ["niche1"], "niche2": ["niche2"]}
    niches = {"niche1": {"name": "niche1 (Mbp)", "top_genes": ["Mbp"]},
              "niche2": {"name": "niche2", "top_genes": []}}
    reference = make_reference(groups, {"niche1": np.inf, "niche2": np.inf}, {}, settings,
                               {"niche1": 5, "niche2": 3}, ["left"], niches=niches)
    assert reference["classes"]["niche1"]["threshold"] is None  # a partition: no thresholds
    assert class_labels(reference, ["tissue", "niche1"]) == {"tissue": "tissue",
                                                              "niche1": "niche1 (Mbp)"}
    assert reference_problem(reference, groups, settings, "m/reference.json") is None
    problem = reference_problem(reference, {"Prox1": ["Prox1"], "Mbp": ["Mbp"]}, settings,
                                "m/reference.json")
    assert "2 expression niches (niche1 (Mbp), niche2)" in problem and "`niches: 2`" in problem
