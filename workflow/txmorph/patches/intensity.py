"""Section-level intensity normalisation shared by training and inference.

Two sections never have the same brightness (stain, exposure, illumination), so every
section is scaled by its own robust intensity range before a model sees it; the model then
learns morphology rather than absolute brightness.
"""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.5
# Percentiles of a large image are estimated on a regular subsample: exact enough for
# scaling and it keeps the cost independent of the section size.
MAX_SAMPLES = 4_000_000


def intensity_range(image: np.ndarray) -> tuple[float, float]:
    """Robust (low, high) intensity of a 2-D image: its 1st and 99.5th percentiles.

    Parameters
    ----------
    image : np.ndarray
        The 2-D image (or a memory-mapped view of it), any numeric dtype.

    Returns
    -------
    tuple[float, float]
        (low, high), for :func:`normalise`.
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    step = max(1, int(np.ceil(np.sqrt(image.size / MAX_SAMPLES))))
    sample = np.asarray(image[::step, ::step], dtype=np.float64)
    low, high = np.percentile(sample, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not high > low:  # a constant image: avoid dividing by zero, keep values finite
        high = low + 1.0
    return float(low), float(high)


def normalise(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Scale intensities so that ``low`` maps to 0 and ``high`` to 1 (float32, not clipped).

    Parameters
    ----------
    image : np.ndarray
        Image or patches, any shape.
    low, high : float
        The section's range from :func:`intensity_range`.

    Returns
    -------
    np.ndarray
        float32, same shape.
    """
    scale = np.float32(1.0 / (high - low))
    return (np.asarray(image, dtype=np.float32) - np.float32(low)) * scale
