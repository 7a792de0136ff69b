"""Tissue vs background from the nuclei image (interim version)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, morphology


def tissue_mask(image: np.ndarray, pixel_size_um: float, smoothing_um: float = 10.0,
                min_area_um2: float = 10000.0) -> np.ndarray:
    factor = max(1, int(round(2.0 / pixel_size_um)))
    small = np.asarray(image[::factor, ::factor], dtype=np.float32)
    low, high = np.percentile(small, [1, 99.5])
    small = np.sqrt(np.clip((small - low) / max(high - low, 1e-6), 0, 1))
    sigma = smoothing_um / (pixel_size_um * factor)
    smooth = ndimage.gaussian_filter(small, sigma)
    mask = smooth > filters.threshold_otsu(smooth)
    min_px = int(min_area_um2 / (pixel_size_um * factor) ** 2)
    mask = morphology.remove_small_objects(mask, max_size=min_px)
    mask = ndimage.binary_fill_holes(mask)
    up = np.repeat(np.repeat(mask, factor, 0), factor, 1)
    return up[: image.shape[0], : image.shape[1]]
