"""Dice scores of predicted label maps against reference regions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def dice_scores(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class Dice ``2|P∩T| / (|P|+|T|)``; NaN where a class is absent from both maps.

    A class absent from both is undefined rather than perfect: counting it as 1 would reward
    a model for a class the section does not contain.
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, truth {truth.shape}")
    p = predicted.ravel().astype(np.int64)
    t = truth.ravel().astype(np.int64)
    joint = np.bincount(p * n_classes + t, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    overlap = np.diag(joint).astype(np.float64)
    total = joint.sum(axis=1) + joint.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * overlap / total, np.nan)


def sample_labels_on_grid(labels: np.ndarray, stride: int, grid_shape: Sequence[int]) -> np.ndarray:
    """Labels at the grid centres ``(i*s + s//2, j*s + s//2)``, clipped into the image."""
    rows = np.minimum(np.arange(grid_shape[0]) * stride + stride // 2, labels.shape[0] - 1)
    cols = np.minimum(np.arange(grid_shape[1]) * stride + stride // 2, labels.shape[1] - 1)
    return labels[np.ix_(rows, cols)]


def dice_table(section: str, model: str, classes: Sequence[str], scores: np.ndarray) -> pd.DataFrame:
    """Rows ``section, model, class, dice`` plus a ``mean`` row (mean over defined classes)."""
    rows = [
        {"section": section, "model": model, "class": name, "dice": float(score)}
        for name, score in zip(classes, scores)
    ]
    mean = float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")
    rows.append({"section": section, "model": model, "class": "mean", "dice": mean})
    return pd.DataFrame(rows, columns=["section", "model", "class", "dice"])
