"""Sections made of blocks of one image: a checkerboard split of one crop into a training and a
test section that hold the same anatomy, and the buffer between them.

A section's ``blocks: {grid: [rows, columns], keep: even | odd}`` (config) cuts its image
(after ``region`` and ``downsample``) into ``rows x columns`` near-equal blocks and keeps those
whose ``row + column`` is even (the top-left block's set) or odd: the two halves of a
checkerboard. Two sections of the same image with ``keep: even`` and ``keep: odd`` are then
spatially disjoint but interleaved, so train and test see the same mix of anatomy (a "block
fold"), unlike a split along one line.

What is not in the area is not the section's: no patch centre, no Dice pixel, no training
pixel counted for the chance prediction. Its label in the truth TIFF is ``OUTSIDE_AREA``.
Densities (and so the reference regions) are still computed from all of the image's spots, as
for a section without blocks: a block's edge is no tissue edge.

Patch centres of a training section keep a buffer of one largest patch size from every pixel
outside its area (``training_area``): a training patch of any size then ends at least half a
largest patch away from the test blocks, and the reference labels, smoothed with sigma of
about 35 px at the default scale, carry no test-block spots into a training label there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

#: Truth label of pixels outside a section's blocks: neither sampled nor scored.
OUTSIDE_AREA = 255
KEEP = ("even", "odd")


def block_index(shape: tuple[int, int], grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The block row of every image row and the block column of every image column.

    Parameters
    ----------
    shape : tuple[int, int]
        Image (rows, columns).
    grid : tuple[int, int]
        Blocks along rows and columns (each >= 1 and at most the image's extent).

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        (rows,) and (columns,) int64 block indices; block sides differ by at most one pixel.

    Raises
    ------
    ValueError
        When the grid is not two positive integers or is finer than the image.
    """
    if len(grid) != 2 or min(int(g) for g in grid) < 1:
        raise ValueError(f"blocks.grid must be two integers >= 1, got {list(grid)}")
    if int(grid[0]) > shape[0] or int(grid[1]) > shape[1]:
        raise ValueError(f"blocks.grid {list(grid)} is finer than the image ({shape[0]} x "
                         f"{shape[1]} px)")
    return tuple((np.arange(n, dtype=np.int64) * int(g)) // int(n)  # type: ignore[return-value]
                 for n, g in zip(shape, grid))


def checkerboard(shape: tuple[int, int], grid: tuple[int, int], keep: str) -> np.ndarray:
    """The (H, W) boolean area of the blocks whose row + column is even or odd.

    Parameters
    ----------
    shape : tuple[int, int]
        Image (rows, columns).
    grid : tuple[int, int]
        Blocks along rows and columns.
    keep : str
        ``even`` (the top-left block and its diagonal neighbours) or ``odd``.

    Returns
    -------
    np.ndarray
        (H, W) bool.
    """
    if keep not in KEEP:
        raise ValueError(f"blocks.keep must be one of {KEEP}, got {keep!r}")
    rows, cols = block_index(shape, grid)
    parity = (rows[:, None] + cols[None, :]) % 2
    return parity == (0 if keep == "even" else 1)


def section_area(shape: tuple[int, int], blocks: Mapping[str, Any] | None) -> np.ndarray | None:
    """A section's area from its ``blocks`` setting; None (the whole image) without one."""
    if not blocks:
        return None
    return checkerboard(shape, tuple(blocks["grid"]), str(blocks["keep"]))


def training_area(area: np.ndarray | None, buffer_px: float) -> np.ndarray | None:
    """The pixels of ``area`` at least ``buffer_px`` from every image pixel outside it.

    Parameters
    ----------
    area : np.ndarray or None
        (H, W) bool area; None: the whole image (returned as None).
    buffer_px : float
        Smallest distance (px) of a patch centre from the pixels outside the area; the image
        border is no such pixel.

    Returns
    -------
    np.ndarray or None
        (H, W) bool, or None.
    """
    if area is None:
        return None
    area = np.asarray(area, dtype=bool)
    if area.all() or not area.any():
        return area.copy()
    return ndimage.distance_transform_edt(area) >= float(buffer_px)


def restrict_labels(labels: np.ndarray, area: np.ndarray | None) -> np.ndarray:
    """``labels`` with every pixel outside ``area`` set to ``OUTSIDE_AREA`` (a copy)."""
    labels = np.array(labels, copy=True)
    if area is not None:
        labels[~np.asarray(area, dtype=bool)] = OUTSIDE_AREA
    return labels


def blocks_problem(shape: tuple[int, int], blocks: Mapping[str, Any] | None,
                   buffer_px: float | None = None) -> str | None:
    """What is wrong with a section's ``blocks`` on an image of ``shape``, or None.

    Parameters
    ----------
    shape : tuple[int, int]
        The section's canonical image (rows, columns).
    blocks : Mapping or None
        The section's ``blocks`` setting (``grid``, ``keep``); None: nothing to check.
    buffer_px : float or None
        A training section's patch centres keep this far from the other blocks (the largest
        patch size); None (a test section): no buffer is checked.

    Returns
    -------
    str or None
        A sentence naming the setting and what to change; None when the blocks are usable.
    """
    if not blocks:
        return None
    grid = [int(g) for g in blocks["grid"]]
    if grid[0] > shape[0] or grid[1] > shape[1]:
        return (f"blocks.grid {grid} is finer than the {shape[0]} x {shape[1]} px image: each "
                "block needs at least one pixel; use fewer blocks")
    area = checkerboard(shape, (grid[0], grid[1]), str(blocks["keep"]))
    if not area.any():
        return (f"blocks {{grid: {grid}, keep: {blocks['keep']}}} keeps no pixel of the "
                f"{shape[0]} x {shape[1]} px image (a 1 x 1 grid has no odd block): use a grid "
                "of at least 2 blocks or keep: even")
    if buffer_px is not None and not training_area(area, buffer_px).any():
        side = min(shape[0] // grid[0], shape[1] // grid[1])
        return (f"blocks.grid {grid} makes blocks of about {side} px, and no pixel of them is "
                f"{buffer_px:g} px (the largest patch size) from the other blocks, so this "
                "training section has nowhere to cut patches: use a coarser grid or smaller "
                "patches.sizes")
    return None
