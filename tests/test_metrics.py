"""Dice scores, grid sampling and tables (txmorph.evaluate.metrics), checked against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph.evaluate import metrics
from txmorph.evaluate.metrics import (
    confusion_matrix,
    NO_GENE_CLASS,
    NO_REFERENCE,
    NO_TISSUE,
    dice_scores,
    score_labels,
    dice_table,
    grid_positions,
    label_map,
    sample_labels_on_grid,
)


def test_hand_computed_dice() -> None:
    truth = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 1, 1, 2]])
    # class 0: |P|=2, |T|=4, overlap 2 -> 4/6 = 2/3
    # class 1: |P|=5, |T|=4, overlap 3 -> 6/9 = 2/3
    # class 2: |P|=1, |T|=0 -> 0
    np.testing.assert_allclose(dice_scores(pred, truth, 3), [2 / 3, 2 / 3, 0.0])


def test_hand_computed_half() -> None:
    truth = np.array([1, 1, 0, 0])
    pred = np.array([1, 0, 1, 0])
    # class 1: overlap 1, |P| = |T| = 2 -> 0.5; class 0 likewise
    np.testing.assert_allclose(dice_scores(pred, truth, 2), [0.5, 0.5])


def test_perfect_disjoint_and_absent() -> None:
    labels = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    np.testing.assert_allclose(dice_scores(labels, labels, 4)[:3], [1.0, 1.0, 1.0])
    assert np.isnan(dice_scores(labels, labels, 4)[3])  # class 3 absent from both
    ones, twos = np.ones((3, 3), np.int64), np.full((3, 3), 2, np.int64)
    scores = dice_scores(ones, twos, 3)
    assert np.isnan(scores[0]) and scores[1] == 0.0 and scores[2] == 0.0


def test_confusion_matrix_orientation_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (37, 23)).astype(np.uint8)
    pred = rng.integers(0, 4, (37, 23))
    whole = confusion_matrix(pred, truth, 4)
    assert whole[2, 3] == np.sum((truth == 2) & (pred == 3))
    assert whole.sum() == truth.size
    monkeypatch.setattr(metrics, "CHUNK_PIXELS", 100)  # many chunks, one partial
    np.testing.assert_array_equal(confusion_matrix(pred, truth, 4), whole)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same shape"):
        dice_scores(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="0..1"):
        dice_scores(np.full((2, 2), 2), np.zeros((2, 2), int), 2)
    with pytest.raises(ValueError, match="integers"):
        dice_scores(np.zeros((2, 2)), np.zeros((2, 2), int), 2)


@pytest.mark.parametrize(
    ("length", "stride", "expected"),
    [
        (3, 1, [0, 1, 2]),
        (10, 4, [2, 6, 9]),  # last centre 10 clipped to 9 (partial cell of 2 pixels)
        (9, 4, [2, 6, 8]),  # last cell has 1 pixel; centre 10 clipped to 8
        (12, 4, [2, 6, 10]),  # exact multiple: no clipping
        (11, 5, [2, 7, 10]),  # last centre 12 clipped to 10
        (13, 5, [2, 7, 12]),  # last centre 12 is inside
    ],
)
def test_grid_positions(length: int, stride: int, expected: list[int]) -> None:
    n = -(-length // stride)
    np.testing.assert_array_equal(grid_positions(length, stride, n), expected)


def test_sample_labels_on_grid() -> None:
    labels = np.arange(11 * 10).reshape(11, 10)  # value = 10 * row + col
    out = sample_labels_on_grid(labels, 5, (3, 2))
    rows, cols = [2, 7, 10], [2, 7]
    np.testing.assert_array_equal(out, labels[np.ix_(rows, cols)])
    out = sample_labels_on_grid(labels, 4, (3, 3))
    np.testing.assert_array_equal(out, labels[np.ix_([2, 6, 10], [2, 6, 9])])
    np.testing.assert_array_equal(sample_labels_on_grid(labels, 1, labels.shape), labels)
    with pytest.raises(ValueError, match="ceil"):
        sample_labels_on_grid(labels, 4, (2, 3))


def test_dice_table_mean_ignores_nan() -> None:
    classes = ["background", "tissue", "A", "B"]
    table = dice_table("test", "size32", classes, np.array([1.0, 0.5, np.nan, 0.0]))
    assert list(table.columns) == ["section", "model", "class", "dice", "evaluable", "note"]
    assert list(table["class"]) == [*classes, "mean"]
    assert (table["section"] == "test").all() and (table["model"] == "size32").all()
    assert table["dice"].iloc[-1] == pytest.approx(0.5)
    assert list(table["evaluable"]) == [True, True, False, True, True]
    all_nan = dice_table("s", "m", ["a"], [np.nan])
    assert np.isnan(all_nan["dice"].iloc[-1]) and not all_nan["evaluable"].iloc[-1]
    with pytest.raises(ValueError):
        dice_table("s", "m", ["a", "b"], [1.0])


CLASSES = ["background", "tissue", "A", "B"]


def test_blank_section_is_not_evaluable_not_perfect() -> None:
    # An empty tissue mask: the reference is all background, so is the prediction. Dice of
    # background is 1, but the section holds nothing to score: no number may be reported.
    background = np.zeros((8, 8), np.uint8)
    table = score_labels("s", "ensemble", background, background, CLASSES)
    assert table["dice"].isna().all()
    assert not table["evaluable"].any()
    assert (table["note"] == NO_TISSUE).all()


def test_empty_reference_class_is_not_evaluable_even_if_predicted() -> None:
    reference = np.zeros((8, 8), np.uint8)
    reference[2:6, 2:6] = 1
    reference[3:5, 3:5] = 2  # gene A present, gene B absent from the section
    predicted = reference.copy()
    predicted[0, 0] = 3  # B predicted somewhere: Dice over an empty reference is undefined
    table = score_labels("s", "m", predicted, reference, CLASSES).set_index("class")
    assert not table.loc["B", "evaluable"] and np.isnan(table.loc["B", "dice"])
    assert table.loc["B", "note"] == (NO_REFERENCE + "; painted on 1.6% of the scored pixels "
                                      "(all false positives)")
    assert table.loc["A", "dice"] == 1.0
    # The mean covers the evaluable classes only.
    expected = np.mean([table.loc[c, "dice"] for c in ("background", "tissue", "A")])
    assert table.loc["mean", "dice"] == pytest.approx(expected)


def test_absent_class_painted_counts_against_the_classes_it_covers() -> None:
    # Gene B is absent from the test section (its reference is empty: not evaluable), but the
    # model paints it over half of the general tissue: those pixels are false negatives of
    # tissue, so tissue's Dice and the mean fall; nothing is re-drawn or excused.
    reference = np.zeros((8, 8), np.uint8)
    reference[:, 2:] = 1
    reference[2:6, 2:4] = 2
    predicted = reference.copy()
    honest = score_labels("s", "m", predicted, reference, CLASSES).set_index("class")
    predicted[(reference == 1) & (np.arange(8)[None, :] >= 5)] = 3
    painted = score_labels("s", "m", predicted, reference, CLASSES).set_index("class")
    assert not painted.loc["B", "evaluable"] and np.isnan(painted.loc["B", "dice"])
    assert "painted on 37.5% of the scored pixels (all false positives)" in painted.loc["B", "note"]
    assert honest.loc["B", "note"] == NO_REFERENCE  # not painted: nothing to add
    tissue = (reference == 1).sum()
    kept = tissue - (predicted == 3).sum()
    assert painted.loc["tissue", "dice"] == pytest.approx(2 * kept / (kept + tissue))
    assert painted.loc["mean", "dice"] < honest.loc["mean", "dice"] == 1.0


def test_no_evaluable_gene_means_no_mean() -> None:
    reference = np.zeros((8, 8), np.uint8)
    reference[2:6, 2:6] = 1  # tissue but no gene region at all
    table = score_labels("s", "m", reference, reference, CLASSES).set_index("class")
    assert table.loc["tissue", "dice"] == 1.0
    assert np.isnan(table.loc["mean", "dice"]) and not table.loc["mean", "evaluable"]
    assert table.loc["mean", "note"] == NO_GENE_CLASS


def test_class_named_not_evaluable_by_checks() -> None:
    reference = np.zeros((8, 8), np.uint8)
    reference[2:6, 2:6] = 1
    reference[2:4, 2:4] = 2
    reference[4:6, 4:6] = 3
    table = score_labels("s", "m", reference, reference, CLASSES,
                         not_evaluable={"B": "too few spots"}).set_index("class")
    assert not table.loc["B", "evaluable"] and table.loc["B", "note"] == "too few spots"
    assert table.loc["A", "evaluable"] and table.loc["mean", "dice"] == 1.0


def test_label_map_relabels_by_name_and_context_removes_specks() -> None:
    classes = ["background", "tissue", "A", "B"]
    probabilities = np.zeros((3, 20, 20), np.float32)  # a model without background
    probabilities[0] = 0.6  # tissue
    probabilities[1, :, :10] = 0.7  # A on the left half
    probabilities[2, 5, 15] = 0.9  # one B pixel: noise at the scale of a region
    plain = label_map(probabilities, ["tissue", "A", "B"], classes)
    assert plain[0, 0] == 2 and plain[0, 19] == 1 and plain[5, 15] == 3
    smoothed = label_map(probabilities, ["tissue", "A", "B"], classes, context_px=2.0)
    assert smoothed[5, 15] == 1 and smoothed[10, 2] == 2 and smoothed[10, 17] == 1
    with pytest.raises(ValueError, match="not among"):
        label_map(probabilities, ["tissue", "A", "C"], classes)


def test_a_mean_over_one_evaluable_class_is_no_evidence() -> None:
    from txmorph.evaluate.metrics import ONE_CLASS

    classes = ["background", "tissue", "niche1", "niche2"]
    reference = np.full((8, 8), 2, np.uint8)  # the scored tissue is all niche1
    table = score_labels("s", "m", reference, reference, classes).set_index("class")
    assert table.loc["niche1", "dice"] == 1.0  # painting niche1 everywhere: perfect
    assert np.isnan(table.loc["mean", "dice"]) and table.loc["mean", "note"] == ONE_CLASS
    reference[:, 4:] = 3  # two niches: a mean again
    assert score_labels("s", "m", reference, reference, classes).set_index(
        "class").loc["mean", "dice"] == 1.0


def test_an_unlearned_class_says_how_much_tissue_it_leaves_out() -> None:
    from txmorph.evaluate.metrics import unlearned_notes

    classes = ["background", "tissue", "niche1", "niche2"]
    reference = np.zeros((10, 10), np.uint8)
    reference[:, 2:] = 2
    reference[:, 7:] = 3  # niche2: 30 of the 100 pixels
    notes = unlearned_notes(reference, classes, ["tissue", "niche2"],
                            {"niche2": "the training sections lack it"})
    assert notes["niche2"] == ("not learned: the training sections lack it; 30.0% of this "
                               "section, left out of every score")
    assert notes["tissue"] == "not learned: no training data"  # no pixels: nothing left out
