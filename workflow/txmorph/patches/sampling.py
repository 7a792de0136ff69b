"""Where training patches are cut: reproducible patch centres per class, and the class set.

Labels come from the transcriptome alone, through the training section's own reference
regions (``txmorph.truth``, the rule that scores test sections): label 0 background (no
tissue), 1 general tissue (tissue outside every class region), 2 + k class k. Two ways to
place centres (``patches.labels``):

- ``spots`` (the paper's): a gene class's centres are the pixels of its genes' spots inside the
  tissue; general tissue's are the spots of the *other* genes that lie outside every class
  region (so that tissue patches are centred on cells just as gene patches are), topped up
  with random general-tissue pixels; background's are random pixels outside the tissue.
- ``regions``: random pixels inside each class's reference region (background and general
  tissue included): the label says what the neighbourhood expresses, not what one spot is.

General tissue is thus defined by density (outside the regions where the chosen genes are
enriched), which exists at any spot density, rather than by a distance to every single spot.

Each class keeps up to ``per_class`` centres per section: a rare class does not starve the
others (training balances the classes). An area counts one candidate per
``AREA_PER_CANDIDATE_UM2`` (about a nucleus): centres closer than that give the same patch.
A class with fewer than ``min_per_class`` candidates over all training sections is left out
of the models when it is background or general tissue (a crop inside tissue has no
background), with the reason logged and reported; a gene class is an error. Centres are never
out of bounds: patches reaching past the image border are completed by reflection
(``extract_patches``), the rule the probability maps use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from txmorph.blocks import OUTSIDE_AREA
from txmorph.classes import GENERAL_CLASSES, class_names
from txmorph.errors import InputError

BACKGROUND, TISSUE = GENERAL_CLASSES
LABEL_MODES = ("spots", "regions")
#: Area that counts as one candidate centre (about one nucleus, 5 x 5 µm).
AREA_PER_CANDIDATE_UM2 = 25.0


@dataclass(frozen=True)
class PatchCentres:
    """Sampled patch centres (row, col) with their class labels.

    Parameters
    ----------
    centres : np.ndarray
        (N, 2) int64 (row, col) centres.
    labels : np.ndarray
        (N,) int64 index of each centre's class in the class list.
    available : dict[str, int]
        Number of candidate centres per class.
    """

    centres: np.ndarray  # (N, 2) int64, (row, col)
    labels: np.ndarray  # (N,) int64, index into the class list
    available: dict[str, int]  # candidate count per class


def spot_pixels(spots: pd.DataFrame | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The (row, col) pixel of each spot, clipped to the image.

    Parameters
    ----------
    spots : pd.DataFrame or np.ndarray
        A frame with ``x``, ``y`` columns, or an (N, 2) array of (x, y), in pixels.
    shape : tuple[int, int]
        (rows, cols) of the image.

    Returns
    -------
    np.ndarray
        (N, 2) int64 (row, col): ``floor(y), floor(x)``, clipped to ``shape``.
    """
    if isinstance(spots, pd.DataFrame):
        x, y = spots["x"].to_numpy(np.float64), spots["y"].to_numpy(np.float64)
    else:
        xy = np.asarray(spots, dtype=np.float64).reshape(-1, 2)
        x, y = xy[:, 0], xy[:, 1]
    rows = np.clip(np.floor(y), 0, shape[0] - 1)
    cols = np.clip(np.floor(x), 0, shape[1] - 1)
    return np.stack([rows, cols], axis=1).astype(np.int64)


