"""How learnable a candidate class pair is from the DAPI image: a fast spatial hold-out probe.

Region overlap says whether two classes are distinct in the transcriptome; it does not say
whether the nuclei image shows the difference. The probe asks the second question cheaply,
with the non-CNN baseline (``txmorph.baseline``: DAPI intensity, texture, nuclear cover and
nuclear density over windows tied to the patch sizes, multinomial logistic regression):

1. Each training section gets a regular grid of points (the stride of the finest CNN map,
   coarser when that would exceed ``MAX_POINTS``) and the baseline's features at every point,
   computed once per section and shared by every pair.
2. For a pair, the labels are the pipeline's: the training section's reference regions of
   the two classes (``txmorph.truth``, computed by the caller): 0 background, 1 general
   tissue, 2 and 3 the classes.
3. Each training section is cut by a straight line across one axis into two halves. Gene
   regions are often local (a vessel, a tumour nest), and a class that one half lacks can be
   neither learned from it nor scored on it; so the line is the one, across either axis at
   any grid line, that splits the pair's two classes most evenly (the largest smaller share
   of the class less well split), ties to the longer axis and the middle. It is chosen from
   the labels alone, never from a prediction. Training points keep half the largest window
   (the features' reach) from the line: no training feature sees a held-out pixel.
4. The regression is fitted on one half of every training section (up to ``per_class``
   random points of each class per section, as ``patches.labels: regions`` draws patch
   centres) and predicts every point of the other halves; Dice per class against the
   reference labels there (fold 1: fitted on the halves before the line, scored on those
   after it); then the halves swap (fold 2). A class is scored in a fold only when the
   training half holds it (the model cannot predict what it never saw) and the held-out half
   holds it (the Dice of an empty reference is undefined, as in ``txmorph.evaluate.metrics``).
5. **Score.** Per fold, the mean over the pair's classes of their chance-corrected Dice
   (Dice - c) / (1 - c), c = 2fq/(f+q) the Dice of a guess that ignores the image (f the
   class's share of the held-out points, q that of its predictions); NaN when a class is not
   scored in that fold. The pair's score is the *worse* fold's (:func:`pair_score`): the
   pipeline trains on one part of the tissue and is scored on another, so a pair must be
   learnable in either direction, and a pair one fold cannot score has no score at all (it
   is never ranked above a pair scored both ways). The fold means of the raw and corrected
   Dice per class are kept as well, for the table.

**K niches** (``niches: K``, ``txmorph.genes.niche_choice``) are probed by the same function
on their niche maps, labels 2 .. K + 1: the cut splits every niche as evenly as it can (the
largest smaller share of the niche least well split), one multinomial model learns all
labels at once, each niche gets its chance-corrected Dice, a fold's score is their mean (over
the niches ``scored``: those with a region in the training sections) and the score is the
worse fold's, exactly as for a pair.

Cost: one pass of the baseline's window filters over each training section (as much as
painting it once), then per pair two fits on at most ``4 * per_class`` points per section and
two predictions on the grid: about 0.1 s per pair on the shared crops (1 thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from txmorph.baseline import FeatureSettings, features_at, fit_logistic, section_threshold
from txmorph.patches.intensity import intensity_range

#: At most this many grid points per section (the stride grows beyond).
MAX_POINTS = 100_000


@dataclass(frozen=True)
class ProbeSection:
    """A training section's probe grid: points, their features, and the features' reach.

    Parameters
    ----------
    points : np.ndarray
        (N, 2) int64 row, col.
    features : np.ndarray
        (N, F) float32 baseline features at the points.
    reach : float
        Half the largest window, in pixels.
    """

    points: np.ndarray  # (N, 2) int64 row, col
    features: np.ndarray  # (N, F) float32
    reach: float  # px: half the largest window


def grid_points(shape: tuple[int, int], stride: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """(N, 2) row, col of a regular grid (pixel ``s//2`` of every ``s x s`` block, as the
    probability maps), the stride raised until there are at most ``max_points``.

    Parameters
    ----------
    shape : tuple[int, int]
        (rows, cols) of the image.
    stride : int
        The wanted grid stride.
    max_points : int
        Most points returned.

    Returns
    -------
    np.ndarray
        (N, 2) int64 row, col.
    """
    height, width = int(shape[0]), int(shape[1])
    stride = max(1, int(stride))
    while -(-height // stride) * -(-width // stride) > max_points:
        stride += 1
    rows = np.arange(stride // 2, height, stride)
    cols = np.arange(stride // 2, width, stride)
    grid = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    return grid.astype(np.int64)


def balanced_cut(points: np.ndarray, labels: np.ndarray, classes: Sequence[int]
                 ) -> tuple[int, float]:
    """(axis, position) of the straight cut that splits ``classes`` most evenly (module
    docstring, step 3); points with ``points[:, axis] < position`` form half 0.

    Parameters
    ----------
    points : np.ndarray
        (N, 2) row, col.
    labels : np.ndarray
        (N,) label of each point.
    classes : Sequence[int]
        The labels to split evenly.

    Returns
    -------
    tuple[int, float]
        The axis (0 rows, 1 columns) and the position of the cut.
    """
    extent = points.max(axis=0) + 1 if len(points) else np.ones(2)
    longer = 0 if extent[0] >= extent[1] else 1
    best, best_key = (longer, float(extent[longer]) / 2), None
    for axis in (longer, 1 - longer):
        positions = np.unique(points[:, axis]).astype(np.float64)[1:]
        if not len(positions):
            continue
        share = np.full(len(positions), 0.5)
        for label in classes:
            coords = np.sort(points[labels == label, axis])
            if len(coords):
                low = np.searchsorted(coords, positions) / len(coords)
                share = np.minimum(share, np.minimum(low, 1 - low))
        middle = np.abs(positions - extent[axis] / 2) / extent[axis]
        i = int(np.lexsort((middle, -share))[0])
        key = (-share[i], axis != longer, middle[i])
        if best_key is None or key < best_key:
            best, best_key = (axis, float(positions[i])), key
    return best


def prepare_section(image: np.ndarray, settings: FeatureSettings, stride: int,
                    max_points: int = MAX_POINTS) -> ProbeSection:
    """The probe grid of one training section: points and the baseline's features.

    Parameters
    ----------
    image : np.ndarray
        The section's DAPI image.
    settings : FeatureSettings
        The baseline's windows and nucleus size.
    stride : int
        Grid stride (raised to keep at most ``max_points``).
    max_points : int
        Most grid points.

    Returns
    -------
    ProbeSection
        Points, features and reach.
    """
    points = grid_points(image.shape, stride, max_points)
    intensity = intensity_range(image)
    threshold = section_threshold(image, *intensity)
    features = features_at(image, points, intensity, threshold, settings)
    return ProbeSection(points=points, features=features, reach=max(settings.windows) / 2)


def _dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    total = int(predicted.sum()) + int(truth.sum())
    return 2.0 * int((predicted & truth).sum()) / total if total else float("nan")


def probe_pair(sections: Sequence[ProbeSection], references: Sequence[np.ndarray],
               settings: FeatureSettings, per_class: int, seed: int = 0,
               n_classes: int = 4, scored: Sequence[int] | None = None) -> dict[str, object]:
    """Hold-out Dice of each class (label 0..n_classes-1) of one pair (or of K niches: labels
    2 .. K + 1, ``n_classes = K + 2``), per fold, and its score.

    The same seed for every pair: all pairs are sampled alike. Nothing here is specific to two
    classes: the cut splits every class of ``scored`` as evenly as it can, every label is
    fitted and predicted together (one multinomial model), and the score is the worse fold's
    mean over ``scored``.

    Parameters
    ----------
    sections : Sequence[ProbeSection]
        The training sections' probe grids.
    references : Sequence[np.ndarray]
        The training sections' reference label images of the pair (0 background, 1 tissue,
        2.. the classes).
    settings : FeatureSettings
        The baseline's settings.
    per_class : int
        Training points per class in each section's training half, at most.
    seed : int
        Seed of the sampling.
    n_classes : int
        Number of labels.
    scored : Sequence[int] or None
        The labels whose chance-corrected Dice make the score (and that the cut splits
        evenly); None: every class label, ``2 .. n_classes - 1``.

    Returns
    -------
    dict[str, object]
        ``dice`` and ``excess`` (per label, the raw and chance-corrected Dice averaged over the
        folds that scored it; NaN where none did), ``folds`` and ``excess_folds`` (the same per
        fold, ``(2, n_classes)``), ``fold_scores`` (per fold, the mean chance-corrected Dice of
        the ``scored`` labels, NaN where one is not scored) and ``score`` (:func:`pair_score`:
        the worse fold's).
    """
    scored = list(range(2, n_classes)) if scored is None else [int(c) for c in scored]
    rng = np.random.default_rng(seed)
    labels = [np.asarray(ref)[s.points[:, 0], s.points[:, 1]].astype(np.int64)
              for s, ref in zip(sections, references)]
    half, near = [], []
    for section, y in zip(sections, labels):
        axis, cut = balanced_cut(section.points, y, scored)
        coord = section.points[:, axis].astype(np.float64)
        half.append((coord >= cut).astype(np.int8))
        # The cut lies between pixels cut - 1 and cut; pixel p's centre is at p + 0.5.
        near.append(np.abs(coord + 0.5 - cut) < section.reach)
    folds, excesses = [], []
    for fold in (0, 1):
        chosen_x, chosen_y = [], []
        for section, y, side, close in zip(sections, labels, half, near):
            for label in range(n_classes):
                where = np.flatnonzero((side == fold) & ~close & (y == label))
                if len(where) > per_class:
                    where = np.sort(rng.choice(where, per_class, replace=False))
                chosen_x.append(section.features[where])
                chosen_y.append(y[where])
        y_train = np.concatenate(chosen_y)
        present = np.unique(y_train)
        scores = np.full(n_classes, np.nan)
        excess = np.full(n_classes, np.nan)
        if len(present) >= 2:
            model = fit_logistic(np.concatenate(chosen_x), np.searchsorted(present, y_train),
                                 [str(p) for p in present], settings)
            held = [side == 1 - fold for side in half]
            x_test = np.concatenate([s.features[h] for s, h in zip(sections, held)])
            y_test = np.concatenate([y[h] for y, h in zip(labels, held)])
            predicted = present[model.predict(x_test)] if len(x_test) else y_test
            for label in present:
                truth = y_test == label
                if truth.any():
                    hit = predicted == label
                    scores[label] = _dice(hit, truth)
                    f, q = truth.mean(), hit.mean()
                    chance = 2 * f * q / (f + q)
                    excess[label] = (scores[label] - chance) / (1 - chance) if chance < 1 else 0.0
        folds.append(scores)
        excesses.append(excess)
    fold_scores, score = pair_score(np.vstack(excesses)[:, scored])
    return {"dice": _fold_mean(folds), "excess": _fold_mean(excesses),
            "folds": np.vstack(folds), "excess_folds": np.vstack(excesses),
            "fold_scores": fold_scores, "score": score}


def pair_score(excess_folds: np.ndarray) -> tuple[np.ndarray, float]:
    """A pair's probe score: the worse fold's mean chance-corrected Dice of its classes.

    Why the worse and not the mean: a pair strong one way and weak the other is learnable only
    where the tissue happens to suit it; the mean would rank it above a pair that is moderate
    both ways. A fold that cannot score a class (NaN) gives that fold no score, and a pair
    without a score in both folds has no score (NaN): it ranks after every scored pair.

    Parameters
    ----------
    excess_folds : np.ndarray
        ``(n_folds, n_classes)`` chance-corrected Dice per fold and class (NaN: not scored).

    Returns
    -------
    tuple[np.ndarray, float]
        Per fold, the mean over the classes (NaN where one is NaN), and their minimum (NaN
        where any fold is NaN).
    """
    excess_folds = np.atleast_2d(np.asarray(excess_folds, dtype=np.float64))
    fold_scores = excess_folds.mean(axis=1)  # NaN propagates: a class not scored
    score = float(fold_scores.min()) if np.isfinite(fold_scores).all() else float("nan")
    return fold_scores, score


def _fold_mean(folds: list[np.ndarray]) -> np.ndarray:
    """Mean over the folds that scored a class (NaN where none did)."""
    stacked = np.vstack(folds)
    counts = np.isfinite(stacked).sum(axis=0)
    total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
