"""Figures for the Snakemake HTML report (``snakemake --report report.html``).

Pure functions: arrays or DataFrames in, one PNG written atomically (temporary sibling, then
``os.replace``, via ``txmorph.outputs.atomic_path``). Matplotlib is used through
``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, as in ``txmorph.evaluate.figures``.

- ``patch_gallery``: example training patches, a row per class, with the class counts;
- ``patch_counts``: the number of patches per class (a table row per class);
- ``training_curves``: loss and accuracy per epoch, train and validation, a line per model;
- ``probability_overlay``: one panel per class, its probability over the nuclei image;
- ``dice_chart``: Dice per class (and mean) and model as grouped bars, with a reference line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from txmorph.classes import MEAN_CLASS, REFERENCE_DICE
from txmorph.evaluate.figures import STRETCH_PERCENTILES, display_image
from txmorph.outputs import atomic_path



def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def _stretch(values: np.ndarray) -> np.ndarray:
    """Scale to 0..1 by the STRETCH_PERCENTILES of the finite values (as display_image)."""
    values = np.asarray(values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return np.zeros_like(values)
    low, high = np.percentile(finite, STRETCH_PERCENTILES)
    return np.nan_to_num(np.clip((values - low) / max(float(high - low), 1e-12), 0, 1))


def patch_counts(labels: np.ndarray, classes: Sequence[str]) -> pd.Series:
    """Patches per class, indexed by class name (classes without patches count 0).

    Parameters
    ----------
    labels : np.ndarray
        The patches' labels (indices into ``classes``).
    classes : Sequence[str]
        The class names.

    Returns
    -------
    pd.Series
        Count per class, named ``patches``.
    """
    labels = np.asarray(labels).astype(np.intp).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels range {labels.min()}..{labels.max()}, {len(classes)} classes")
    counts = np.bincount(labels, minlength=len(classes))
    return pd.Series(counts, index=list(classes), name="patches")


def patch_gallery(
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    per_class: int = 8,
    seed: int = 0,
    title: str | None = None,
) -> None:
    """Write a PNG: a row per class of up to ``per_class`` example patches, drawn at random
    (fixed ``seed``), each row labelled with the class and its patch count.

    All patches share one intensity stretch (STRETCH_PERCENTILES of the shown patches), so
    brightness differences between classes stay visible.

    Parameters
    ----------
    images : np.ndarray
        (N, S, S) patches.
    labels : np.ndarray
        (N,) labels, indices into ``classes``.
    classes : Sequence[str]
        The class names.
    path : str or os.PathLike
        The PNG to write.
    per_class : int
        Patches shown per class at most.
    seed : int
        Seed of the choice of patches.
    title : str or None
        Figure title.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.intp).reshape(-1)
    if images.ndim != 3 or images.shape[0] != labels.size:
        raise ValueError(f"images must be (N, S, S) with N = {labels.size}, got {images.shape}")
    counts = patch_counts(labels, classes)
    rng = np.random.default_rng(seed)
    chosen = []
    for index in range(len(classes)):
        members = np.flatnonzero(labels == index)
        k = min(per_class, members.size)
        chosen.append(np.sort(rng.choice(members, size=k, replace=False)) if k else members)
    shown_all = np.concatenate(chosen) if chosen else np.empty(0, np.intp)
    stretched = _stretch(images[shown_all]) if shown_all.size else images[:0]
    lookup = {int(i): stretched[j] for j, i in enumerate(shown_all)}

    columns = max(1, per_class)
    cell = 1.1
    figure = _figure(1.6 + cell * columns, 0.7 + cell * len(classes))
    axes = figure.subplots(len(classes), columns, squeeze=False)
    for row, name in enumerate(classes):
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if column < len(chosen[row]):
                axis.imshow(lookup[int(chosen[row][column])], cmap="gray", vmin=0, vmax=1,
                            interpolation="nearest")
        axes[row, 0].set_ylabel(f"{name}\nn = {int(counts[name])}", rotation=0, ha="right",
                                va="center", fontsize=10)
    if title:
        figure.suptitle(title, fontsize=12)
    figure.subplots_adjust(left=1.5 / (1.6 + cell * columns), right=0.99,
                           top=1 - 0.5 / (0.7 + cell * len(classes)),
                           bottom=0.1 / (0.7 + cell * len(classes)), wspace=0.05, hspace=0.08)
    _save(figure, path)