def _draw(rng: np.random.Generator, candidates: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct candidates (rows of ``candidates``), reproducible from ``rng``."""
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
    reference: np.ndarray,
    class_spots: Mapping[str, np.ndarray],
    other_spots: np.ndarray,
    *,
    per_class: int,
    pixel_size_um: float,
    rng: np.random.Generator,
    mode: str = "spots",
) -> PatchCentres:
    """Patch centres of one training section for every class (see the module docstring).

    ``reference`` is the section's reference label image (0 background, 1 general tissue,
    2 + k the k-th of ``class_spots``; ``txmorph.blocks.OUTSIDE_AREA`` where no centre may lie);
    ``class_spots`` the (x, y) pixels of each gene class's
    spots, ``other_spots`` those of every other gene. Labels index
    ``class_names(list(class_spots))``; ``available`` counts each class's candidates (spots,
    or area / ``AREA_PER_CANDIDATE_UM2``). Each class keeps ``min(per_class, available)``.

    Parameters
    ----------
    reference : np.ndarray
        (H, W) reference label image of the section.
    class_spots : Mapping[str, np.ndarray]
        Per gene class, the (x, y) pixels of its spots.
    other_spots : np.ndarray
        (x, y) pixels of the spots of every other gene.
    per_class : int
        Most centres per class (>= 1).
    pixel_size_um : float
        Pixel size, in µm (converts areas to candidate counts).
    rng : np.random.Generator
        Generator of every random draw.
    mode : str
        ``spots`` (gene classes centred on their spots) or ``regions`` (every class at
        random pixels of its region).

    Returns
    -------
    PatchCentres
        The centres, their labels and the candidate count per class.

    Raises
    ------
    ValueError
        When ``mode`` or ``per_class`` is invalid.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"mode must be one of {LABEL_MODES}, got {mode!r}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    reference = np.asarray(reference)
    shape = reference.shape
    cells_per_pixel = pixel_size_um ** 2 / AREA_PER_CANDIDATE_UM2
    names = class_names(list(class_spots))

    def area_count(label: int) -> int:
        return int(np.count_nonzero(reference == label) * cells_per_pixel)

    def on(pixels: np.ndarray, keep) -> np.ndarray:
        return pixels[keep(reference[pixels[:, 0], pixels[:, 1]])]

    available: dict[str, int] = {}
    chosen: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for label, name in enumerate(names):
        if mode == "regions" or name == BACKGROUND:
            available[name] = area_count(label)
            picked = _random_pixels(rng, reference == label, min(per_class, available[name]))
        elif name == TISSUE:
            # Other genes' spots in general tissue, one per pixel; random tissue pixels top up.
            spots = np.unique(on(spot_pixels(other_spots, shape), lambda v: v == label), axis=0)
            available[name] = max(len(spots), area_count(label))
            n = min(per_class, available[name])
            if len(spots) >= n:
                picked = _draw(rng, spots, n)
            else:
                allowed = reference == label
                allowed[spots[:, 0], spots[:, 1]] = False
                picked = np.concatenate([spots, _random_pixels(rng, allowed, n - len(spots))])
        else:
            spots = on(spot_pixels(class_spots[name], shape),
                       lambda v: (v >= 1) & (v != OUTSIDE_AREA))
            available[name] = len(spots)
            picked = _draw(rng, spots, min(per_class, len(spots)))
        chosen.append(picked.reshape(-1, 2))
        labels.append(np.full(len(picked), label, dtype=np.int64))
    return PatchCentres(
        centres=np.concatenate(chosen).astype(np.int64),
        labels=np.concatenate(labels),
        available=available,
    )


