"""Ensemble weights of the patch sizes, fitted on the training sections' validation patches.

The plain ensemble averages every size's probability map. Sizes differ in how well they
carry to unseen tissue, and the spatially held-out validation blocks of the training sections
(``txmorph.train.splits``) can tell them apart without looking at a test section: every size
is sampled at the same centres (rule centres), so the patches one seed holds out are, for the
most part, the same spots of tissue for every size, and no size trained on them or within one
patch of them. On the spots held out by every size, the weights of the mixture
``sum_k w_k p_k`` are fitted to minimise the class-balanced validation cross-entropy (the
loss early stopping uses), with ``w`` on the simplex; ``best`` instead puts all weight on the
size with the lowest such loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

ENSEMBLE_METHODS = ("mean", "weighted", "best")
#: Probabilities are floored here before the logarithm (a size that is sure and wrong).
_FLOOR = 1e-6


@dataclass(frozen=True)
class ValidationSet:
    """One size's predictions on its own held-out validation patches.

    Parameters
    ----------
    keys : np.ndarray
        (N, 3) int64 (section, row, col) of each patch centre.
    labels : np.ndarray
        (N,) class of each patch.
    probabilities : np.ndarray
        (N, C) the model's class probabilities.
    """

    keys: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray


def align(sets: Sequence[ValidationSet]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The spots every size validated on, with each size's probabilities there.

    Parameters
    ----------
    sets : Sequence[ValidationSet]
        One per size.

    Returns
    -------
    tuple[np.ndarray, list[np.ndarray]]
        (M,) labels and, per size, (M, C) probabilities, in one order (sorted by key).

    Raises
    ------
    ValueError
        When two sizes give one spot different labels.
    """
    common = None
    for item in sets:
        keys = {tuple(k) for k in np.asarray(item.keys).tolist()}
        common = keys if common is None else common & keys
    order = sorted(common or ())
    labels: np.ndarray | None = None
    probabilities = []
    for item in sets:
        where = {tuple(k): i for i, k in enumerate(np.asarray(item.keys).tolist())}
        index = np.asarray([where[k] for k in order], dtype=np.int64)
        these = np.asarray(item.labels)[index]
        if labels is not None and not np.array_equal(labels, these):
            raise ValueError("two patch sizes give one validation spot different labels")
        labels = these
        probabilities.append(np.asarray(item.probabilities, np.float64)[index])
    return (labels if labels is not None else np.zeros(0, np.int64)), probabilities


def balanced_nll(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Class-balanced cross-entropy: the mean over the classes present of their mean loss.

    Parameters
    ----------
    labels : np.ndarray
        (M,) classes.
    probabilities : np.ndarray
        (M, C) class probabilities.

    Returns
    -------
    float
        The loss; NaN without samples.
    """
    if labels.size == 0:
        return float("nan")
    picked = np.maximum(probabilities[np.arange(labels.size), labels], _FLOOR)
    losses = -np.log(picked)
    return float(np.mean([losses[labels == c].mean() for c in np.unique(labels)]))


def fit_weights(labels: np.ndarray, probabilities: Sequence[np.ndarray],
                method: str) -> np.ndarray:
    """Weights of the sizes' probabilities: equal, fitted on validation spots, or the best.

    ``weighted`` minimises ``balanced_nll`` of the mixture over the simplex (softmax
    parametrisation, L-BFGS from equal weights: deterministic).

    Parameters
    ----------
    labels : np.ndarray
        (M,) classes of the validation spots every size held out.
    probabilities : Sequence[np.ndarray]
        Per size, (M, C) probabilities.
    method : str
        ``mean``, ``weighted`` or ``best``.

    Returns
    -------
    np.ndarray
        (K,) non-negative weights summing to 1.
    """
    if method not in ENSEMBLE_METHODS:
        raise ValueError(f"ensemble method must be one of {ENSEMBLE_METHODS}, got {method!r}")
    k = len(probabilities)
    equal = np.full(k, 1.0 / k)
    if method == "mean" or labels.size == 0 or k == 1:
        return equal
    if method == "best":
        losses = [balanced_nll(labels, p) for p in probabilities]
        weights = np.zeros(k)
        weights[int(np.argmin(losses))] = 1.0
        return weights
    picked = np.stack([np.asarray(p)[np.arange(labels.size), labels] for p in probabilities], 1)
    classes = np.unique(labels)
    # Each spot weighs 1 / (its class's count * classes present): the balanced mean.
    spot_weight = np.zeros(labels.size)
    for c in classes:
        spot_weight[labels == c] = 1.0 / ((labels == c).sum() * classes.size)

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = softmax(theta)
        mixed = np.maximum(picked @ w, _FLOOR)
        loss = -float(spot_weight @ np.log(mixed))
        d_w = -(spot_weight / mixed) @ picked
        return loss, w * (d_w - w @ d_w)  # chain rule through the softmax

    result = minimize(loss_and_gradient, np.zeros(k), jac=True, method="L-BFGS-B")
    return softmax(result.x)
