"""Which two genes to learn: rank gene pairs by spot counts and spatial separation.

A gene is a good class when the model can see where it is expressed: it needs enough spots in
every section (patches are cut around them) and an expression *region* (the same regions the
truth rule scores against, ``txmorph.truth.gene_regions``) that is neither a speck nor the
whole tissue. A pair is good when the two regions overlap little, since overlapping regions
make the two classes ambiguous by construction. Nothing here is tuned to a dataset: the
thresholds are the truth rule's own and the ranking is by overlap, then by spot count.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from txmorph.metrics import dice_scores
from txmorph.truth import gene_regions

# A region covering less than this fraction of the tissue is too small to learn, more than
# the other fraction is not a region but the tissue.
MIN_REGION_FRACTION = 0.02
MAX_REGION_FRACTION = 0.7


def candidate_genes(counts: Sequence[pd.Series], min_spots: int, max_genes: int) -> list[str]:
    """Genes with at least ``min_spots`` spots in every section, most spots (minimum) first."""
    table = pd.concat(list(counts), axis=1).fillna(0)
    least = table.min(axis=1)
    least = least[least >= min_spots].sort_values(ascending=False, kind="stable")
    return [str(g) for g in least.index[:max_genes]]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean regions (0 when both are empty)."""
    score = dice_scores(a.astype(np.uint8), b.astype(np.uint8), 2)[1]
    return 0.0 if np.isnan(score) else float(score)


def rank_gene_pairs(
    sections: Sequence[tuple[np.ndarray, pd.DataFrame]],
    sigma_px: Sequence[float],
    min_spots: int,
    max_genes: int = 40,
    rule: str = "otsu",
    enrichment: float = 2.0,
) -> tuple[pd.DataFrame, list[dict[str, np.ndarray]]]:
    """Gene pairs ranked best first, and each section's gene regions.

    ``sections`` are (tissue_mask, spots) per section, spots with ``gene``, ``x``, ``y`` in
    pixels of the mask; ``sigma_px`` is each section's kernel width (the truth rule's). The
    table has per pair: the spot counts (minimum over sections), the regions' tissue fractions
    (mean over sections), their overlap (Dice, mean over sections) and ``usable`` (both
    regions sized within [MIN_REGION_FRACTION, MAX_REGION_FRACTION] in every section).
    """
    counts = [spots["gene"].value_counts() for _, spots in sections]
    genes = candidate_genes(counts, min_spots, max_genes)
    if len(genes) < 2:
        best = pd.concat(counts, axis=1).fillna(0).min(axis=1).sort_values(ascending=False)
        raise ValueError(
            f"fewer than two genes have >= {min_spots} spots in every section; the best are "
            + ", ".join(f"{g} ({int(n)})" for g, n in best.head(5).items())
        )
    regions, fractions = [], []
    for (mask, spots), sigma in zip(sections, sigma_px):
        # One gene at a time: together, gene_regions would give overlaps to the stronger gene.
        found = {}
        for gene in genes:
            xy = spots.loc[spots["gene"] == gene, ["x", "y"]].to_numpy(np.float64)
            found[gene] = gene_regions(mask.astype(bool), {gene: xy}, sigma, rule, enrichment)[gene]
        regions.append(found)
        tissue = max(int(mask.sum()), 1)
        fractions.append({g: float(found[g].sum()) / tissue for g in genes})
    rows = []
    for a, b in itertools.combinations(genes, 2):
        fa = [f[a] for f in fractions]
        fb = [f[b] for f in fractions]
        usable = all(MIN_REGION_FRACTION <= f <= MAX_REGION_FRACTION for f in fa + fb)
        rows.append({
            "gene_a": a, "gene_b": b,
            "spots_a": int(min(c.get(a, 0) for c in counts)),
            "spots_b": int(min(c.get(b, 0) for c in counts)),
            "region_a_fraction": round(float(np.mean(fa)), 4),
            "region_b_fraction": round(float(np.mean(fb)), 4),
            "overlap_dice": round(float(np.mean([_dice(r[a], r[b]) for r in regions])), 4),
            "usable": usable,
        })
    table = pd.DataFrame(rows)
    table["fewest_spots"] = table[["spots_a", "spots_b"]].min(axis=1)
    table = table.sort_values(["usable", "overlap_dice", "fewest_spots"],
                              ascending=[False, True, False], kind="stable")
    return table.drop(columns="fewest_spots").reset_index(drop=True), regions


def plot_gene_pair(
    images: Mapping[str, np.ndarray], regions: Mapping[str, dict[str, np.ndarray]],
    spots: Mapping[str, pd.DataFrame], pair: tuple[str, str], table: pd.DataFrame, path: str,
) -> None:
    """Each section's DAPI with the pair's regions and spots, beside the top of the ranking."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(images)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(5 * (len(names) + 1), 5),
                             gridspec_kw={"width_ratios": [1] * len(names) + [1.1]})
    colours = ("tab:orange", "tab:cyan")
    for ax, name in zip(axes, names):
        image = images[name]
        low, high = np.percentile(image, [1, 99.5])
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        for gene, colour in zip(pair, colours):
            ax.contour(regions[name][gene], levels=[0.5], colors=[colour], linewidths=1.2)
            xy = spots[name].loc[spots[name]["gene"] == gene, ["x", "y"]].to_numpy()
            ax.scatter(xy[:, 0], xy[:, 1], s=1, c=colour, alpha=0.5, label=f"{gene} ({len(xy)})")
        ax.set_title(f"section {name}")
        ax.legend(loc="lower right", fontsize=8, markerscale=6)
        ax.set_axis_off()
    top = table.head(12)
    lines = [f"{'gene A':>10} {'gene B':>10} {'spots':>11} {'overlap':>7}"]
    lines += [f"{r.gene_a:>10} {r.gene_b:>10} {r.spots_a:>5},{r.spots_b:>5} {r.overlap_dice:7.3f}"
              + ("" if r.usable else " *") for r in top.itertuples()]
    axes[-1].text(0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top")
    axes[-1].set_title("best pairs (fewest spots per section; * region too small/large)",
                       fontsize=9)
    axes[-1].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
