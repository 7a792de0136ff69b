"""Which ``niches: K`` to propose: K expression niches checked and probed as a gene pair is.

Besides gene pairs (``txmorph.genes.choice``), rule ``gene_candidates`` proposes classes
that need no gene choice: K transcriptomic expression niches (``niches: K`` in place of
``genes:``, ``txmorph.niches``), for every K of ``NICHE_KS``:

1. **Niches.** One joint clustering of the spots of every training and test section
   (:func:`txmorph.niches.joint_niches`, in µm, at the pipeline's scale
   :func:`txmorph.niches.clustering_scale` of ``truth.sigma_um``, seeded by ``seed``), niches
   numbered by size and named by their enriched genes (``Niches.names``).
2. **Reference maps**: each section's niche map (:func:`txmorph.niches.niche_labels`: 0
   background, 1 tissue, 2 + i niche i, a partition of the tissue), from the pixels of each
   niche's spots (spots of no niche dropped).
3. **Usable** means the pipeline runs with ``niches: K``, by its own rules: every section
   dense enough for niches at this scale (:func:`txmorph.niches.scale_problem`), the K
   niches found and holding ``patches.min_per_class`` spots in the training sections
   (:func:`txmorph.niches.support_problem`), every niche with ``patches.min_per_class``
   patch-centre candidates in the training sections under ``patches.labels``
   (``txmorph.patches.sampling.sample_centres`` on the niche maps: its spots in tissue, or its
   area / ``AREA_PER_CANDIDATE_UM2``), and a non-empty niche region in every test section;
   and the same the other way round (test sections training), as for a pair: the niches
   being joint, only the counts and regions change sides.
4. **Probe** (``txmorph.genes.probe.probe_pair`` with ``n_classes = K + 2``): the DAPI
   baseline's hold-out Dice of every niche at once (one multinomial model, each training
   section cut into two halves that split the niches most evenly), corrected for chance per
   niche; a fold's score is the mean over the niches with a region in the training sections
   (NaN when one of them is not scored in that fold), the score the worse fold's: exactly a
   pair's score, over K classes instead of two. Every K is probed (a few K, about a second
   each), usable or not.

K are ranked as pairs are (:func:`rank_niches`): usable and scored by the score (3
decimals), usable unscored, not usable; ties to the smaller K.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from txmorph.baseline import FeatureSettings
from txmorph.genes.choice import (SWAP_ROLES, TABLE_COLUMNS, Section, Settings, empty_test_regions,
                                 probe_grids)
from txmorph.genes.probe import ProbeSection, probe_pair
from txmorph.niches import (Niches, clustering_scale, joint_niches, niche_classes, niche_labels,
                            scale_problem, support_problem)
from txmorph.patches.sampling import class_shortfalls, sample_centres, spot_pixels

#: The numbers of niches proposed.
NICHE_KS = (3, 4, 5, 6)
#: The columns of the niche table (:func:`choose_niches`), in order.
NICHE_COLUMNS = [
    "niches", "niche_names", "usable", "why_not",
    "probe_score", "probe_score_fold1", "probe_score_fold2",
    "probe_dice", "probe_dice_niches", "probe_score_niches", "probe_note",
    "niche_spots", "fewest_spots", "niche_fractions",
]
#: The columns of rule gene_candidates' table, pairs and niches in one (:func:`candidate_table`).
CANDIDATE_COLUMNS = ["kind", "gene_a", "gene_b", "niches", "niche_names", *TABLE_COLUMNS[2:],
                     "probe_dice_niches", "probe_score_niches", "niche_spots", "niche_fractions"]


@dataclass
class NicheChoice:
    """The ranking of the numbers of niches and the best usable one.

    Parameters
    ----------
    table : pd.DataFrame
        One row per K, best first (columns: :data:`NICHE_COLUMNS`).
    niches : dict[int, Niches]
        The joint niches per K (absent where the clustering failed).
    best : int or None
        The best usable K; None when none is usable.
    references : dict[str, np.ndarray]
        The best K's niche maps, per section.
    """

    table: pd.DataFrame
    niches: dict[int, Niches]
    best: int | None
    references: dict[str, np.ndarray] = field(default_factory=dict)


def spots_um(section: Section) -> pd.DataFrame:
    """A section's spots with ``x``, ``y`` in micrometres (pixels times the pixel size)."""
    return pd.DataFrame({"gene": section.spots["gene"].astype(str).to_numpy(),
                         "x": section.spots["x"].to_numpy(np.float64) * section.pixel_size_um,
                         "y": section.spots["y"].to_numpy(np.float64) * section.pixel_size_um})


