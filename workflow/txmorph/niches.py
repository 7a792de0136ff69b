"""Expression niches: regions whose local mix of all transcripts differs, found jointly.

Issue 20's classes without a gene choice: Points2Regions (Andersson et al., Cytometry A 2024;
the ``points2regions`` package) bins every section's spots at ``bin_um``, smooths each bin's
gene composition at ``sigma_um`` and clusters the bins by k-means; with one ``datasetid`` per
section the sections are clustered jointly, so niche k is one kind of tissue in every section.
Niches are numbered by size (niche1 holds the most spots over all sections, so the names do not
depend on k-means' arbitrary order) and named by their most enriched genes.

Not yet wired into the pipeline (issue 20 carries on): this module is the clustering and the
naming, on spot tables in micrometres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Genes named per niche.
TOP_GENES = 3
#: A gene names a niche only with at least this many of its spots there: a plain enrichment
#: ratio would name niches after rare genes (a handful of spots, all in one niche).
MIN_SPOTS_TO_NAME = 20
#: Pseudocount of the enrichment ratio, for the same reason.
PSEUDOCOUNT = 5.0


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


def joint_niches(spots: Sequence[pd.DataFrame], k: int, bin_um: float, sigma_um: float,
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
    sigma_um : float
        Smoothing of the bins' gene composition, in µm.
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

    if int(k) < 2:
        raise ValueError(f"niches: K must be at least 2, got {k}")
    if not (bin_um > 0 and sigma_um > 0):
        raise ValueError(f"niche bin {bin_um} µm and smoothing {sigma_um} µm must be positive")
    sizes = [len(table) for table in spots]
    if sum(sizes) == 0:
        raise ValueError("no spots to find niches in")
    table = pd.concat([t[["gene", "x", "y"]] for t in spots], ignore_index=True)
    section = np.repeat(np.arange(len(spots)), sizes)
    model = Points2Regions(table[["x", "y"]].to_numpy(np.float64), table["gene"].to_numpy(),
                           pixel_width=float(bin_um), pixel_smoothing=float(sigma_um) / bin_um,
                           datasetids=section.astype(str))
    raw = np.asarray(model.fit_predict(num_clusters=int(k), output="marker", seed=int(seed)),
                     dtype=np.int64)
    labels = _by_size(raw, int(k))
    top_genes = niche_genes(table["gene"].to_numpy(), labels, int(k))
    names = [f"niche{i + 1} ({', '.join(genes)})" if genes else f"niche{i + 1}"
             for i, genes in enumerate(top_genes)]
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
    """Per niche, the genes most enriched in it (pseudocounted ratio of shares, enough spots).

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
        ratio = ((counts + PSEUDOCOUNT) / inside.size) / (
            (overall[counts.index] + PSEUDOCOUNT) / genes.size)
        ratio = ratio[counts >= MIN_SPOTS_TO_NAME]
        ranked = sorted(ratio.items(), key=lambda item: (-item[1], item[0]))
        result.append([gene for gene, _ in ranked[:top]])
    return result
