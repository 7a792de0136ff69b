"""Probability maps as pyramidal OME-TIFF, for viewers such as napari and QuPath."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tifffile

from txmorph.outputs import atomic_path

# Viewers need no level smaller than a thumbnail.
MIN_LEVEL_SIDE = 256


def pyramid_levels(shape: tuple[int, int]) -> int:
    """Number of 2x-downsampled levels below full resolution down to about MIN_LEVEL_SIDE.

    Parameters
    ----------
    shape : tuple[int, int]
        (rows, cols) of the full-resolution map.

    Returns
    -------
    int
        Sub-resolution levels, 0 for a small map.
    """
    levels, side = 0, max(shape)
    while side // 2 >= MIN_LEVEL_SIDE:
        side //= 2
        levels += 1
    return levels


def _halve(stack: np.ndarray) -> np.ndarray:
    """2x2 mean of a (C, H, W) stack (odd edges padded by repetition)."""
    channels, height, width = stack.shape
    padded = np.pad(stack, ((0, 0), (0, height % 2), (0, width % 2)), mode="edge")
    return padded.reshape(channels, (height + 1) // 2, 2, (width + 1) // 2, 2).mean(axis=(2, 4))


def write_ome_tiff(
    path: str | os.PathLike,
    probabilities: np.ndarray,
    classes: Sequence[str],
    pixel_size_um: float,
) -> None:
    """Write (C, H', W') probabilities as uint8 (0-255) pyramidal OME-TIFF, one channel per class.

    ``pixel_size_um`` is the size of one map pixel (the section's pixel size times the map's
    stride), so the map overlays the nuclei image in physical units.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.ome.tif`` to write (atomically).
    probabilities : np.ndarray
        (C, H', W') probabilities in 0..1.
    classes : Sequence[str]
        Channel names, one per class.
    pixel_size_um : float
        Physical size of one map pixel.
    """
    if probabilities.ndim != 3 or probabilities.shape[0] != len(classes):
        raise ValueError(f"expected ({len(classes)}, H, W) probabilities, got {probabilities.shape}")
    level = np.round(np.clip(probabilities, 0, 1) * 255).astype(np.uint8)
    n_levels = pyramid_levels(level.shape[1:])
    metadata = {
        "axes": "CYX",
        "Channel": {"Name": list(classes)},
        "PhysicalSizeX": pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um,
        "PhysicalSizeYUnit": "µm",
    }
    options = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        tif.write(level, subifds=n_levels, metadata=metadata, **options)
        for _ in range(n_levels):
            level = np.round(_halve(level.astype(np.float32))).astype(np.uint8)
            tif.write(level, subfiletype=1, metadata=None, **options)
