"""The summary's figure (``results/report/{section}.png``): class colours, a panel figure.

The figure puts the nuclei image, the spot-derived reference regions and every model's
arg-max labels side by side *on the same pixel extent*, so a reader can compare shapes by
eye. Label maps live on different grids (full resolution for the reference, stride ``s``
for a model: grid cell ``(i, j)`` covers input pixels ``[i*s, (i+1)*s)``, CONVENTIONS), so each
is drawn with ``extent = (0, w*s, h*s, 0)`` and clipped to the image.

Matplotlib is used through ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot:
no global state, no display needed on cluster nodes, and nothing leaks between calls.
The HTML report's figures are in ``txmorph.report`` (which shows images with
:func:`display_image` and :data:`STRETCH_PERCENTILES`); the summary's Markdown tables in
``txmorph.evaluate.tables``.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from txmorph.blocks import OUTSIDE_AREA
from txmorph.outputs import atomic_path

RGB = tuple[float, float, float]

#: Percentiles of an image's finite values shown as black and white (outliers clipped).
STRETCH_PERCENTILES = (1, 99.5)

BACKGROUND_COLOUR: RGB = (0.08, 0.08, 0.08)
TISSUE_COLOUR: RGB = (0.80, 0.80, 0.80)
#: Saturated, mutually distinct gene colours (ColorBrewer Set1-like), in gene order.
GENE_COLOURS: tuple[RGB, ...] = (
    (0.894, 0.102, 0.110),  # red
    (0.216, 0.494, 0.722),  # blue
    (0.302, 0.686, 0.290),  # green
    (1.000, 0.498, 0.000),  # orange
    (0.596, 0.306, 0.639),  # purple
    (0.090, 0.745, 0.812),  # cyan
    (0.969, 0.506, 0.749),  # pink
    (0.651, 0.337, 0.157),  # brown
    (0.737, 0.741, 0.133),  # olive
)


def class_colours(classes: Sequence[str]) -> list[RGB]:
    """RGB (0-1) per class: background near-black, tissue light grey, genes saturated.

    Stable: gene ``i`` (the ``i``-th class after background and tissue) always gets the same
    colour, so figures of different runs with the same genes look alike. Past the nine
    listed colours, hues follow the golden angle (distinct, still saturated).

    Parameters
    ----------
    classes : Sequence[str]
        The class names, background and tissue first (CONVENTIONS).

    Returns
    -------
    list[RGB]
        One (r, g, b) per class.
    """
    colours: list[RGB] = []
    for index in range(len(classes)):
        if index == 0:
            colours.append(BACKGROUND_COLOUR)
        elif index == 1:
            colours.append(TISSUE_COLOUR)
        elif index - 2 < len(GENE_COLOURS):
            colours.append(GENE_COLOURS[index - 2])
        else:
            hue = ((index - 2) * 0.381966) % 1.0
            colours.append(colorsys.hsv_to_rgb(hue, 0.85, 0.9))
    return colours


def display_image(image: np.ndarray, max_pixels: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Block-mean downsampled image in 0..1 (STRETCH_PERCENTILES stretch) and its extent.

    Block means (not plain striding) keep nuclei visible instead of aliasing them away.

    Parameters
    ----------
    image : np.ndarray
        The 2-D image, any numeric dtype.
    max_pixels : int
        The shown image has at most this many pixels a side.

    Returns
    -------
    tuple[np.ndarray, tuple[float, ...]]
        The shown image (float, 0..1, NaN as 0) and its matplotlib extent
        ``(0, width, height, 0)`` in pixels of ``image``.
    """
    height, width = image.shape
    f = max(1, math.ceil(max(height, width) / max_pixels))
    small = np.asarray(image, dtype=np.float32)
    if f > 1:
        ph, pw = math.ceil(height / f) * f, math.ceil(width / f) * f
        small = np.pad(small, ((0, ph - height), (0, pw - width)), mode="edge")
        small = small.reshape(ph // f, f, pw // f, f).mean(axis=(1, 3))
    finite = small[np.isfinite(small)]
    low, high = np.percentile(finite, STRETCH_PERCENTILES) if finite.size else (0.0, 1.0)
    shown = np.clip((small - low) / max(float(high - low), 1e-12), 0, 1)
    return np.nan_to_num(shown), (0, small.shape[1] * f, small.shape[0] * f, 0)


def _display_labels(
    labels: np.ndarray,
    image_shape: tuple[int, int],
    colours: np.ndarray,
    max_pixels: int,
    stride: int,
) -> tuple[np.ndarray, tuple[float, ...]]:
    """RGB image of a label map (decimated to <= max_pixels a side) and its extent in pixels."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label maps must be 2-D, got shape {labels.shape}")
    inside = labels[labels != OUTSIDE_AREA]
    if inside.size and (inside.min() < 0 or inside.max() >= len(colours)):
        raise ValueError(
            f"labels range {inside.min()}..{inside.max()} but only {len(colours)} classes"
        )
    k = max(1, math.ceil(max(labels.shape) / max_pixels))
    small = labels[k // 2 :: k, k // 2 :: k]  # nearest: labels must not be averaged
    extent = (0, small.shape[1] * k * stride, small.shape[0] * k * stride, 0)
    # Outside a section's blocks (txmorph.blocks): not the section's, shown blank.
    rgb = colours[np.where(small == OUTSIDE_AREA, 0, small).astype(np.intp)]
    rgb[small == OUTSIDE_AREA] = 1.0
    return rgb, extent


def _layout(n_panels: int) -> tuple[int, int]:
    """(rows, columns): one row up to 4 panels, then 2+ rows of at most 5."""
    columns = n_panels if n_panels <= 4 else min(5, math.ceil(n_panels / 2))
    return math.ceil(n_panels / columns), columns


def summary_figure(
    image: np.ndarray,
    truth: np.ndarray | None,
    predictions: Mapping[str, np.ndarray],
    classes: Sequence[str],
    path: str | os.PathLike,
    max_pixels: int = 1024,
    *,
    strides: Mapping[str, int],
    notes: Mapping[str, str] | None = None,
) -> None:
    """Write a PNG: nuclei image, reference labels and each prediction, aligned, with a legend.

    Written atomically (temporary sibling, then ``os.replace``).

    Parameters
    ----------
    image : np.ndarray
        The 2-D nuclei image.
    truth : np.ndarray or None
        Reference labels on the image's grid (stride 1, unless ``strides["truth"]`` says
        otherwise); None (a prediction-only section, no spots): no reference panel.
    predictions : Mapping[str, np.ndarray]
        Each model's arg-max labels (indices into ``classes``), by model name.
    classes : Sequence[str]
        The class names the labels index.
    path : str or os.PathLike
        The PNG to write.
    max_pixels : int
        Images and maps are shown at most this many pixels a side.
    strides : Mapping[str, int]
        The CONVENTIONS grid stride of every prediction (its probability map's ``stride``),
        by name; a missing one is an error, since a map's grid cannot be told from its shape.
    notes : Mapping[str, str] or None
        A second title line per panel (e.g. ``{"size32": "mean Dice 0.61"}``).
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    strides = {"truth": 1, **strides}
    unknown = [name for name in predictions if name not in strides]
    if unknown:
        raise ValueError(f"no stride given for the predictions {unknown}")
    notes = dict(notes or {})
    height, width = image.shape
    palette = np.asarray(class_colours(classes), dtype=np.float32)

    panels: list[tuple[str, np.ndarray, tuple[float, ...], bool]] = []
    shown, extent = display_image(image, max_pixels)
    panels.append(("nuclei image", shown, extent, True))
    references = [("truth", truth)] if truth is not None else []
    for name, labels in [*references, *predictions.items()]:
        rgb, extent = _display_labels(labels, (height, width), palette, max_pixels,
                                      strides[name])
        panels.append((name, rgb, extent, False))

    rows, columns = _layout(len(panels))
    aspect = height / width if width else 1.0
    panel_w = 3.6
    panel_h = min(max(panel_w * aspect, 1.5), 6.0)
    figure = Figure(figsize=(panel_w * columns, panel_h * rows + 0.9), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.ravel():
        axis.set_axis_off()
    for axis, (name, data, extent, grey) in zip(axes.ravel(), panels):
        if grey:
            axis.imshow(data, cmap="gray", vmin=0, vmax=1, extent=extent,
                        interpolation="antialiased")
        else:
            axis.imshow(data, extent=extent, interpolation="nearest")
        axis.set_xlim(0, width)
        axis.set_ylim(height, 0)
        title = "reference (spots)" if name == "truth" and len(panels) > 1 else name
        if name in notes:
            title += f"\n{notes[name]}"
        axis.set_title(title, fontsize=11)
    handles = [
        Patch(facecolor=colour, edgecolor="0.4", label=name)
        for colour, name in zip(class_colours(classes), classes)
    ]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(classes), 8),
                  frameon=False, fontsize=10)
    figure.subplots_adjust(left=0.01, right=0.99, top=1 - 0.45 / (panel_h * rows + 0.9),
                           bottom=0.75 / (panel_h * rows + 0.9), wspace=0.04, hspace=0.18)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
