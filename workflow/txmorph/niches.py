"""Expression niches: regions whose local mix of all transcripts differs, found jointly.

Issue 20's classes without a gene choice (``niches: K`` in place of ``genes:``):

1. **Clustering** (:func:`joint_niches`): Points2Regions (Andersson et al., Cytometry A 2024;
   the ``points2regions`` package) bins every section's spots at ``bin_um``, smooths each
   bin's gene composition over ``smoothing_um`` and clusters the bins by k-means; with one
   ``datasetid`` per section the sections are clustered jointly, so niche k is one kind of
   tissue in every section. The scale is the pipeline's one spatial scale, ``truth.sigma_um``
   (:func:`clustering_scale`): bins of sigma / 2 and a smoothing radius of 2 sigma, the disk
   that a gene region must fill too (``truth.min_spots_per_region``). Niches are numbered by
   size (niche1 holds the most spots over all sections, so a niche's number does not depend on
   k-means' arbitrary order) and named by their most enriched genes (:func:`niche_genes`).
2. **Reference map** (:func:`niche_labels`): a niche partitions the tissue. Each spot carries
   its niche; a tissue pixel belongs to the niche of most of the transcripts within the
   ``truth.sigma_um`` kernel around it (the largest local share, ``txmorph.truth``'s shares
   on its coarse grid of about sigma / 4), pieces smaller than a disk of radius 2 sigma go to
   the nearest larger niche (as gene regions drop specks), and so does tissue without a
   transcript in reach. No threshold is fitted: where one niche ends another begins.
3. **What the data can hold** (:func:`scale_problem`, :func:`support_problem`): a section
   too sparse for the scale, or a K the spots cannot fill, is a clear error before any patch
   is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import math

import numpy as np
import pandas as pd
from scipy import ndimage

from txmorph.classes import niche_classes
from txmorph.truth import coarse_shares, min_region_area_px, remove_specks

#: Genes named per niche.
TOP_GENES = 3
#: A gene names a niche only with at least this many of its spots there: a plain enrichment
#: ratio would name niches after rare genes (a handful of spots, all in one niche).
MIN_SPOTS_TO_NAME = 20
#: Pseudocount of the enrichment ratio, for the same reason.
PSEUDOCOUNT = 5.0
#: A gene names a niche only at this enrichment or more (twice its overall share, the usual
#: two-fold bar and truth.enrichment's default): genes found everywhere name no niche.
MIN_ENRICHMENT = 2.0
#: Bins per truth.sigma_um of the clustering grid, and its smoothing radius in sigmas.
BINS_PER_SIGMA = 2.0
SMOOTHING_SIGMAS = 2.0


def clustering_scale(sigma_um: float) -> tuple[float, float]:
    """(bin side, smoothing radius) of the clustering, in µm, from ``truth.sigma_um``."""
    return sigma_um / BINS_PER_SIGMA, SMOOTHING_SIGMAS * sigma_um


@dataclass(frozen=True)
class Niches:
    """The joint niches of several sections.

    Parameters
    ----------
    labels : list[np.ndarray]
        Per section, the (N_s,) niche index (0 .. K-1) of each spot, -1 where none.
    names : list[str]
        Per niche, e.g. ``niche1 (Mbp, Plp1, Mobp)``.
    top_genes : list[list[str]]
        Per niche, its most enriched genes.
    shares : np.ndarray
        (n_sections, K) share of each section's spots in each niche.
    """

    labels: list[np.ndarray]
    names: list[str]
    top_genes: list[list[str]]
    shares: np.ndarray


def joint_niches(spots: Sequence[pd.DataFrame], k: int, bin_um: float, smoothing_um: float,
                 seed: int) -> Niches:
    """K expression niches of the spots of every section, clustered jointly.

    Parameters
    ----------
    spots : Sequence[pd.DataFrame]
        Per section, its spots: ``gene``, ``x``, ``y`` in micrometres (any origin: sections
        are told apart by their index, never by their coordinates).
    k : int
        Number of niches, >= 2.
    bin_um : float
        Side of the bins the spots are counted in, in µm.
    smoothing_um : float
        Radius over which each bin's gene composition is smoothed, in µm.
    seed : int
        Seed of the k-means clustering.

    Returns
    -------
    Niches
        Labels per spot, names, top genes and shares.

    Raises
    ------
    ValueError
        For ``k < 2``, a non-positive scale, or no spots.
    """
    from points2regions import Points2Regions  # scikit-learn under it: imported on use
    from threadpoolctl import threadpool_limits  # scikit-learn's

    if int(k) < 2:
        raise ValueError(f"niches: K must be at least 2, got {k}")
    if not (bin_um > 0 and smoothing_um > 0):
        raise ValueError(f"niche bin {bin_um} µm and smoothing {smoothing_um} µm must be "
                         "positive")
    sizes = [len(table) for table in spots]
    if sum(sizes) == 0:
        raise ValueError("no spots to find niches in")
    table = pd.concat([t[["gene", "x", "y"]] for t in spots], ignore_index=True)
    section = np.repeat(np.arange(len(spots)), sizes)
    model = Points2Regions(table[["x", "y"]].to_numpy(np.float64), table["gene"].to_numpy(),
                           pixel_width=float(bin_um), pixel_smoothing=float(smoothing_um) / bin_um,
                           datasetids=section.astype(str))
    # One thread: the rule's, and OpenMP threads slow this small k-means about ten-fold.
    with threadpool_limits(limits=1):
        raw = np.asarray(model.fit_predict(num_clusters=int(k), output="marker",
                                           seed=int(seed)), dtype=np.int64)
    labels = _by_size(raw, int(k))
    top_genes = niche_genes(table["gene"].to_numpy(), labels, int(k))
    names = [f"{name} ({', '.join(genes)})" if genes else name
             for name, genes in zip(niche_classes(int(k)), top_genes)]
    shares = np.zeros((len(spots), int(k)))
    for s in range(len(spots)):
        own = labels[section == s]
        own = own[own >= 0]
        if own.size:
            shares[s] = np.bincount(own, minlength=int(k)) / own.size
    bounds = np.cumsum([0] + sizes)
    return Niches([labels[a:b] for a, b in zip(bounds[:-1], bounds[1:])], names, top_genes,
                  shares)


def _by_size(raw: np.ndarray, k: int) -> np.ndarray:
    """Relabel clusters 0 .. k-1 by descending spot count (ties: the lower raw label first)."""
    counts = np.bincount(raw[raw >= 0], minlength=k)
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
    mapping = np.full(len(counts), -1, np.int64)
    mapping[order[:k]] = np.arange(min(k, len(order)))
    out = np.full(raw.shape, -1, np.int64)
    valid = raw >= 0
    out[valid] = mapping[raw[valid]]
    return out


def niche_genes(genes: np.ndarray, labels: np.ndarray, k: int,
                top: int = TOP_GENES) -> list[list[str]]:
    """Per niche, the genes most enriched in it against the rest of the tissue.

    A gene's enrichment is its share of the niche's spots over its share of all other spots
    (pseudocounted); it names the niche with at least ``MIN_SPOTS_TO_NAME`` spots there and
    an enrichment of at least ``MIN_ENRICHMENT``. Niche against rest, not against all spots:
    a niche holding most of the spots would otherwise never be twice anything. A niche where
    no gene is enriched is named by its number only.

    Parameters
    ----------
    genes : np.ndarray
        (N,) gene of each spot.
    labels : np.ndarray
        (N,) niche of each spot, -1 for none.
    k : int
        Number of niches.
    top : int
        Genes per niche.

    Returns
    -------
    list[list[str]]
        Per niche, up to ``top`` genes, most enriched first (ties by name).
    """
    genes = np.asarray(genes).astype(str)
    overall = pd.Series(genes).value_counts()
    result = []
    for niche in range(k):
        inside = genes[labels == niche]
        if inside.size == 0:
            result.append([])
            continue
        counts = pd.Series(inside).value_counts()
        outside = overall[counts.index] - counts
        rest = max(genes.size - inside.size, 1)
        ratio = ((counts + PSEUDOCOUNT) / inside.size) / ((outside + PSEUDOCOUNT) / rest)
        ratio = ratio[(counts >= MIN_SPOTS_TO_NAME) & (ratio >= MIN_ENRICHMENT)]
        ranked = sorted(ratio.items(), key=lambda item: (-item[1], item[0]))
        result.append([gene for gene, _ in ranked[:top]])
    return result


def niche_labels(tissue_mask: np.ndarray, spots_by_niche: dict[str, np.ndarray],
                 sigma_px: float) -> np.ndarray:
    """A section's niche map (uint8 ``(H, W)``): 0 background, 2 + i niche i (see module).

    Parameters
    ----------
    tissue_mask : np.ndarray
        2-D boolean tissue mask (H, W).
    spots_by_niche : dict[str, np.ndarray]
        Per niche, in class order, the (N, 2) (x, y) pixels of its spots.
    sigma_px : float
        ``truth.sigma_um`` in pixels.

    Returns
    -------
    np.ndarray
        uint8 labels in the pipeline's class order (background, tissue, niches). General
        tissue (1) is left only where no niche has a spot on the tissue at all.
    """
    if len(spots_by_niche) > 253:
        raise ValueError(f"at most 253 niches fit uint8 labels, got {len(spots_by_niche)}")
    mask = np.asarray(tissue_mask).astype(bool, copy=False)
    labels = mask.astype(np.uint8)
    if not spots_by_niche:
        return labels
    all_xy = np.concatenate([np.asarray(xy, np.float64).reshape(-1, 2)
                             for xy in spots_by_niche.values()])
    b, shares = coarse_shares(mask, spots_by_niche, all_xy, sigma_px)
    stack = np.stack(list(shares.values()))
    coarse = stack.argmax(axis=0).astype(np.int16)
    reached = stack.max(axis=0) > 0
    # Pieces smaller than a 2-sigma disk (in coarse bins) join their neighbours.
    min_bins = min_region_area_px(sigma_px) / (b * b)
    for index in range(stack.shape[0]):
        piece = reached & (coarse == index)
        kept = remove_specks(piece.copy(), min_bins)
        reached &= ~(piece & ~kept)
    if not reached.any():
        return labels
    if not reached.all():
        # Every bin out of reach takes the nearest reached bin's niche.
        _, (rows, cols) = ndimage.distance_transform_edt(~reached, return_indices=True)
        coarse = coarse[rows, cols]
    full = np.repeat(np.repeat(coarse, b, axis=0), b, axis=1)[: mask.shape[0], : mask.shape[1]]
    labels[mask] = (full[mask] + 2).astype(np.uint8)
    return labels


def scale_problem(section: str, spots_in_tissue: int, tissue_um2: float, sigma_um: float,
                  min_spots_per_region: int) -> str | None:
    """Why a section is too sparse for niches at this scale (one message), else None.

    A niche is read off the transcripts within 2 sigma of a point: with fewer than
    ``truth.min_spots_per_region`` of them on average, the composition is noise (the same
    bar a gene region must pass in its densest disk; here the tissue's mean).

    Parameters
    ----------
    section : str
        Named in the message.
    spots_in_tissue : int
        The section's spots on its tissue.
    tissue_um2 : float
        Its tissue area, µm².
    sigma_um : float
        ``truth.sigma_um``.
    min_spots_per_region : int
        ``truth.min_spots_per_region``.

    Returns
    -------
    str or None
    """
    disk_um2 = math.pi * (2.0 * sigma_um) ** 2
    mean_in_disk = spots_in_tissue / tissue_um2 * disk_um2 if tissue_um2 > 0 else 0.0
    if mean_in_disk >= min_spots_per_region:
        return None
    needed = math.sqrt(min_spots_per_region * tissue_um2 / max(spots_in_tissue, 1) / math.pi) / 2
    return (f"section {section}: too few spots for niches at truth.sigma_um = {sigma_um:g} µm: "
            f"{spots_in_tissue} spots on {tissue_um2:.4g} µm² of tissue, about "
            f"{mean_in_disk:.3g} within a {2 * sigma_um:g} µm radius disk on average, and a "
            f"niche needs truth.min_spots_per_region = {min_spots_per_region} there. Raise "
            f"truth.sigma_um to at least {math.ceil(needed)} µm, or check that the spot table "
            "is the whole panel of this section")


def _spots_per_niche(niches: Niches, k: int, sections: Sequence[int]) -> np.ndarray:
    counts = np.zeros(int(k), dtype=np.int64)
    for index in sections:
        own = niches.labels[index]
        counts += np.bincount(own[own >= 0], minlength=int(k))[: int(k)]
    return counts


def support_problem(niches: Niches, k: int, training: Sequence[int],
                    min_spots: int) -> str | None:
    """Why the spots cannot hold ``k`` niches (one message), else None.

    Every niche must exist and hold at least ``min_spots`` spots (``patches.min_per_class``)
    over all sections, or K is more than the data can support; and at least two niches must
    hold that many in the training sections, or there is nothing to learn. A niche of the test
    sections only is not a problem of K (:func:`untrained_niches`).

    Parameters
    ----------
    niches : Niches
        From :func:`joint_niches`.
    k : int
        The niches asked for.
    training : Sequence[int]
        Indices of the training sections in ``niches.labels``.
    min_spots : int
        Spots a niche needs.

    Returns
    -------
    str or None
    """
    overall = _spots_per_niche(niches, k, range(len(niches.labels)))
    in_training = _spots_per_niche(niches, k, training)
    found = int((overall > 0).sum())
    thin = [f"{niches.names[i]}: {int(overall[i])}" for i in range(int(k))
            if overall[i] < min_spots]
    if found < int(k) or thin:
        supported = int((overall >= min_spots).sum())
        return (f"niches: {k} is more than these spots support: the joint clustering found "
                f"{found} niche(s), and {len(thin)} hold fewer than patches.min_per_class = "
                f"{min_spots} spots over all sections ({'; '.join(thin) or 'none'}). Set "
                f"niches to at most {max(2, supported)} (the gene_candidates target ranks "
                "several K)")
    if int((in_training >= min_spots).sum()) < 2:
        return (f"niches: {k}: the training sections hold fewer than two of the niches with "
                f"at least patches.min_per_class = {min_spots} spots (spots per niche there: "
                + "; ".join(f"{n}: {int(c)}" for n, c in zip(niches.names, in_training))
                + "), so there is nothing to learn: the training sections lack the tissue the "
                "test sections hold. Add training sections that hold it")
    return None


def untrained_niches(niches: Niches, k: int, training: Sequence[int], min_spots: int,
                     sections: Sequence[str]) -> dict[str, str]:
    """The niches too rare in the training sections to learn, and where they are instead.

    Such a niche is tissue that the test sections hold and the training sections lack: it is
    left out of the models (rule centres) and its test pixels out of the Dice, said in the log,
    ``classes.json`` and the report, like background in a crop inside tissue.

    Parameters
    ----------
    niches : Niches
        From :func:`joint_niches`.
    k : int
        The number of niches.
    training : Sequence[int]
        Indices of the training sections.
    min_spots : int
        ``patches.min_per_class``.
    sections : Sequence[str]
        Every section's name, in ``niches.labels`` order.

    Returns
    -------
    dict[str, str]
        ``{niche label: why}``.
    """
    in_training = _spots_per_niche(niches, k, training)
    result = {}
    for i in np.flatnonzero(in_training < min_spots):
        where = ", ".join(f"{name} {niches.shares[s, i]:.0%}" for s, name in enumerate(sections)
                          if s not in training)
        result[niches.names[i]] = (
            f"{int(in_training[i])} of its spots in the training sections (fewer than "
            f"patches.min_per_class = {min_spots}); share of the test sections' spots: {where}: "
            "tissue the training sections lack, so it is not learnt")
    return result


def match_regions(niche_map: np.ndarray, regions: np.ndarray) -> dict[int, int]:
    """Each niche's label, matched to the known region it overlaps most (synthetic data).

    Niches are found without names; on data whose true regions are known (the demo), a niche
    is read as the region holding most of its pixels, so the niche map can be scored against
    them.

    Parameters
    ----------
    niche_map : np.ndarray
        (H, W) labels of :func:`niche_labels`.
    regions : np.ndarray
        (H, W) true labels (0 background, 1 tissue, 2 + i region i).

    Returns
    -------
    dict[int, int]
        ``{niche label: region label}`` for every label of ``niche_map`` (background and
        tissue keep theirs).
    """
    niche_map, regions = np.asarray(niche_map), np.asarray(regions)
    n_regions = int(regions.max()) + 1
    mapping = {0: 0, 1: 1}
    for label in np.unique(niche_map):
        if label >= 2:
            inside = regions[(niche_map == label) & (regions >= 1)]
            mapping[int(label)] = int(np.bincount(inside, minlength=n_regions).argmax()
                                      if inside.size else 1)
    return mapping
