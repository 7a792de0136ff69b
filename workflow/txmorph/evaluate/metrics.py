"""Scoring painted class maps against reference labels: per-class Dice and tables.

Dice ``2 |P & T| / (|P| + |T|)`` is computed per class from a confusion matrix, which one
``np.bincount`` over ``truth * n_classes + predicted`` gives in a single pass. Large maps
(e.g. 20000 x 20000) are processed in row chunks so the int64 temporaries stay small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from txmorph.blocks import OUTSIDE_AREA
from txmorph.classes import GENERAL_CLASSES, MEAN_CLASS

#: Pixels per chunk when building the confusion matrix (bounds int64 temporaries to ~64 MB).
CHUNK_PIXELS = 8_000_000


def _check_labels(name: str, labels: np.ndarray, n_classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name} labels must lie in 0..{n_classes - 1}, "
            f"got range {labels.min()}..{labels.max()}"
        )


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix of two label maps, counted in chunks of ``CHUNK_PIXELS``.

    Parameters
    ----------
    predicted, truth : np.ndarray
        Integer label maps of the same shape, labels in ``0..n_classes-1``.
    n_classes : int
        Number of classes (>= 1).

    Returns
    -------
    np.ndarray
        ``(n_classes, n_classes)`` int64 counts; entry ``[t, p]`` = pixels of truth t
        predicted p.

    Raises
    ------
    ValueError
        When the shapes differ, the labels are not integers or lie out of range.
    """
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted and truth must have the same shape, got {predicted.shape} and "
            f"{truth.shape} (sample the truth on the prediction grid first)"
        )
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    for name, labels in (("predicted", predicted), ("truth", truth)):
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{name} labels must be integers, got dtype {labels.dtype}")
        _check_labels(name, labels, n_classes)
    pred_flat = predicted.reshape(-1)
    truth_flat = truth.reshape(-1)
    counts = np.zeros(n_classes * n_classes, dtype=np.int64)
    for start in range(0, pred_flat.size, CHUNK_PIXELS):
        stop = start + CHUNK_PIXELS
        combined = truth_flat[start:stop].astype(np.int64) * n_classes
        combined += pred_flat[start:stop]
        counts += np.bincount(combined, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def dice_scores(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class Dice ``2 |P & T| / (|P| + |T|)``, float64 ``(n_classes,)``.

    A class absent from both maps gets NaN, not 1 or 0: there was nothing to find and
    nothing was claimed, so it carries no evidence either way and must not sway a mean
    (use ``np.nanmean``). A class present in only one of the two maps scores 0.

    Parameters
    ----------
    predicted, truth : np.ndarray
        Integer label maps of the same shape.
    n_classes : int
        Number of classes.

    Returns
    -------
    np.ndarray
        float64 ``(n_classes,)`` Dice scores.
    """
    return dice_from_confusion(confusion_matrix(predicted, truth, n_classes))


def dice_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class Dice of a confusion matrix.

    Parameters
    ----------
    cm : np.ndarray
        ``(C, C)`` counts, ``[t, p]`` = pixels of truth t predicted p.

    Returns
    -------
    np.ndarray
        float64 ``(C,)`` Dice scores; NaN where |P| + |T| = 0.
    """
    both = np.diag(cm).astype(np.float64)
    total = cm.sum(axis=0) + cm.sum(axis=1)  # |P| + |T|
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * both / total, np.nan)


def grid_positions(length: int, stride: int, n: int) -> np.ndarray:
    """Input pixel of grid cells ``0..n-1`` along one axis: ``i*s + s//2``, clipped to the image.

    Parameters
    ----------
    length : int
        Image length along the axis, in pixels.
    stride : int
        Grid stride ``s``, in pixels.
    n : int
        Number of grid cells.

    Returns
    -------
    np.ndarray
        (n,) int64 pixel positions, at most ``length - 1``.
    """
    return np.minimum(np.arange(n, dtype=np.int64) * stride + stride // 2, length - 1)


def sample_labels_on_grid(
    labels: np.ndarray, stride: int, grid_shape: tuple[int, int]
) -> np.ndarray:
    """The labels at a probability-map grid's centres (CONVENTIONS), shape ``grid_shape``.

    Grid pixel ``(i, j)`` of output stride ``s`` is the patch centred at input pixel
    ``(i*s + s//2, j*s + s//2)``; the last, partial row/column's centre can fall past the
    image and is clipped to the last pixel. ``grid_shape`` must be ``(ceil(H/s), ceil(W/s))``;
    anything else means the map and the labels belong to different images, so it raises.

    Parameters
    ----------
    labels : np.ndarray
        (H, W) label image.
    stride : int
        Output stride ``s`` of the map (>= 1).
    grid_shape : tuple[int, int]
        Shape of the probability map's grid.

    Returns
    -------
    np.ndarray
        The labels at the grid centres, of shape ``grid_shape``.

    Raises
    ------
    ValueError
        When ``labels`` is not 2-D, ``stride`` < 1 or ``grid_shape`` does not match.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    height, width = labels.shape
    expected = (-(-height // stride), -(-width // stride))
    if tuple(grid_shape) != expected:
        raise ValueError(
            f"grid shape {tuple(grid_shape)} does not match labels {labels.shape} at stride "
            f"{stride} (expected {expected} = ceil(H/s) x ceil(W/s)); were the map and the "
            "labels made from the same image?"
        )
    rows = grid_positions(height, stride, expected[0])
    cols = grid_positions(width, stride, expected[1])
    return labels[np.ix_(rows, cols)]


NO_TISSUE = "no tissue in the reference regions (empty tissue mask): nothing to score"
NO_REFERENCE = "no reference pixels: the class is absent from this test section"
NO_GENE_CLASS = "no gene class is evaluable on this section"
ONE_CLASS = ("only one class is evaluable on this section: a map painting it everywhere would "
             "score 1, so a mean over it is no evidence")


def unlearned_notes(reference: np.ndarray, classes: Sequence[str], unlearned: Sequence[str],
                    dropped: Mapping[str, str]) -> dict[str, str]:
    """Why each class the models did not learn is not evaluable, with the share of the
    section its reference pixels hold (they are left out of every score: a niche that the
    training sections lack can cover much of a test section).

    Parameters
    ----------
    reference : np.ndarray
        The section's reference labels (indices into ``classes``, 0 background).
    classes : Sequence[str]
        Every class.
    unlearned : Sequence[str]
        The classes the models did not learn.
    dropped : Mapping[str, str]
        Why each was left out of the models (``classes.json``).

    Returns
    -------
    dict[str, str]
        ``{class: note}``.
    """
    reference = np.asarray(reference)
    notes = {}
    for name in unlearned:
        note = f"not learned: {dropped.get(name, 'no training data')}"
        if left_out := int((reference == list(classes).index(name)).sum()):
            area = max(1, int((reference != OUTSIDE_AREA).sum()))  # a section's blocks only
            note += f"; {left_out / area:.1%} of this section, left out of every score"
        notes[name] = note
    return notes


def dice_table(
    section: str,
    model: str,
    classes: Sequence[str],
    scores: Sequence[float] | np.ndarray,
    reference_pixels: Sequence[int] | np.ndarray | None = None,
    not_evaluable: Mapping[str, str] | None = None,
    predicted_pixels: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Long table: one row per class plus class "mean"; columns section, model, class, dice,
    evaluable, note.

    A class is *not evaluable* (``dice`` NaN, ``evaluable`` False, ``note`` says why) when its
    reference region is empty (``reference_pixels`` 0: Dice over an empty reference means
    nothing, whatever was predicted), when ``not_evaluable`` names it (e.g. a gene too sparse
    for the reference rule), or when the reference holds no tissue at all (every class other
    than ``background`` empty): then the whole section is not evaluable. Without
    ``reference_pixels`` a NaN score (class absent from both maps) is not evaluable.

    The mean is over the evaluable classes, and only when at least one gene class (not in
    ``GENERAL_CLASSES``) is evaluable and at least two classes are; otherwise it is not
    evaluable too. A perfect background on an empty section is therefore never reported as a
    perfect score, nor is a section whose scored pixels all belong to one class (a niche run
    whose test section shares one niche with the training sections): painting that class
    everywhere would score 1.

    Parameters
    ----------
    section, model : str
        Names written in the ``section`` and ``model`` columns.
    classes : Sequence[str]
        Class names, in score order; none may be ``MEAN_CLASS``.
    scores : Sequence[float] or np.ndarray
        (C,) Dice score per class.
    reference_pixels : Sequence[int] or np.ndarray or None
        (C,) reference pixels per class; None: only NaN scores mark a class not evaluable.
    not_evaluable : Mapping[str, str] or None
        Classes known not to be evaluable, with the reason (the ``note``).
    predicted_pixels : Sequence[int] or np.ndarray or None
        (C,) predicted pixels per class: a class absent from the reference but painted gets
        its false-positive share in the note (those pixels also lower the classes they cover).

    Returns
    -------
    pd.DataFrame
        C + 1 rows with columns section, model, class, dice, evaluable, note.

    Raises
    ------
    ValueError
        When a shape does not match ``classes`` or a class is named ``MEAN_CLASS``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(classes),):
        raise ValueError(f"{len(classes)} classes but scores has shape {scores.shape}")
    if MEAN_CLASS in classes:
        raise ValueError(f"a class may not be called {MEAN_CLASS!r} (reserved for the mean)")
    # Reasons in order of precedence: no tissue at all, then what the caller knows (e.g. a
    # gene too sparse for the reference rule), then an empty reference region.
    notes = [(not_evaluable or {}).get(name, "") for name in classes]
    empty = np.isnan(scores)
    if reference_pixels is not None:
        reference_pixels = np.asarray(reference_pixels)
        if reference_pixels.shape != (len(classes),):
            raise ValueError(f"{len(classes)} classes but reference_pixels has shape "
                             f"{reference_pixels.shape}")
        empty |= reference_pixels == 0
    notes = [note or (NO_REFERENCE if gone else "") for note, gone in zip(notes, empty)]
    if predicted_pixels is not None:
        predicted_pixels = np.asarray(predicted_pixels)
        total = max(int(predicted_pixels.sum()), 1)
        notes = [note + (f"; painted on {predicted_pixels[i] / total:.1%} of the scored pixels "
                         "(all false positives)" if note == NO_REFERENCE and predicted_pixels[i]
                         else "") for i, note in enumerate(notes)]
    tissue_classes = [i for i, name in enumerate(classes) if name != "background"]
    if reference_pixels is not None and tissue_classes and not reference_pixels[tissue_classes].any():
        notes = [NO_TISSUE] * len(classes)
    evaluable = np.array([not note for note in notes])
    shown = np.where(evaluable, scores, np.nan)
    genes_evaluable = any(ok for name, ok in zip(classes, evaluable) if name not in GENERAL_CLASSES)
    if NO_TISSUE in notes:
        mean, mean_note = float("nan"), NO_TISSUE
    elif not genes_evaluable:
        mean, mean_note = float("nan"), NO_GENE_CLASS
    elif evaluable.sum() < 2:
        mean, mean_note = float("nan"), ONE_CLASS
    else:
        mean, mean_note = float(np.nanmean(shown[evaluable])), ""
    return pd.DataFrame(
        {
            "section": section,
            "model": model,
            "class": [*classes, MEAN_CLASS],
            "dice": np.append(shown, mean),
            "evaluable": [*evaluable.tolist(), not mean_note],
            "note": [*notes, mean_note],
        }
    )


def score_labels(
    section: str,
    model: str,
    predicted: np.ndarray,
    reference: np.ndarray,
    classes: Sequence[str],
    not_evaluable: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Dice of ``predicted`` against ``reference`` labels (same grid) as a :func:`dice_table`.

    Parameters
    ----------
    section, model : str
        Names written in the ``section`` and ``model`` columns.
    predicted, reference : np.ndarray
        Integer label maps on the same grid (indices into ``classes``).
    classes : Sequence[str]
        Class names, in label order.
    not_evaluable : Mapping[str, str] or None
        Classes known not to be evaluable, with the reason.

    Returns
    -------
    pd.DataFrame
        The :func:`dice_table`, with each class's reference and predicted pixel counts.
    """
    cm = confusion_matrix(predicted, reference, len(classes))
    return dice_table(section, model, classes, dice_from_confusion(cm), cm.sum(axis=1),
                      not_evaluable, predicted_pixels=cm.sum(axis=0))


def relabel(predicted: np.ndarray, model_classes: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Arg-max indices into ``model_classes`` -> indices into the full ``classes`` (uint8).

    A model learns only the classes its training sections hold (e.g. no background in a crop
    inside tissue); its outputs are mapped by name onto the class list of the reference.

    Parameters
    ----------
    predicted : np.ndarray
        Integer indices into ``model_classes``.
    model_classes : Sequence[str]
        The model's class names, in output order.
    classes : Sequence[str]
        The full class list; must hold every model class.

    Returns
    -------
    np.ndarray
        uint8 indices into ``classes``, of the shape of ``predicted``.

    Raises
    ------
    ValueError
        When a model class is not in ``classes``.
    """
    unknown = [name for name in model_classes if name not in classes]
    if unknown:
        raise ValueError(f"model classes {unknown} are not among {list(classes)}")
    lookup = np.array([list(classes).index(name) for name in model_classes], dtype=np.uint8)
    return lookup[np.asarray(predicted)]


def label_map(
    probabilities: np.ndarray,
    model_classes: Sequence[str],
    classes: Sequence[str],
    context_px: float = 0.0,
) -> np.ndarray:
    """Arg-max labels (indices into ``classes``) of a ``(C, H, W)`` probability map.

    With ``context_px > 0`` each class's probabilities are first smoothed with a Gaussian of
    that sigma (map pixels; reflected at the border): the class of a region is a property of
    its neighbourhood, and the reference regions are themselves densities at a kernel scale.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(C, H, W)`` class probabilities, channels in ``model_classes`` order.
    model_classes : Sequence[str]
        The model's class names.
    classes : Sequence[str]
        The full class list the labels index.
    context_px : float
        Gaussian smoothing sigma in map pixels; 0 smooths nothing.

    Returns
    -------
    np.ndarray
        (H, W) uint8 labels, indices into ``classes``.
    """
    from scipy import ndimage

    probabilities = np.asarray(probabilities)
    if context_px > 0:
        probabilities = np.stack([
            ndimage.gaussian_filter(np.asarray(channel, dtype=np.float32), context_px,
                                    mode="reflect")
            for channel in probabilities])
    return relabel(probabilities.argmax(axis=0), model_classes, classes)

