"""Adaptation to the section being painted, without labels: BatchNorm statistics (AdaBN).

A CNN trained on one section normalises every conv block's features by the mean and variance
it saw there. A section imaged or stained a little differently shifts those features, and the
trained statistics no longer centre them. AdaBN (Li, Wang, Shi, Liu & Hou, "Revisiting batch
normalization for practical domain adaptation", 2016) re-estimates them on the target itself:
patches of the section to paint (its DAPI tissue, no spots or labels) pass through the network
with the BatchNorm layers collecting plain averages over all of them, every weight unchanged.
The map is then painted with this adapted network exactly as with the trained one (the dense
path folds the adapted statistics into the convolutions), so it equals patch-by-patch
inference with them.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from txmorph.patches.intensity import normalise
from txmorph.probmap.grid import reflected_window
from txmorph.train.model import PatchClassifier

#: Patches of the target section the statistics are averaged over (a few batches' worth).
ADAPT_PATCHES = 2048
#: Patches per forward pass while adapting.
ADAPT_BATCH = 256


def sample_patches(image: Any, tissue_mask: np.ndarray, patch_size: int, n: int,
                   low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` normalised patches centred at random tissue pixels (reflected at the border).

    Parameters
    ----------
    image : array-like
        (H, W) section image, read window by window (``image[r0:r1, c0:c1]``).
    tissue_mask : np.ndarray
        (H, W) bool: where centres may lie (the section's DAPI tissue).
    patch_size : int
        Side of the patches, in pixels.
    n : int
        How many.
    low, high : float
        The section's intensity range (``txmorph.patches.intensity.intensity_range``).
    rng : np.random.Generator
        Draws the centres.

    Returns
    -------
    np.ndarray
        float32 (m, S, S), m = n, or 0 when the mask is empty.
    """
    rows, cols = np.nonzero(tissue_mask)
    if rows.size == 0:
        return np.zeros((0, patch_size, patch_size), np.float32)
    pick = rng.integers(0, rows.size, n)
    out = np.empty((n, patch_size, patch_size), np.float32)
    for k, (r, c) in enumerate(zip(rows[pick], cols[pick])):
        out[k] = normalise(reflected_window(image, r, c, patch_size), low, high)
    return out


def adapt_batchnorm(model: PatchClassifier, patches: np.ndarray,
                    batch_size: int = ADAPT_BATCH) -> PatchClassifier:
    """A copy of ``model`` whose BatchNorm statistics are those of ``patches`` (AdaBN).

    Every BatchNorm's running mean and variance are reset and re-estimated as plain averages
    over all the patches (``momentum=None``); weights, the input standardisation and dropout
    are untouched (dropout stays off). ``model`` itself is not changed.

    Parameters
    ----------
    model : PatchClassifier
        The trained model.
    patches : np.ndarray
        (N, S, S) normalised patches of the target section, N > 0.
    batch_size : int
        Patches per forward pass.

    Returns
    -------
    PatchClassifier
        The adapted copy, in eval mode.

    Raises
    ------
    ValueError
        When there are no patches.
    """
    if len(patches) == 0:
        raise ValueError("no patches of the target section to adapt the BatchNorm statistics to")
    adapted = copy.deepcopy(model).eval()
    norms = [m for m in adapted.modules() if isinstance(m, nn.BatchNorm2d)]
    device = next(adapted.parameters()).device
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over every batch
        norm.train()
    with torch.no_grad():
        for start in range(0, len(patches), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(patches[start:start + batch_size]))
            adapted(x[:, None].to(device))
    for norm in norms:
        norm.momentum = 0.1
    return adapted.eval()