def training_curves(metrics: Mapping[str, pd.DataFrame], path: str | os.PathLike) -> None:
    """Write a PNG: loss and accuracy per epoch for each model (key), train dashed and
    validation solid, one colour per model.

    Parameters
    ----------
    metrics : Mapping[str, pd.DataFrame]
        Per model, a table with the columns ``epoch, train_loss, val_loss, train_accuracy,
        val_accuracy`` (``results/models/size{S}.metrics.csv``).
    path : str or os.PathLike
        The PNG to write.
    """
    needed = {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    for name, table in metrics.items():
        if not needed <= set(table.columns):
            raise ValueError(f"metrics of {name} need columns {sorted(needed)}, "
                             f"have {list(table.columns)}")
    figure = _figure(11, 4.2)
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(metrics))]
    for colour, (name, table) in zip(colours, metrics.items()):
        for axis, quantity in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
            axis.plot(table["epoch"], table[f"train_{quantity}"], "--", color=colour, alpha=0.7)
            axis.plot(table["epoch"], table[f"val_{quantity}"], "-o", color=colour,
                      markersize=3, label=name)
    loss_axis.set_title("loss (cross-entropy)")
    accuracy_axis.set_title("accuracy")
    accuracy_axis.set_ylim(0, 1.02)
    for axis in (loss_axis, accuracy_axis):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, marker="o", markersize=3, label=n)
               for c, n in zip(colours, metrics)]
    handles += [Line2D([], [], color="0.3", linestyle="--", label="train"),
                Line2D([], [], color="0.3", linestyle="-", label="validation")]
    accuracy_axis.legend(handles=handles, loc="lower right", fontsize=9)
    figure.subplots_adjust(left=0.06, right=0.99, top=0.91, bottom=0.13, wspace=0.18)
    _save(figure, path)


