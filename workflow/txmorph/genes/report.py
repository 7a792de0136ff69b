"""What rule ``gene_candidates`` shows of a gene choice (``txmorph.genes.choice``): the best pair
as a ``genes:`` block to paste into a config, and a figure of the pair's regions and the
ranking. Kept apart from the choice itself, which is science (checks, probe), not output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from txmorph.genes.choice import Choice, Section


def yaml_snippet(choice: Choice, header: str = "") -> str:
    """The best usable pair as a ``genes:`` block to paste into a config: a list of two genes,
    or marker sets ``{name: [genes]}`` when either class is a set (a single gene as its own
    set).

    Parameters
    ----------
    choice : Choice
        The ranking from ``txmorph.genes.choice.choose_genes``.
    header : str
        Lines written first, as YAML comments.

    Returns
    -------
    str
        The commented YAML (only comments when no pair is usable).
    """
    import yaml

    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if choice.best is None:
        lines.append("# No usable pair: see why_not in gene_candidates.csv.")
        return "\n".join(lines) + "\n"
    row = choice.table.iloc[0]
    lines.append(f"# probe score {row.probe_score:.3f}, Dice {row.probe_dice:.3f} ({row.gene_a} "
                 f"{row.probe_dice_a:.3f}, {row.gene_b} {row.probe_dice_b:.3f}), region overlap "
                 f"{row.overlap_dice:.3f}, training spots {row.spots_a} and {row.spots_b}")
    if all(genes == [name] for name, genes in choice.best.items()):
        genes: object = list(choice.best)
    else:
        genes = {name: list(g) for name, g in choice.best.items()}
    body = yaml.safe_dump({"genes": genes}, default_flow_style=None, sort_keys=False, width=10**6)
    return "\n".join(lines) + "\n" + body


def plot_choice(images: Mapping[str, np.ndarray], sections: Sequence[Section], choice: Choice,
                path: str) -> None:
    """Each section's DAPI with the best pair's reference regions (contours) and spots, beside
    the top of the ranking.

    Parameters
    ----------
    images : Mapping[str, np.ndarray]
        The DAPI image of each section, by name.
    sections : Sequence[Section]
        The sections the choice was made on.
    choice : Choice
        The ranking and the best pair's reference regions.
    path : str
        The PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sections) + 1, figsize=(5 * (len(sections) + 1), 5.5),
                             gridspec_kw={"width_ratios": [1] * len(sections) + [1.6]})
    colours = ("tab:orange", "tab:cyan")
    for ax, s in zip(axes, sections):
        image = images[s.name]
        low, high = np.percentile(image, [1, 99.5])
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        for k, (name, genes) in enumerate((choice.best or {}).items()):
            ax.contour(choice.references[s.name] == 2 + k, levels=[0.5], colors=[colours[k]],
                       linewidths=1.2)
            xy = s.xy(genes)
            label = name if len(genes) == 1 else f"{name} ({len(genes)} genes)"
            ax.scatter(xy[:, 0], xy[:, 1], s=1, c=colours[k], alpha=0.5,
                       label=f"{label}: {len(xy)}")
        ax.set_title(f"{s.role} section {s.name}")
        if choice.best:
            ax.legend(loc="lower right", fontsize=8, markerscale=6)
        ax.set_axis_off()
    lines = [f"{'class A':>14} {'class B':>14} {'score':>5} {'Dice':>5} {'ovl':>5} {'spots':>11}"]
    for r in choice.table.head(15).itertuples():
        probe = (f"{r.probe_score:5.3f} {r.probe_dice:5.3f}" if np.isfinite(r.probe_score)
                 else "  -     -  ")
        lines.append(f"{r.gene_a[:14]:>14} {r.gene_b[:14]:>14} {probe} {r.overlap_dice:5.3f} "
                     f"{r.spots_a:>5},{r.spots_b:>5}" + ("" if r.usable else " *"))
    shown = set(choice.table.head(15)[["gene_a", "gene_b"]].to_numpy().ravel())
    for name, genes in choice.candidates.items():
        if len(genes) > 1 and name in shown:
            lines.append(f"{name}: {' '.join(genes[:8])}{' ...' if len(genes) > 8 else ''}")
    axes[-1].text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top")
    axes[-1].set_title("best pairs: hold-out Dice of the DAPI baseline (score: corrected for "
                       "chance)\n(ovl: region overlap; * not usable or not checked)", fontsize=9)
    axes[-1].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
