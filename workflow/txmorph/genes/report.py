"""What rule ``gene_candidates`` shows of a gene choice (``txmorph.genes.choice``): the best pair
as a ``genes:`` block to paste into a config, and a figure of the pair's regions and the
ranking; when no pair is usable, what blocked them and what to do instead
(:func:`no_pair_advice`), and the best usable ``niches: K`` (``txmorph.genes.niche_choice``) as
the block to paste instead. Kept apart from the choice itself, which is science (checks, probe),
not output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from txmorph.genes.choice import Choice, Section, Settings
from txmorph.genes.niche_choice import NicheChoice

#: What blocks a pair, by the words of its ``why_not`` (``txmorph.genes.choice``): the words,
#: the setting they point to, what the reason says, and a template of what to do instead.
BLOCKERS: tuple[tuple[str, str, str, str], ...] = (
    ("truth.min_spots_per_region", "truth.min_spots_per_region",
     "a class too sparse to be evaluated in a test section",
     "lower truth.min_spots_per_region (now {min_spots_per_region}), use a coarser "
     "truth.sigma_um (now {sigma_um:g} µm: a 2-sigma disk then holds more spots), larger test "
     "sections, or marker sets of your own (genes: {{name: [genes]}}) that pool co-expressed "
     "genes"),
    ("patches.min_per_class", "patches.min_per_class",
     "too few patch centres of a class in the training sections",
     "lower patches.min_per_class (now {min_per_class}), use larger or more training "
     "sections, or marker sets of your own (genes: {{name: [genes]}}) that pool co-expressed "
     "genes"),
    ("empty", "truth.sigma_um",
     "a class without a reference region in a test section, by the training sections' "
     "threshold",
     "use a coarser truth.sigma_um (now {sigma_um:g} µm), marker sets of your own (genes: "
     "{{name: [genes]}}), or test sections that hold both classes"),
)


def blocking_settings(table: pd.DataFrame) -> list[tuple[str, int, int, str, str]]:
    """What blocked the pairs that are not usable, the setting named by most pairs first.

    A pair counts for every setting of :data:`BLOCKERS` that its ``why_not`` names, and as
    blocked by that setting *alone* when it names no other. Pairs not checked (beyond
    ``max_probed``) passed every check of a class alone and are not counted.

    Parameters
    ----------
    table : pd.DataFrame
        ``choice.table`` (``usable``, ``why_not``).

    Returns
    -------
    list[tuple[str, int, int, str, str]]
        ``(setting, pairs naming it, pairs naming only it, what the reason says, what to do)``
        per setting named at least once (the template unformatted).
    """
    named: dict[str, int] = {}
    alone: dict[str, int] = {}
    for why in table.loc[~table["usable"].astype(bool), "why_not"].astype(str):
        if why.startswith("not checked"):
            continue
        found = {setting for words, setting, _, _ in BLOCKERS if words in why}
        for setting in found:
            named[setting] = named.get(setting, 0) + 1
            alone[setting] = alone.get(setting, 0) + (len(found) == 1)
    return [(setting, named[setting], alone[setting], what, todo)
            for _, setting, what, todo in sorted(
                BLOCKERS, key=lambda b: (-named.get(b[1], 0), -alone.get(b[1], 0)))
            if setting in named]


def no_pair_advice(table: pd.DataFrame, settings: Settings) -> str:
    """Why no pair is usable and what to do instead: one line per blocking setting, the one
    named by most pairs first (empty when a pair is usable).

    Parameters
    ----------
    table : pd.DataFrame
        ``choice.table``.
    settings : Settings
        The settings the choice was made with (their values are quoted).

    Returns
    -------
    str
        Lines of text.
    """
    if len(table) and table["usable"].astype(bool).any():
        return ""
    if not len(table):
        return ("No usable pair: there are no two candidate classes without a gene in common. "
                "Use a spot table with more genes, or lower truth.min_spots_per_region (now "
                f"{settings.min_spots_per_region}).")
    values = {"min_spots_per_region": settings.min_spots_per_region,
              "sigma_um": settings.sigma_um, "min_per_class": settings.min_per_class}
    blockers = blocking_settings(table)
    lines = [f"No usable pair among the {len(table)} candidate pairs with these settings."]
    for setting, n, only, what, todo in blockers:
        lines.append(f"{setting} blocked {n} pairs ({only} by it alone): {what}. What to do: "
                     f"{todo.format(**values)}.")
    if blockers:
        lines.append(f"Start with {blockers[0][0]}, then run gene_candidates again (why_not in "
                     "gene_candidates.csv says what fails for each pair).")
    else:
        lines.append("See why_not in gene_candidates.csv for what fails for each pair.")
    return "\n".join(lines)


def _short(why_not: str, most: int = 2) -> str:
    """The first ``most`` reasons of a ``why_not``, without their parentheses."""
    while True:
        shorter = re.sub(r" ?\([^()]*\)", "", why_not)
        if shorter == why_not:
            break
        why_not = shorter
    return ", ".join(reason.split(": the joint clustering")[0]
                     for reason in why_not.split("; ")[:most])


def niche_line(niches: NicheChoice) -> str:
    """One line on the best usable ``niches: K`` (its score and niches), or on why none is.

    Parameters
    ----------
    niches : NicheChoice
        ``txmorph.genes.niche_choice.choose_niches``.

    Returns
    -------
    str
        The line (empty without any K).
    """
    table = niches.table
    if not len(table):
        return ""
    if niches.best is None:
        reasons = "; ".join(f"{int(r.niches)}: {_short(str(r.why_not))}"
                            for r in table.sort_values("niches").itertuples())
        return (f"No niches: K of {', '.join(str(int(k)) for k in sorted(table['niches']))} is "
                f"usable with these sections ({reasons}; why_not in gene_candidates.csv).")
    row = table.iloc[0]

    def number(value: float) -> str:
        return f"{value:.3f}" if np.isfinite(value) else "none"

    return (f"niches: {niches.best} (expression niches in place of genes), probe score "
            f"{number(row.probe_score)} "
            f"(the worse fold: {number(row.probe_score_fold1)} and "
            f"{number(row.probe_score_fold2)}), Dice {number(row.probe_dice)}: "
            f"{row.niche_names}")


def yaml_snippet(choice: Choice, header: str = "", advice: str = "",
                 niches: NicheChoice | None = None) -> str:
    """The best usable pair as a ``genes:`` block to paste into a config: a list of two genes,
    or marker sets ``{name: [genes]}`` when either class is a set (a single gene as its own
    set). With ``niches``, a comment names the best usable ``niches: K`` (or says why no K is
    usable); when no pair is usable, that K is the snippet instead (``niches: K``, to replace
    ``genes:``).

    Parameters
    ----------
    choice : Choice
        The ranking from ``txmorph.genes.choice.choose_genes``.
    header : str
        Lines written first, as YAML comments.
    advice : str
        When no pair is usable, what to do instead (:func:`no_pair_advice`), as comments.
    niches : NicheChoice or None
        The ranking from ``txmorph.genes.niche_choice.choose_niches``.

    Returns
    -------
    str
        The commented YAML (only comments when neither a pair nor a K is usable).
    """
    import yaml

    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    about_niches = niche_line(niches) if niches is not None else ""
    if choice.best is None:
        lines += [f"# {line}" for line in advice.splitlines()] or [
            "# No usable pair: see why_not in gene_candidates.csv."]
        if about_niches:
            lines.append(f"# {about_niches}")
        if niches is not None and niches.best is not None:
            lines.append("# Expression niches need no gene choice: remove genes: from the "
                         "config and set")
            return "\n".join(lines) + "\n" + yaml.safe_dump({"niches": int(niches.best)})
        return "\n".join(lines) + "\n"
    row = choice.table.iloc[0]
    lines.append(f"# probe score {row.probe_score:.3f} (the worse fold: {row.probe_score_fold1:.3f}"
                 f" and {row.probe_score_fold2:.3f}), Dice {row.probe_dice:.3f} ({row.gene_a} "
                 f"{row.probe_dice_a:.3f}, {row.gene_b} {row.probe_dice_b:.3f}), region overlap "
                 f"{row.overlap_dice:.3f}, training spots {row.spots_a} and {row.spots_b}")
    if about_niches:
        lines.append(f"# Or, without a gene choice: {about_niches}" if niches.best is not None
                     else f"# {about_niches}")
    if all(genes == [name] for name, genes in choice.best.items()):
        genes: object = list(choice.best)
    else:
        genes = {name: list(g) for name, g in choice.best.items()}
    body = yaml.safe_dump({"genes": genes}, default_flow_style=None, sort_keys=False, width=10**6)
    return "\n".join(lines) + "\n" + body


def plot_choice(images: Mapping[str, np.ndarray], sections: Sequence[Section], choice: Choice,
                path: str, advice: str = "", niches: NicheChoice | None = None) -> None:
    """Each section's DAPI with the best pair's reference regions (contours) and spots, beside
    the top of the ranking (and, when no pair is usable, what to do instead; with ``niches``,
    their rows below the pairs').

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
    advice : str
        :func:`no_pair_advice`, shown above the ranking when no pair is usable.
    niches : NicheChoice or None
        ``txmorph.genes.niche_choice.choose_niches``: one line per K under the pairs.
    """
    import textwrap

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
    lines = [line for paragraph in advice.splitlines() if choice.best is None
             for line in textwrap.wrap(paragraph, 78) + [""]]
    lines.append(f"{'class A':>14} {'class B':>14} {'score':>5} {'fold1':>5} {'fold2':>5} "
                 f"{'Dice':>5} {'ovl':>5} {'spots':>11}")

    def number(value: float) -> str:
        return f"{value:5.3f}" if np.isfinite(value) else "  -  "

    for r in choice.table.head(15).itertuples():
        probe = " ".join(number(v) for v in (r.probe_score, r.probe_score_fold1,
                                             r.probe_score_fold2, r.probe_dice))
        lines.append(f"{r.gene_a[:14]:>14} {r.gene_b[:14]:>14} {probe} {r.overlap_dice:5.3f} "
                     f"{r.spots_a:>5},{r.spots_b:>5}" + ("" if r.usable else " *"))
    if niches is not None and len(niches.table):
        lines.append("")
        for r in niches.table.itertuples():
            probe = " ".join(number(v) for v in (r.probe_score, r.probe_score_fold1,
                                                 r.probe_score_fold2, r.probe_dice))
            lines.append(f"{'niches: ' + str(int(r.niches)):>29} {probe}"
                         + ("" if r.usable else "             *"))
        lines.append("")
    shown = set(choice.table.head(15)[["gene_a", "gene_b"]].to_numpy().ravel())
    for name, genes in choice.candidates.items():
        if len(genes) > 1 and name in shown:
            lines.append(f"{name}: {' '.join(genes[:8])}{' ...' if len(genes) > 8 else ''}")
    axes[-1].text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top")
    axes[-1].set_title("best pairs: hold-out Dice of the DAPI baseline corrected for chance, "
                       "per fold\n(score: the worse fold; ovl: region overlap; * not usable or "
                       "not checked)", fontsize=9)
    axes[-1].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
