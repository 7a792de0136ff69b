"""Figures and tables for the summary report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from txmorph.outputs import atomic_path  # noqa: E402

_GENE_COLOURS = [
    (0.89, 0.10, 0.11), (0.12, 0.47, 0.71), (0.20, 0.63, 0.17), (1.00, 0.50, 0.00),
    (0.42, 0.24, 0.60), (0.65, 0.34, 0.16), (0.97, 0.51, 0.75), (0.09, 0.75, 0.81),
]


def class_colours(classes: Sequence[str]) -> list[tuple[float, float, float]]:
    """Background black, tissue light grey, then a distinct saturated colour per gene."""
    colours = [(0.0, 0.0, 0.0), (0.78, 0.78, 0.78)]
    colours += [_GENE_COLOURS[i % len(_GENE_COLOURS)] for i in range(len(classes) - 2)]
    return colours


def _display_image(image: np.ndarray, max_pixels: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(image.shape) / max_pixels)))
    small = np.asarray(image[::step, ::step], dtype=np.float32)
    low, high = np.percentile(small, [1, 99.5])
    return np.clip((small - low) / max(high - low, 1e-6), 0, 1)


def summary_figure(
    image: np.ndarray,
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    classes: Sequence[str],
    path: str | os.PathLike,
    max_pixels: int = 1024,
) -> None:
    """PNG: the nuclei image, the reference regions and each model's labels side by side.

    Label maps on coarser grids are drawn with the image's extent, so all panels align.
    """
    height, width = image.shape
    extent = (0, width, height, 0)
    colours = ListedColormap(class_colours(classes))
    panels = [("nuclei image", None), ("reference (spots)", truth), *predictions.items()]
    columns = min(4, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows + 0.6), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (title, labels) in zip(axes.ravel(), panels):
        if labels is None:
            axis.imshow(_display_image(image, max_pixels), cmap="gray", extent=extent)
        else:
            step = max(1, int(np.ceil(max(labels.shape) / max_pixels)))
            axis.imshow(labels[::step, ::step], cmap=colours, vmin=-0.5, vmax=len(classes) - 0.5,
                        extent=extent, interpolation="nearest")
        axis.set_title(title)
    handles = [Patch(color=c, label=name) for c, name in zip(class_colours(classes), classes)]
    figure.legend(handles=handles, loc="lower center", ncol=len(classes), frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)


def dice_markdown(table: pd.DataFrame) -> str:
    """A Markdown table: one row per model, one column per class plus the mean."""
    classes = list(dict.fromkeys(table["class"]))
    pivot = table.pivot_table(index="model", columns="class", values="dice", sort=False, dropna=False)
    pivot = pivot.reindex(columns=classes)
    lines = ["| model | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for model, row in pivot.iterrows():
        cells = ["–" if np.isnan(v) else f"{v:.3f}" for v in row.to_numpy(dtype=float)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
