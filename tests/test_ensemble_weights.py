"""Ensemble weights of the patch sizes (txmorph.train.ensemble), fitted on validation spots."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph.train.ensemble import ValidationSet, align, balanced_nll, fit_weights
from txmorph.train.training import TrainingParams, train_classifier, validation_split


def _probabilities(labels: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Two-class probabilities that put ``accuracy`` on the true class."""
    rng = np.random.default_rng(seed)
    right = np.clip(accuracy + rng.normal(0, 0.05, labels.size), 0.01, 0.99)
    p = np.empty((labels.size, 2))
    p[np.arange(labels.size), labels] = right
    p[np.arange(labels.size), 1 - labels] = 1 - right
    return p


def test_weights_favour_the_size_that_validates_best() -> None:
    labels = np.arange(200) % 2
    good, poor = _probabilities(labels, 0.9, 0), _probabilities(labels, 0.45, 1)
    weights = fit_weights(labels, [poor, good], "weighted")
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert weights[1] > 0.9
    mixed = weights[0] * poor + weights[1] * good
    assert balanced_nll(labels, mixed) <= balanced_nll(labels, (poor + good) / 2)
    assert fit_weights(labels, [poor, good], "best").tolist() == [0.0, 1.0]
    assert fit_weights(labels, [poor, good], "mean").tolist() == [0.5, 0.5]
    # Deterministic
    assert np.array_equal(weights, fit_weights(labels, [poor, good], "weighted"))


def test_balanced_loss_weighs_each_class_equally() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    p = np.zeros((100, 2))
    p[:90, 0] = 1.0  # the common class right
    p[90:, 0] = 1.0  # the rare one wrong
    assert balanced_nll(labels, p) == pytest.approx(0.5 * -np.log(1e-6))


def test_align_keeps_the_spots_every_size_validated_on() -> None:
    a = ValidationSet(np.array([[0, 5, 5], [0, 9, 9], [1, 3, 3]]), np.array([0, 1, 1]),
                      np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]))
    b = ValidationSet(np.array([[1, 3, 3], [0, 5, 5]]), np.array([1, 0]),
                      np.array([[0.3, 0.7], [0.6, 0.4]]))
    labels, (pa, pb) = align([a, b])
    assert labels.tolist() == [0, 1]  # keys (0, 5, 5) then (1, 3, 3)
    assert pa.tolist() == [[0.9, 0.1], [0.5, 0.5]] and pb.tolist() == [[0.6, 0.4], [0.3, 0.7]]
    bad = ValidationSet(b.keys, np.array([0, 0]), b.probabilities)
    with pytest.raises(ValueError, match="different labels"):
        align([a, bad])


def test_recorded_validation_patches_are_the_held_out_blocks() -> None:
    rng = np.random.default_rng(3)
    n = 160
    centres = np.column_stack([rng.integers(0, 800, n), rng.integers(0, 800, n)])
    labels = (centres[:, 1] > 400).astype(np.int64)
    images = (rng.random((n, 32, 32)) * 1000).astype(np.uint16)
    sections = np.zeros(n, np.int64)
    params = TrainingParams(epochs=1, patience=1, batch_size=16, seed=4)
    _, _, metadata = train_classifier(images, labels, sections, {0: (0.0, 1000.0)},
                                      ["background", "tissue"], 32, params, threads=1,
                                      centres=centres, largest_patch_size=64)
    split = validation_split(labels, sections, centres, 32, params, 64)
    assert split.info["split"] == "spatial"
    assert metadata["validation_patches"] == split.val.tolist()
    # None of them is a training patch, nor within one patch of one.
    assert not set(split.val) & set(split.train)
