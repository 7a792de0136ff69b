"""The probability-map grid (docs/CONVENTIONS.md), without torch: shapes, tiles, reflection.

Shared by the CNN maps (``txmorph.probmap.paint``) and the torch-free baseline and gene probe, whose
rules run in environments without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import Any

import numpy as np


def native_stride(patch_size: int, network_input: int, n_blocks: int) -> int:
    """Output stride (input pixels per map pixel) of the CNN at its native resolution.

    The patch is average-pooled by ``patch_size // network_input`` to the network input, then
    each of the ``n_blocks`` conv blocks halves the map with its 2x2 max-pool
    (``txmorph.train.model.PatchClassifier``).

    Parameters
    ----------
    patch_size : int
        The CNN's patch size S.
    network_input : int
        Side of the pooled patch the convolutions see (``training.network_input``).
    n_blocks : int
        Number of conv blocks (``len(training.widths)``).

    Returns
    -------
    int
        ``(patch_size // network_input) * 2 ** n_blocks``.
    """
    return (int(patch_size) // int(network_input)) * 2 ** int(n_blocks)


def probability_grid_shape(image_shape: Sequence[int], stride: int) -> tuple[int, int]:
    """Shape ``(ceil(H/s), ceil(W/s))`` of the probability map of an (H, W) image.

    Parameters
    ----------
    image_shape : Sequence[int]
        (H, W) of the image.
    stride : int
        Input pixels per map pixel.

    Returns
    -------
    tuple[int, int]
        (rows, cols) of the map grid (CONVENTIONS).
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    return -(-height // stride), -(-width // stride)


def outputs_per_tile(tile_size: int, stride: int) -> int:
    """Output pixels per tile side: a tile spans about ``tile_size`` input pixels.

    Counting the tile in input pixels keeps memory (~``(tile_size + S)**2`` pixels of
    input and feature maps) the same for every patch size; an h5py ``out`` chunked in
    multiples of this is written without re-compressing partly filled chunks.

    Parameters
    ----------
    tile_size : int
        Tile side in input pixels (``probmap.tile_size``).
    stride : int
        Input pixels per output pixel.

    Returns
    -------
    int
        Output pixels per tile side, at least 1.
    """
    return max(1, int(tile_size) // int(stride))


def reflect_indices(index: np.ndarray, size: int) -> np.ndarray:
    """Map indices outside ``[0, size)`` into it as ``numpy.pad(mode="reflect")`` does.

    Reflection (edge not repeated) is periodic with period ``2 * (size - 1)``, which also
    covers pads wider than the image; numpy extends a single pixel as a constant.

    Parameters
    ----------
    index : np.ndarray
        Integer indices, any shape, possibly negative or past the end.
    size : int
        Length of the axis.

    Returns
    -------
    np.ndarray
        Indices in ``[0, size)``, same shape.
    """
    index = np.asarray(index, dtype=np.int64)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded >= size, period - folded, folded)


def reflected_window(image: Any, row: int, col: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` window of ``image`` centred at (``row``, ``col``), reflected.

    Rows ``row - size // 2`` ... ``row - size // 2 + size - 1`` (columns alike), as patches are
    cut (docs/CONVENTIONS.md); past the border the image is reflected as ``numpy.pad(mode=
    "reflect")`` would, reading only the block the window touches (``image`` may be memory-mapped).

    Parameters
    ----------
    image : array-like
        (H, W) image supporting ``image[r0:r1, c0:c1]``.
    row, col : int
        The window's centre.
    size : int
        Its side, in pixels.

    Returns
    -------
    np.ndarray
        (size, size) in the image's dtype.
    """
    height, width = image.shape
    offsets = np.arange(size) - size // 2
    rows = reflect_indices(int(row) + offsets, height)
    cols = reflect_indices(int(col) + offsets, width)
    r0, c0 = int(rows.min()), int(cols.min())
    block = np.asarray(image[r0:int(rows.max()) + 1, c0:int(cols.max()) + 1])
    return block[np.ix_(rows - r0, cols - c0)]