def niche_spots(section: Section, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per niche class (``niche1`` ...), the (N, 2) x, y pixels of its spots in one section.

    Parameters
    ----------
    section : Section
        The section.
    labels : np.ndarray
        (N,) niche of each of its spots (``Niches.labels``), -1 for none (dropped).
    k : int
        Number of niches.

    Returns
    -------
    dict[str, np.ndarray]
        In class order.
    """
    return {name: section.all_xy[labels == i] for i, name in enumerate(niche_classes(k))}


def niche_references(sections: Sequence[Section], niches: Niches, k: int, settings: Settings
                     ) -> dict[str, np.ndarray]:
    """Each section's niche map (:func:`txmorph.niches.niche_labels`), by section name.

    Parameters
    ----------
    sections : Sequence[Section]
        The sections, in the order of ``niches.labels``.
    niches : Niches
        :func:`txmorph.niches.joint_niches` of their spots.
    k : int
        Number of niches.
    settings : Settings
        ``sigma_um``.

    Returns
    -------
    dict[str, np.ndarray]
        uint8 labels per section (0 background, 1 tissue, 2 + i niche i).
    """
    return {s.name: niche_labels(s.tissue, niche_spots(s, labels, k),
                                 s.sigma_px(settings.sigma_um))
            for s, labels in zip(sections, niches.labels)}


def scale_problems(sections: Sequence[Section], settings: Settings) -> list[str]:
    """Sections too sparse for niches at ``truth.sigma_um`` (any K), one message each.

    Parameters
    ----------
    sections : Sequence[Section]
        All sections.
    settings : Settings
        ``sigma_um`` and ``min_spots_per_region``.

    Returns
    -------
    list[str]
        :func:`txmorph.niches.scale_problem` of every section that has one.
    """
    problems = []
    for s in sections:
        pixels = spot_pixels(s.all_xy, s.tissue.shape)
        in_tissue = int(s.tissue[pixels[:, 0], pixels[:, 1]].sum()) if len(pixels) else 0
        problem = scale_problem(s.name, in_tissue, float(s.tissue.sum()) * s.pixel_size_um ** 2,
                                settings.sigma_um, settings.min_spots_per_region)
        if problem:
            problems.append(problem)
    return problems


def niche_problems(sections: Sequence[Section], niches: Niches, k: int,
                   references: Mapping[str, np.ndarray], settings: Settings) -> list[str]:
    """Why the pipeline could not run ``niches: k`` with these roles (empty: it can).

    The K niches must be found and hold enough spots in the training sections
    (:func:`txmorph.niches.support_problem`), every niche must have ``patches.min_per_class``
    patch-centre candidates in the training sections (``sample_centres``' counts under
    ``patches.labels``) and a non-empty region in every test section.

    Parameters
    ----------
    sections : Sequence[Section]
        All sections, in the order of ``niches.labels``.
    niches : Niches
        The joint niches.
    k : int
        Number of niches.
    references : Mapping[str, np.ndarray]
        :func:`niche_references`.
    settings : Settings
        ``labels``, ``min_per_class`` and ``seed``.

    Returns
    -------
    list[str]
        The problems, one line each.
    """
    names = niche_classes(k)
    train = [i for i, s in enumerate(sections) if s.role == "train"]
    problems = []
    support = support_problem(niches, k, train, settings.min_per_class)
    if support:
        problems.append(support.split(". Set niches")[0])
    available = []
    for index in train:
        s, labels = sections[index], niches.labels[index]
        sampled = sample_centres(references[s.name], niche_spots(s, labels, k),
                                 s.all_xy[labels < 0], per_class=1, pixel_size_um=s.pixel_size_um,
                                 rng=np.random.default_rng([settings.seed, index]),
                                 mode=settings.labels)
        available.append(sampled.available)
    short = class_shortfalls(available, names, settings.min_per_class,
                             [sections[i].name for i in train])
    problems += [f"{name}: only {total} candidate patch centres in the training sections "
                 f"({per_section}; patches.min_per_class = {settings.min_per_class})"
                 for name, (total, per_section) in short.items()]
    return problems + empty_test_regions(sections, references, names, "niche")


def rank_niches(table: pd.DataFrame) -> pd.DataFrame:
    """The K best first: usable and scored (by ``probe_score`` to 3 decimals), usable but
    not scored in both folds, not usable; ties to the smaller K.

    Parameters
    ----------
    table : pd.DataFrame
        With ``niches``, ``usable`` and ``probe_score``.

    Returns
    -------
    pd.DataFrame
        Sorted, with a fresh index.
    """
    if table.empty:
        return table.reset_index(drop=True)
    usable = table["usable"].astype(bool)
    group = np.select([usable & table["probe_score"].notna(), usable], [0, 1], 2)
    ranked = table.assign(_group=group, _probe=-table["probe_score"].round(3).fillna(0))
    ranked = ranked.sort_values(["_group", "_probe", "niches"], kind="stable")
    return ranked.drop(columns=["_group", "_probe"]).reset_index(drop=True)


def _numbers(values: Sequence[float], digits: int = 3) -> str:
    """Space-separated numbers, ``nan`` where not finite."""
    return " ".join(f"{v:.{digits}f}" if np.isfinite(v) else "nan" for v in values)


def probe_niches(sections: Sequence[Section], k: int, references: Mapping[str, np.ndarray],
                 probes: tuple[list[FeatureSettings], list[ProbeSection]], settings: Settings
                 ) -> dict[str, object]:
    """The probe's columns of one K (module docstring, step 4).

    Parameters
    ----------
    sections : Sequence[Section]
        All sections (the training ones are probed, in order).
    k : int
        Number of niches.
    references : Mapping[str, np.ndarray]
        :func:`niche_references`.
    probes : tuple[list[FeatureSettings], list[ProbeSection]]
        ``txmorph.genes.choice.probe_grids`` of the training sections.
    settings : Settings
        ``per_class`` and ``seed``.

    Returns
    -------
    dict[str, object]
        ``probe_score``, ``probe_score_fold1``/``_fold2``, ``probe_dice`` (mean raw Dice of the
        scored niches, NaN unless each has one), ``probe_dice_niches`` and
        ``probe_score_niches`` (per niche, fold means, as text) and ``probe_note``.
    """
    train = [s for s in sections if s.role == "train"]
    maps = [references[s.name] for s in train]
    names = niche_classes(k)
    present = [2 + i for i in range(k) if any((m == 2 + i).any() for m in maps)]
    notes = [f"{names[c - 2]}: no region in the training sections, not scored"
             for c in range(2, k + 2) if c not in present]
    if not present:
        return {"probe_note": "; ".join(notes)}
    feature_settings, grids = probes
    result = probe_pair(grids, maps, feature_settings[0], settings.per_class, settings.seed,
                        n_classes=k + 2, scored=present)
    dice, excess, folds = result["dice"], result["excess"], result["excess_folds"]
    for c in present:
        missing = [str(f + 1) for f in range(len(folds)) if not np.isfinite(folds[f, c])]
        if missing:
            notes.append(f"{names[c - 2]}: not scored in fold {' and '.join(missing)} (too small "
                         "or too local in the training sections for the hold-out)")
    return {"probe_score": round(result["score"], 4),
            "probe_score_fold1": round(float(result["fold_scores"][0]), 4),
            "probe_score_fold2": round(float(result["fold_scores"][1]), 4),
            "probe_dice": (round(float(dice[present].mean()), 4)
                           if np.isfinite(dice[present]).all() else np.nan),
            "probe_dice_niches": _numbers(dice[2:]), "probe_score_niches": _numbers(excess[2:]),
            "probe_note": "; ".join(notes)}


def choose_niches(sections: Sequence[Section], settings: Settings = Settings(),
                  ks: Sequence[int] = NICHE_KS,
                  probes: tuple[list[FeatureSettings], list[ProbeSection]] | None = None,
                  log: Callable[[str], None] = lambda message: None) -> NicheChoice:
    """Every K of ``ks`` clustered, checked and probed, best first (module docstring).

    Parameters
    ----------
    sections : Sequence[Section]
        Training and test sections.
    settings : Settings
        The pipeline's settings.
    ks : Sequence[int]
        The numbers of niches to propose (each >= 2).
    probes : tuple or None
        ``txmorph.genes.choice.probe_grids`` of the training sections, when already computed.
    log : Callable[[str], None]
        Progress messages.

    Returns
    -------
    NicheChoice
        Table columns (:data:`NICHE_COLUMNS`): ``niches`` (K), ``niche_names`` (``Niches.names``
        joined by ``; ``), ``usable`` and ``why_not``, the probe's (:func:`probe_niches`),
        ``niche_spots`` (per niche, its spots in the training tissue), ``fewest_spots`` (the
        fewest of a niche in the tissue of any section) and ``niche_fractions`` (per niche,
        its share of the tissue, mean over sections).

    Raises
    ------
    ValueError
        When no section is a training section.
    """
    train = [s for s in sections if s.role == "train"]
    if not train:
        raise ValueError("no training section")
    probes = probes or probe_grids(train, settings)
    bin_um, smoothing_um = clustering_scale(settings.sigma_um)
    tables = [spots_um(s) for s in sections]
    sparse = scale_problems(sections, settings)
    swapped = [dataclasses.replace(s, role=SWAP_ROLES.get(s.role, s.role)) for s in sections]
    rows, found, maps = [], {}, {}
    for k in ks:
        start = time.perf_counter()
        row: dict[str, object] = {"niches": int(k), "niche_names": "", "usable": False,
                                  "why_not": "", "probe_note": ""}
        try:
            niches = joint_niches(tables, int(k), bin_um, smoothing_um, settings.seed)
        except ValueError as error:  # e.g. fewer bins than niches
            rows.append(row | {"why_not": f"no {k} niches: {error}"})
            continue
        clustered = time.perf_counter() - start
        references = niche_references(sections, niches, int(k), settings)
        problems = sparse + niche_problems(sections, niches, int(k), references, settings)
        if not problems:
            problems = [f"the other way round (test sections training): {problem}" for problem in
                        niche_problems(swapped, niches, int(k), references, settings)]
        row |= probe_niches(sections, int(k), references, probes, settings)
        spots, fewest, fractions = [], None, []
        for i, name in enumerate(niche_classes(k)):
            per_section = [_in_tissue(s, niche_spots(s, labels, k)[name])
                           for s, labels in zip(sections, niches.labels)]
            spots.append(sum(n for n, s in zip(per_section, sections) if s.role == "train"))
            fewest = min(per_section) if fewest is None else min(fewest, *per_section)
            fractions.append(np.mean([(references[s.name] == 2 + i).sum()
                                      / max(int(s.tissue.sum()), 1) for s in sections]))
        row |= {"niche_names": "; ".join(niches.names), "usable": not problems,
                "why_not": "; ".join(problems), "niche_spots": " ".join(map(str, spots)),
                "fewest_spots": int(fewest or 0), "niche_fractions": _numbers(fractions)}
        rows.append(row)
        found[int(k)], maps[int(k)] = niches, references
        log(f"niches: {k}: {'usable' if not problems else 'not usable'}, probe score "
            f"{row.get('probe_score', np.nan):.3f}; clustering {clustered:.1f} s, maps, checks "
            f"and probe {time.perf_counter() - start - clustered:.1f} s; {row['niche_names']}")
    table = rank_niches(pd.DataFrame(rows, columns=NICHE_COLUMNS))
    best = int(table.at[0, "niches"]) if len(table) and bool(table.at[0, "usable"]) else None
    return NicheChoice(table=table, niches=found, best=best,
                       references=maps.get(best, {}) if best is not None else {})


def _in_tissue(section: Section, xy: np.ndarray) -> int:
    """Spots whose pixel (as the sampler clips it) lies in the section's tissue."""
    if not len(xy):
        return 0
    pixels = spot_pixels(xy, section.tissue.shape)
    return int(section.tissue[pixels[:, 0], pixels[:, 1]].sum())


def candidate_table(pairs: pd.DataFrame, niches: pd.DataFrame) -> pd.DataFrame:
    """Rule gene_candidates' table: the pairs (best first), then the K (best first), with a
    ``kind`` column (``pair`` / ``niches``); columns :data:`CANDIDATE_COLUMNS`.

    Parameters
    ----------
    pairs : pd.DataFrame
        ``Choice.table`` (``txmorph.genes.choice``).
    niches : pd.DataFrame
        ``NicheChoice.table``.

    Returns
    -------
    pd.DataFrame
        One table; ``niches`` and the spot counts as nullable integers (``niches`` empty for
        pairs, ``spots_a``/``_b`` for niches).
    """
    parts = [frame.assign(kind=kind) for frame, kind in ((pairs, "pair"), (niches, "niches"))
             if len(frame)]
    if not parts:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    table = pd.concat(parts, ignore_index=True).reindex(columns=CANDIDATE_COLUMNS)
    for column in ("niches", "spots_a", "spots_b", "fewest_spots"):  # integers, empty where none
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    table["usable"] = table["usable"].astype(bool)
    return table