def class_shortfalls(available: Sequence[Mapping[str, int]], names: Sequence[str],
                     min_per_class: int, sources: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The classes with fewer than ``min_per_class`` candidates over all sections.

    Parameters
    ----------
    available : Sequence[Mapping[str, int]]
        Per training section, the candidate count of each class.
    names : Sequence[str]
        The classes, in order.
    min_per_class : int
        Fewest candidates a class needs.
    sources : Sequence[str]
        A name per section, for the per-section counts.

    Returns
    -------
    dict[str, tuple[int, str]]
        Per short class (in the order of ``names``), its total and its counts per section
        (``"left: 0, right: 3"``).
    """
    short = {}
    for name in names:
        total = sum(int(counts.get(name, 0)) for counts in available)
        if total < min_per_class:
            short[name] = (total, ", ".join(f"{s}: {int(c.get(name, 0))}"
                                            for s, c in zip(sources, available)))
    return short


def choose_classes(
    available: Sequence[Mapping[str, int]], names: Sequence[str], min_per_class: int,
    sources: Sequence[str] | None = None, optional: Collection[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The classes the models learn, and why the others were left out.

    ``available`` holds each training section's candidate counts. Background or general
    tissue with fewer than ``min_per_class`` candidates over all sections is left out (a
    crop inside tissue has no background); a gene class that short raises ``InputError``,
    since it was asked for by name and cannot be learned.

    Parameters
    ----------
    available : Sequence[Mapping[str, int]]
        Per training section, the candidate count of each class.
    names : Sequence[str]
        The class names asked for, in order.
    min_per_class : int
        Fewest candidates (over all sections) a class needs to be learned.
    sources : Sequence[str] or None
        A name per section for the messages; None: ``section 0``, ``section 1``, ...
    optional : Collection[str]
        Classes left out, not an error, when short: expression niches (``niches: K``), found
        over the test sections too, so one may be tissue the training sections lack. At least
        two of them must stay.

    Returns
    -------
    tuple[list[str], dict[str, str]]
        The kept class names (in the order of ``names``) and, per class left out, why.

    Raises
    ------
    InputError
        When a gene class has too few candidates, or fewer than two classes are kept.
    """
    sources = list(sources or [f"section {i}" for i in range(len(available))])
    short = class_shortfalls(available, names, min_per_class, sources)
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for name in names:
        if name not in short:
            kept.append(name)
            continue
        total, per_section = short[name]
        if name in optional:
            dropped[name] = (
                f"only {total} candidate centres in the training sections ({per_section}; at "
                f"least patches.min_per_class = {min_per_class} needed): a niche that the "
                "training sections hardly hold, so it is not learnt")
        elif name in (BACKGROUND, TISSUE):
            dropped[name] = (
                f"only {total} candidate centres in the training sections ({per_section}; at "
                f"least patches.min_per_class = {min_per_class} needed): "
                + ("the sections are tissue throughout" if name == BACKGROUND else
                   "the class regions cover the whole tissue"))
        else:
            raise InputError(
                f"class '{name}' has only {total} candidate patch centres in the training "
                f"sections ({per_section}; need at least patches.min_per_class = "
                f"{min_per_class}). Check that its genes match the spot table and lie in the "
                "tissue, choose genes with more spots (see the gene_candidates target), or "
                "lower patches.min_per_class.")
    if optional and len([name for name in kept if name in optional]) < 2:
        raise InputError(f"only {[n for n in kept if n in optional]} of the niches can be "
                         "learned from the training sections; at least two are needed ("
                         + "; ".join(f"{k}: {v}" for k, v in dropped.items()) + ")")
    if len(kept) < 2:
        raise InputError(f"only {kept} can be learned from the training sections; at least two "
                         f"classes are needed ({'; '.join(f'{k}: {v}' for k, v in dropped.items())})")
    return kept, dropped


def extract_patches(image: np.ndarray, centres: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut ``patch_size`` square patches centred at ``centres`` (row, col), in the image dtype.

    The patch centred at (r, c) covers rows ``r - S//2 .. r - S//2 + S - 1``. Parts outside
    the image are filled by reflection: only a halo of ``patch_size`` is padded, never more.

    Parameters
    ----------
    image : np.ndarray
        (H, W) image.
    centres : np.ndarray
        (N, 2) int (row, col) centres.
    patch_size : int
        Side S of the patches, in pixels.

    Returns
    -------
    np.ndarray
        (N, S, S) patches.
    """
    half = patch_size // 2
    padded = np.pad(image, patch_size, mode="reflect")
    # Offsets into the padded image: the patch starts at (r - half + S) in padded coordinates.
    starts = centres + (patch_size - half)
    offsets = np.arange(patch_size)
    rows = starts[:, 0, None, None] + offsets[None, :, None]
    cols = starts[:, 1, None, None] + offsets[None, None, :]
    return padded[rows, cols]
