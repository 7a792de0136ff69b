"""Where training patches are cut: class-balanced, reproducible patch centres.

Labels come from the transcriptome alone. For each class we collect candidate centres and
draw the same number from each:

- gene classes: the pixel position of every spot of that gene inside the tissue mask;
- ``tissue`` (general tissue): tissue-mask positions *away* from gene expression, i.e. the
  positions of spots of all *other* genes that lie inside the tissue mask and farther than
  ``exclusion_radius_px`` from every spot of the chosen genes. Using other genes' spots
  (rather than random pixels) centres tissue patches on cells exactly as gene patches are,
  so a model cannot tell the classes apart by "patch centred on a cell or not". If a table
  has too few other-gene spots, random tissue pixels obeying the same distance rule are
  added;
- ``background``: random pixels outside the tissue mask.

Each class contributes ``min(per_class, smallest class's candidate count)`` centres drawn
without replacement, so classes are balanced exactly. Centres are never out of bounds:
patches that reach past the image border are completed by reflection (see
``extract_patches``), the same rule the probability maps use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from txmorph.errors import InputError

BACKGROUND = "background"
TISSUE = "tissue"


def class_names(genes: Sequence[str]) -> list[str]:
    """The ordered class names: background, tissue, then one class per gene."""
    return [BACKGROUND, TISSUE, *genes]


@dataclass(frozen=True)
class PatchCentres:
    """Sampled patch centres (row, col) with their class labels."""

    centres: np.ndarray  # (N, 2) int64, (row, col)
    labels: np.ndarray  # (N,) int64, index into class_names(genes)
    available: dict[str, int]  # candidate count per class before balancing


def spot_pixels(spots: pd.DataFrame, shape: tuple[int, int]) -> np.ndarray:
    """(row, col) pixel of each spot, clipped into the image (int64, (N, 2))."""
    rows = np.clip(np.floor(spots["y"].to_numpy(np.float64)), 0, shape[0] - 1)
    cols = np.clip(np.floor(spots["x"].to_numpy(np.float64)), 0, shape[1] - 1)
    return np.stack([rows, cols], axis=1).astype(np.int64)


def _far_from(points: np.ndarray, shape: tuple[int, int], radius_px: float) -> np.ndarray:
    """Boolean image: pixels farther than ``radius_px`` from every point (row, col)."""
    near = np.zeros(shape, dtype=bool)
    if len(points):
        near[points[:, 0], points[:, 1]] = True
    else:
        return np.ones(shape, dtype=bool)
    # A distance transform on the complement gives every pixel's distance to the nearest point.
    distance = ndimage.distance_transform_edt(~near)
    return distance > radius_px


def _draw(rng: np.random.Generator, candidates: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct candidates in a random order, reproducible from ``rng``."""
    pick = rng.choice(len(candidates), size=n, replace=False)
    return candidates[np.sort(pick)]


def _random_pixels(rng: np.random.Generator, allowed: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` distinct random (row, col) pixels where ``allowed`` is True."""
    flat = np.flatnonzero(allowed)
    if len(flat) == 0 or n <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    pick = np.sort(rng.choice(len(flat), size=min(n, len(flat)), replace=False))
    return np.stack(np.unravel_index(flat[pick], allowed.shape), axis=1).astype(np.int64)


def sample_centres(
    spots: pd.DataFrame,
    tissue_mask: np.ndarray,
    genes: Sequence[str],
    per_class: int,
    exclusion_radius_px: float,
    rng: np.random.Generator,
    min_per_class: int = 1,
    source: str = "section",
) -> PatchCentres:
    """Class-balanced patch centres for one section (see the module docstring for the rules).

    Raises ``InputError`` when a class has fewer than ``min_per_class`` candidates, naming
    the class and how many there are, since a model cannot learn a class it never sees.
    """
    shape = tissue_mask.shape
    pixels = spot_pixels(spots, shape)
    in_tissue = tissue_mask[pixels[:, 0], pixels[:, 1]]
    gene_of_spot = spots["gene"].to_numpy()

    candidates: dict[str, np.ndarray] = {}
    is_chosen_gene = np.isin(gene_of_spot, list(genes))
    far_from_genes = _far_from(pixels[is_chosen_gene], shape, exclusion_radius_px)
    tissue_far = tissue_mask & far_from_genes
    other = pixels[~is_chosen_gene & in_tissue]
    other = other[tissue_far[other[:, 0], other[:, 1]]]
    # Several spots often share a pixel; one candidate per pixel keeps draws independent.
    candidates[TISSUE] = np.unique(other, axis=0)
    candidates[BACKGROUND] = np.zeros((0, 2), dtype=np.int64)  # drawn from pixels below
    for gene in genes:
        candidates[gene] = pixels[(gene_of_spot == gene) & in_tissue]

    background_pixels = int((~tissue_mask).sum())
    available = {
        BACKGROUND: background_pixels,
        # Random tissue pixels top up the other-gene spots, so the pixel count is the limit.
        TISSUE: max(len(candidates[TISSUE]), int(tissue_far.sum())),
        **{gene: len(candidates[gene]) for gene in genes},
    }
    for name, count in available.items():
        if count < min_per_class:
            raise InputError(
                f"{source}: class '{name}' has only {count} candidate patch centres "
                f"(need at least {min_per_class}). "
                + _advice(name)
            )
    n = int(min(per_class, *available.values()))

    chosen: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for label, name in enumerate(class_names(genes)):
        if name == BACKGROUND:
            picked = _random_pixels(rng, ~tissue_mask, n)
        elif name == TISSUE:
            from_spots = candidates[TISSUE]
            if len(from_spots) >= n:
                picked = _draw(rng, from_spots, n)
            else:
                allowed = tissue_far.copy()
                allowed[from_spots[:, 0], from_spots[:, 1]] = False
                extra = _random_pixels(rng, allowed, n - len(from_spots))
                picked = np.concatenate([from_spots, extra])
        else:
            picked = _draw(rng, candidates[name], n)
        chosen.append(picked)
        labels.append(np.full(len(picked), label, dtype=np.int64))
    return PatchCentres(
        centres=np.concatenate(chosen).astype(np.int64),
        labels=np.concatenate(labels),
        available=available,
    )


def _advice(name: str) -> str:
    if name == BACKGROUND:
        return ("The tissue mask covers the whole image: use an image with some background "
                "around the tissue, or check the tissue-mask settings.")
    if name == TISSUE:
        return ("Every tissue position lies close to the chosen genes: lower "
                "patches.tissue_exclusion_um in config.yaml.")
    return ("Check that the gene name matches the spots table and that its spots fall inside "
            "the tissue, or choose a gene with more spots.")


def extract_patches(image: np.ndarray, centres: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut ``patch_size`` square patches centred at ``centres`` (row, col), in the image dtype.

    The patch centred at (r, c) covers rows ``r - S//2 .. r - S//2 + S - 1``. Parts outside
    the image are filled by reflection: only a halo of ``patch_size`` is padded, never more.
    """
    half = patch_size // 2
    padded = np.pad(image, patch_size, mode="reflect")
    # Offsets into the padded image: the patch starts at (r - half + S) in padded coordinates.
    starts = centres + (patch_size - half)
    offsets = np.arange(patch_size)
    rows = starts[:, 0, None, None] + offsets[None, :, None]
    cols = starts[:, 1, None, None] + offsets[None, None, :]
    return padded[rows, cols]