def probability_overlay(
    image: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    stride: int,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    max_pixels: int = 768,
) -> None:
    """Write a PNG: one panel per class, its probability (0..1, colour map *inferno*,
    semi-transparent) over the grey nuclei image, with a shared colour bar.

    Parameters
    ----------
    image : np.ndarray
        The 2-D nuclei image.
    probabilities : np.ndarray
        ``(C, H', W')`` on a grid of ``stride`` input pixels per cell (cell ``(i, j)`` covers
        input pixels ``[i*s, (i+1)*s)``), drawn on the image's pixel extent.
    classes : Sequence[str]
        The panel titles, one per channel.
    stride : int
        Input pixels per map pixel.
    path : str or os.PathLike
        The PNG to write.
    title : str or None
        Figure title.
    max_pixels : int
        Image and maps are shown at most this many pixels a side.
    """
    image = np.asarray(image)
    probabilities = np.asarray(probabilities)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    if probabilities.ndim != 3 or probabilities.shape[0] != len(classes):
        raise ValueError(f"probabilities must be ({len(classes)}, H, W), "
                         f"got {probabilities.shape}")
    height, width = image.shape
    shown, extent = display_image(image, max_pixels)
    k = max(1, math.ceil(max(probabilities.shape[1:]) / max_pixels))
    grid = probabilities[:, k // 2 :: k, k // 2 :: k]
    grid_extent = (0, grid.shape[2] * k * stride, grid.shape[1] * k * stride, 0)

    n = len(classes)
    columns = min(n, 4)
    rows = math.ceil(n / columns)
    aspect = height / width if width else 1.0
    panel_w = 3.4
    panel_h = min(max(panel_w * aspect, 1.5), 6.0)
    total_h = panel_h * rows + 0.8
    figure = _figure(panel_w * columns + 0.8, total_h)
    axes = figure.subplots(rows, columns, squeeze=False)
    mappable = None
    for axis in axes.ravel():
        axis.set_axis_off()
    for index, (axis, name) in enumerate(zip(axes.ravel(), classes)):
        axis.imshow(shown, cmap="gray", vmin=0, vmax=1, extent=extent, interpolation="antialiased")
        mappable = axis.imshow(grid[index], cmap="inferno", vmin=0, vmax=1, alpha=0.6,
                               extent=grid_extent, interpolation="nearest")
        axis.set_xlim(0, width)
        axis.set_ylim(height, 0)
        axis.set_title(name, fontsize=11, color="black")
    figure.subplots_adjust(left=0.01, right=1 - 0.8 / (panel_w * columns + 0.8),
                           top=1 - 0.55 / total_h, bottom=0.05 / total_h,
                           wspace=0.04, hspace=0.15)
    if mappable is not None:
        bar_axis = figure.add_axes((1 - 0.65 / (panel_w * columns + 0.8), 0.15,
                                    0.15 / (panel_w * columns + 0.8), 0.7))
        figure.colorbar(mappable, cax=bar_axis, label="probability")
    if title:
        figure.suptitle(title, fontsize=12)
    _save(figure, path)


def dice_chart(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    reference: float | None = REFERENCE_DICE,
    reference_label: str = "Andersson et al.,\nISBI 2020",
) -> None:
    """Write a PNG: per test section, Dice per class (groups, ``mean`` last) and model (bars),
    with ``reference`` drawn as a dashed horizontal line. NaN Dice (class absent from both
    maps) is left out (no bar).

    Parameters
    ----------
    table : pd.DataFrame
        Columns ``section, model, class, dice`` (``results/report/dice.csv``).
    path : str or os.PathLike
        The PNG to write.
    reference : float or None
        A published mean Dice to compare with; None draws no line.
    reference_label : str
        The line's legend entry.
    """
    needed = {"section", "model", "class", "dice"}
    if not needed <= set(table.columns):
        raise ValueError(f"table needs columns {sorted(needed)}, has {list(table.columns)}")
    sections = list(dict.fromkeys(table["section"]))
    models = list(dict.fromkeys(table["model"]))
    classes = [c for c in dict.fromkeys(table["class"]) if c != MEAN_CLASS]
    if (table["class"] == MEAN_CLASS).any():
        classes.append(MEAN_CLASS)
    lookup = {(s, m, c): float(d) for s, m, c, d
              in table[["section", "model", "class", "dice"]].itertuples(index=False)}

    width = max(6.0, 1.0 + 0.28 * len(classes) * (len(models) + 1))
    figure = _figure(width + 2.6, 3.6 * max(1, len(sections)) + 0.4)  # legend on the right
    axes = figure.subplots(max(1, len(sections)), 1, squeeze=False)[:, 0]
    bar = 0.8 / max(1, len(models))
    x = np.arange(len(classes))
    for axis, section in zip(axes, sections):
        for m, model in enumerate(models):
            values = np.array([lookup.get((section, model, c), np.nan) for c in classes])
            colour = "0.25" if model == "ensemble" else f"C{m % 10}"
            axis.bar(x - 0.4 + bar * (m + 0.5), np.nan_to_num(values, nan=0.0), bar * 0.95,
                     color=colour, label=model)
        if reference is not None:
            axis.axhline(reference, color="crimson", linestyle="--", linewidth=1.5,
                         label=f"mean Dice {reference:.2f}\n{reference_label}")
        axis.set_xticks(x, classes)
        axis.set_ylim(0, 1.0)
        axis.set_ylabel("Dice")
        axis.set_title(f"test section {section}", fontsize=11)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    height = 3.6 * max(1, len(sections)) + 0.4
    figure.subplots_adjust(left=0.9 / (width + 2.6), right=width / (width + 2.6),
                           top=1 - 0.35 / height, bottom=0.45 / height, hspace=0.35)
    _save(figure, path)
