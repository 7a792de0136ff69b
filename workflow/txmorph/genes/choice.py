"""Which classes to learn: candidate genes and marker sets, checked and ranked by learnability.

A pair of classes (single genes, or marker sets whose spots form one class) is offered only
when it can run with the configured settings and is ranked by how well the DAPI image shows
it:

1. **Candidates.** Marker sets are spatial co-expression modules of the data: every gene with
   at least ``truth.min_spots_per_region`` spots in the training tissue (fewer cannot make a
   region anywhere) gets its share of all transcripts (its kernel density, ``truth.sigma_um``,
   over that of all spots: genes are not grouped merely because cells are denser somewhere)
   on a grid of sigma/4 over the tissue of the training sections; genes are clustered by
   average linkage on 1 - Pearson correlation of these shares and the tree is cut where the
   mean correlation between members falls below ``MODULE_MIN_CORRELATION`` = 0.5 (Cohen's
   "large" correlation, midway between unrelated and identical; the first value tried).
   Modules of at least two genes are candidates, named after their most abundant gene
   (``Gfap_set``), besides the ``max_genes`` single genes with the most spots (fewest over
   the sections), those that pass the checks below first.
2. **Reference regions** are the pipeline's (``txmorph.truth``): each candidate's threshold on
   its ``truth.quantity`` (spots per µm², or share of local transcripts) is fitted once on the
   pooled training sections (as rule ``reference`` does)
   and applied unchanged to every section, training and test: a test section holds as much of
   a class as passes the training threshold, never a region re-drawn on its own statistics.
   A class's threshold depends on its own spots alone, so the candidates are fitted together
   and a pair's thresholds are its two classes'.
3. **Usable** means the pipeline runs with it, by the pipeline's own rules: in the training
   sections enough patch-centre candidates for ``patches.min_per_class`` under
   ``patches.labels`` (``txmorph.patches.sampling.sample_centres`` and ``choose_classes`` on the pair's
   reference regions: spots in tissue, or region area / ``AREA_PER_CANDIDATE_UM2``), and in
   every test section evaluable (``txmorph.checks``: some disk of radius 2 sigma holds
   ``truth.min_spots_per_region`` of the class's spots on the DAPI tissue) with a non-empty
   reference region; and the same **the other way round** (thresholds fitted on the test
   sections, centres counted there, regions non-empty in the training ones: a pair must be
   learnable in either direction; spots only, no test image is looked at). What depends on
   one class alone is checked for every pair; the
   reference regions of a pair together (the class furthest above its threshold wins a pixel)
   only for the ``max_probed`` least overlapping pairs: the others are "not checked", never
   "usable".
4. **Overlap**: Dice of the two classes' own regions (each computed alone, as the truth rule
   does), mean over all sections; overlapping regions make the classes ambiguous by
   construction.
5. **Probe** (``txmorph.genes.probe``): the usable pairs among the ``max_probed`` least
   overlapping are ranked by ``probe_score``, the *worse* of the two hold-out folds (each
   training section cut in two, fitted on one half and scored on the other, then swapped;
   ``probe_score_fold1``/``_fold2``) of the mean over the two classes of the DAPI baseline's
   Dice corrected for chance: (Dice - c) / (1 - c), with c = 2fq/(f+q) the Dice of a guess
   that ignores the image (f the class's share of the held-out points, q that of its
   predictions), as Cohen's kappa corrects agreement: raw Dice grows with a region's area
   whatever the image shows (a guess at the right rate scores f), so it would rank large
   regions as learnable. The worse fold, not the mean: the pipeline learns on one part of
   the tissue and is scored on another, so a pair must be learnable in either direction. A
   fold that cannot score a class leaves the pair without a score: usable, but ranked after
   every pair scored in both folds. Ties (to 3 decimals) by overlap, then by the fewest spots.
   The raw Dice (fold means) is in the table too.

Nothing here is tuned to a dataset: the thresholds are the pipeline's own settings. What rule
``gene_candidates`` writes of a choice (the ``genes:`` block and the figure) is in
``txmorph.genes.report``. Over 400 lines through its documentation only (about 300 of
code): the five steps above share their sections, settings and reference regions.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from txmorph.baseline import FeatureSettings
from txmorph.checks import densest_disk_count, spots_in_mask
from txmorph.classes import class_names
from txmorph.errors import InputError
from txmorph.genes.probe import ProbeSection, prepare_section, probe_pair
from txmorph.patches.sampling import choose_classes, sample_centres, spot_pixels
from txmorph.truth import fit_thresholds, gene_regions, truth_labels

#: Genes whose densities correlate less than this on average do not form a module.
MODULE_MIN_CORRELATION = 0.5
#: At most this many grid bins per gene enter the correlations (an even stride).
MODULE_MAX_BINS = 50_000
#: The columns of the ranking table (:func:`choose_genes`), in order.
TABLE_COLUMNS = [
    "gene_a", "gene_b", "genes_a", "genes_b", "usable", "why_not",
    "probe_score", "probe_score_fold1", "probe_score_fold2",
    "probe_dice", "probe_dice_a", "probe_dice_b", "probe_note",
    "overlap_dice", "spots_a", "spots_b", "fewest_spots",
    "region_a_fraction", "region_b_fraction",
]


@dataclass
class Section:
    """One section as the pipeline sees it: its pixel grid, tissue, DAPI tissue and spots.

    Parameters
    ----------
    name : str
        The section's name.
    role : str
        ``train`` or ``test``.
    tissue : np.ndarray
        bool, the pipeline's tissue mask (``results/masks/{section}.tif``).
    dapi : np.ndarray
        bool, the DAPI mask the input checks use.
    spots : pd.DataFrame
        ``gene``, ``x``, ``y`` in pixels.
    pixel_size_um : float
        µm per pixel.
    image : np.ndarray or None
        The DAPI image (training sections: for the probe).
    """

    name: str
    role: str  # "train" or "test"
    tissue: np.ndarray  # bool, the pipeline's tissue mask (results/masks/{section}.tif)
    dapi: np.ndarray  # bool, the DAPI mask the input checks use
    spots: pd.DataFrame  # gene, x, y in pixels
    pixel_size_um: float
    image: np.ndarray | None = None  # the DAPI image (training sections: for the probe)

    @cached_property
    def _by_gene(self) -> dict[str, np.ndarray]:
        codes, names = pd.factorize(self.spots["gene"].astype(str))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        xy = self.spots[["x", "y"]].to_numpy(np.float64)[order]
        return {str(name): xy[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}

    @cached_property
    def all_xy(self) -> np.ndarray:
        """(N, 2) float64 x, y pixels of every spot (all genes): the shares' denominator."""
        return self.spots[["x", "y"]].to_numpy(np.float64)

    def sigma_px(self, sigma_um: float) -> float:
        """``sigma_um`` in this section's pixels."""
        return sigma_um / self.pixel_size_um

    def xy(self, genes: Sequence[str]) -> np.ndarray:
        """(N, 2) x, y pixels of the spots of ``genes``.

        Parameters
        ----------
        genes : Sequence[str]
            Genes; those without spots add nothing.

        Returns
        -------
        np.ndarray
            (N, 2) float64 x, y, gene by gene.
        """
        parts = [self._by_gene[g] for g in genes if g in self._by_gene]
        return np.concatenate(parts) if parts else np.zeros((0, 2))


#: The roles of the other direction (rule gene_candidates checks a pair both ways round).
SWAP_ROLES = {"train": "test", "test": "train"}


@dataclass(frozen=True)
class Settings:
    """The pipeline settings the choice must agree with (config keys in comments).

    Parameters
    ----------
    quantity, sigma_um, rule, enrichment, min_spots_per_region
        ``truth.*``: how reference regions are drawn.
    labels, per_class, min_per_class
        ``patches.*``: how patch centres are placed and how many a class needs.
    seed : int
        ``seed``.
    windows : tuple[int, ...]
        The baseline's windows (from the patch sizes).
    nucleus_diameter_um : float
        The baseline's nucleus.
    probe_stride : int
        The finest CNN map's stride (px).
    max_genes, max_probed : int
        Most single-gene candidates, and most pairs probed.
    """

    quantity: str = "density"  # truth.quantity
    sigma_um: float = 15.0  # truth.sigma_um
    rule: str = "otsu"  # truth.rule
    enrichment: float = 2.0  # truth.enrichment
    min_spots_per_region: int = 10  # truth.min_spots_per_region
    labels: str = "spots"  # patches.labels
    per_class: int = 1000  # patches.per_class
    min_per_class: int = 50  # patches.min_per_class
    seed: int = 0  # seed
    windows: tuple[int, ...] = (32, 96, 160)  # the baseline's windows (patch sizes)
    nucleus_diameter_um: float = 8.0  # the baseline's nucleus
    probe_stride: int = 4  # the finest CNN map's stride (px)
    max_genes: int = 40
    max_probed: int = 40


@dataclass
class Choice:
    """The ranking of the candidate pairs and the best usable pair.

    Parameters
    ----------
    table : pd.DataFrame
        One row per pair, best first (columns: :func:`choose_genes`).
    candidates : dict[str, list[str]]
        Class name -> genes.
    best : dict[str, list[str]] or None
        The best usable pair, ``{class: genes}``; None when none is usable.
    references : dict[str, np.ndarray]
        The best pair's reference labels, per section.
    thresholds : dict[str, float]
        Each candidate's threshold, fitted on the training sections (``inf``: no region).
    """
    table: pd.DataFrame  # one row per pair, best first
    candidates: dict[str, list[str]]  # class name -> genes
    best: dict[str, list[str]] | None  # the best usable pair, {class: genes}
    references: dict[str, np.ndarray] = field(default_factory=dict)  # best pair, per section
    thresholds: dict[str, float] = field(default_factory=dict)  # per candidate


def _gene_counts(sections: Sequence[Section]) -> pd.Series:
    """Spots per gene over the sections."""
    return pd.concat([s.spots["gene"].astype(str).value_counts() for s in sections]
                     ).groupby(level=0).sum()


def _in_tissue(xy: np.ndarray, mask: np.ndarray) -> int:
    """Spots whose pixel (as the sampler clips it) lies in ``mask``."""
    pixels = spot_pixels(xy, mask.shape)
    return int(mask[pixels[:, 0], pixels[:, 1]].sum())


def gene_modules(sections: Sequence[Section], genes: Sequence[str], sigma_um: float,
                 min_correlation: float = MODULE_MIN_CORRELATION) -> dict[str, list[str]]:
    """Spatial co-expression modules (>= 2 genes) of ``genes`` over the sections' tissue.

    Each gene's share of all transcripts (its kernel density over that of all spots; Gaussian
    kernel, sigma = ``sigma_um``) on a grid of sigma/4 px over the tissue of every section,
    concatenated; average-linkage clusters on 1 - correlation, cut at 1 - ``min_correlation``.

    Parameters
    ----------
    sections : Sequence[Section]
        The sections whose tissue is used.
    genes : Sequence[str]
        The genes to group.
    sigma_um : float
        Kernel sigma.
    min_correlation : float
        Least mean correlation within a module.

    Returns
    -------
    dict[str, list[str]]
        Modules named after the gene with the most spots (``X_set``), genes ordered by spots;
        modules ordered by their spots.
    """
    genes = list(genes)
    if len(genes) < 2:
        return {}
    columns = []
    for s in sections:
        sigma = sigma_um / s.pixel_size_um
        b = max(1, int(sigma // 4))
        shape = (-(-s.tissue.shape[0] // b), -(-s.tissue.shape[1] // b))
        centres = np.minimum(np.arange(shape[0]) * b + b // 2, s.tissue.shape[0] - 1)
        inside = s.tissue[np.ix_(centres, np.minimum(np.arange(shape[1]) * b + b // 2,
                                                     s.tissue.shape[1] - 1))]
        keep = np.flatnonzero(inside.ravel())
        keep = keep[:: max(1, -(-len(keep) * len(sections) // MODULE_MAX_BINS))]
        def density(xy: np.ndarray) -> np.ndarray:
            at = spot_pixels(xy, s.tissue.shape) // b
            counts = np.zeros(shape, np.float32)
            np.add.at(counts, (at[:, 0], at[:, 1]), 1.0)
            return ndimage.gaussian_filter(counts, sigma / b, mode="constant").ravel()[keep]

        total = density(s.spots[["x", "y"]].to_numpy(np.float64))
        total = np.where(total > 0, total, np.inf)
        columns.append(np.array([density(s.xy([gene])) / total for gene in genes]))
    corr = np.nan_to_num(np.corrcoef(np.concatenate(columns, axis=1)), nan=0.0)
    distance = np.clip(1.0 - corr, 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    cluster = fcluster(tree, t=1.0 - min_correlation, criterion="distance")
    spots = _gene_counts(sections)
    modules = []
    for k in np.unique(cluster):
        members = sorted((genes[i] for i in np.flatnonzero(cluster == k)),
                         key=lambda g: (-spots.get(g, 0), g))
        if len(members) >= 2:
            modules.append(members)
    modules.sort(key=lambda m: (-sum(spots.get(g, 0) for g in m), m[0]))
    return {f"{m[0]}_set": m for m in modules}


def class_facts(sections: Sequence[Section], genes: Sequence[str], settings: Settings
                ) -> dict[str, object]:
    """What one class (its genes' spots) gives alone: training spots in tissue, per test
    section the densest 2-sigma disk on the DAPI tissue, and the reasons it cannot run.

    Parameters
    ----------
    sections : Sequence[Section]
        All sections.
    genes : Sequence[str]
        The class's genes.
    settings : Settings
        The pipeline's settings.

    Returns
    -------
    dict[str, object]
        ``train_spots``, ``fewest_spots``, ``disks`` (per test section) and ``reasons``.
    """
    train_spots, fewest, disks, reasons = 0, None, {}, []
    for s in sections:
        xy = s.xy(genes)
        in_tissue = _in_tissue(xy, s.tissue)
        fewest = in_tissue if fewest is None else min(fewest, in_tissue)
        if s.role == "train":
            train_spots += in_tissue
        else:
            on_dapi = spots_in_mask(xy[:, 0], xy[:, 1], s.dapi) if len(xy) else np.zeros(0, bool)
            disks[s.name] = densest_disk_count(xy[on_dapi], 2 * settings.sigma_um / s.pixel_size_um)
            if disks[s.name] < settings.min_spots_per_region or not s.dapi.any():
                reasons.append(f"at most {disks[s.name]} spots in a 2-sigma disk in test section "
                               f"{s.name} (truth.min_spots_per_region = "
                               f"{settings.min_spots_per_region}): not evaluable")
    if settings.labels == "spots" and train_spots < settings.min_per_class:
        reasons.append(f"{train_spots} spots in the training tissue (patches.min_per_class = "
                       f"{settings.min_per_class})")
    return {"train_spots": train_spots, "fewest_spots": fewest or 0, "disks": disks,
            "reasons": reasons}


def fit_candidate_thresholds(sections: Sequence[Section], candidates: Mapping[str, Sequence[str]],
                             settings: Settings) -> dict[str, float]:
    """Each candidate's threshold, fitted on the pooled training sections only, as rule
    ``reference`` fits a config's classes (``txmorph.truth.fit_thresholds``).

    Parameters
    ----------
    sections : Sequence[Section]
        All sections; only the training ones are used.
    candidates : Mapping[str, Sequence[str]]
        Class name -> genes.
    settings : Settings
        ``quantity``, ``sigma_um``, ``rule`` and ``enrichment``.

    Returns
    -------
    dict[str, float]
        ``{class: threshold}`` (``inf``: no contrast in the training sections, no region).
    """
    fitted = [(s.tissue, {n: s.xy(g) for n, g in candidates.items()}, s.all_xy,
               s.sigma_px(settings.sigma_um), s.pixel_size_um)
              for s in sections if s.role == "train"]
    thresholds, _ = fit_thresholds(fitted, settings.rule, settings.enrichment, settings.quantity)
    return thresholds


def own_regions(section: Section, candidates: Mapping[str, Sequence[str]],
                thresholds: Mapping[str, float], settings: Settings) -> dict[str, np.ndarray]:
    """Each candidate's region in one section, drawn alone (no other class competes for its
    pixels), by the training thresholds.

    Parameters
    ----------
    section : Section
        Any section (training or test).
    candidates : Mapping[str, Sequence[str]]
        Class name -> genes.
    thresholds : Mapping[str, float]
        :func:`fit_candidate_thresholds`.
    settings : Settings
        ``sigma_um``.

    Returns
    -------
    dict[str, np.ndarray]
        bool ``(H, W)`` region per candidate.
    """
    sigma = section.sigma_px(settings.sigma_um)
    return {name: gene_regions(section.tissue, {name: section.xy(genes)}, section.all_xy, sigma,
                               {name: thresholds[name]}, quantity=settings.quantity,
                               pixel_size_um=section.pixel_size_um)[name]
            for name, genes in candidates.items()}


def pair_references(sections: Sequence[Section], pair: Mapping[str, Sequence[str]],
                    thresholds: Mapping[str, float], settings: Settings
                    ) -> dict[str, np.ndarray]:
    """Each section's reference labels of a pair, as rule truth draws them: the training
    thresholds of its two classes applied unchanged to every section.

    Parameters
    ----------
    sections : Sequence[Section]
        All sections.
    pair : Mapping[str, Sequence[str]]
        The two classes, ``{name: genes}``.
    thresholds : Mapping[str, float]
        :func:`fit_candidate_thresholds` (at least the pair's classes).
    settings : Settings
        ``sigma_um``.

    Returns
    -------
    dict[str, np.ndarray]
        uint8 labels per section (0 background, 1 tissue, 2 and 3 the classes).
    """
    own = {n: thresholds[n] for n in pair}
    return {s.name: truth_labels(s.tissue, {n: s.xy(g) for n, g in pair.items()}, s.all_xy,
                                 s.sigma_px(settings.sigma_um), own,
                                 quantity=settings.quantity, pixel_size_um=s.pixel_size_um)
            for s in sections}


def pair_problems(sections: Sequence[Section], pair: Mapping[str, Sequence[str]],
                  references: Mapping[str, np.ndarray], settings: Settings) -> list[str]:
    """Why the pipeline could not run a pair (empty: it can), by the sampler's own counts
    (``sample_centres``, ``choose_classes``) and the test sections' reference regions.

    Parameters
    ----------
    sections : Sequence[Section]
        All sections.
    pair : Mapping[str, Sequence[str]]
        The two classes, ``{name: genes}``.
    references : Mapping[str, np.ndarray]
        :func:`pair_references` of the pair.
    settings : Settings
        The pipeline's settings.

    Returns
    -------
    list[str]
        The problems, one line each.
    """
    problems, available, names = [], [], class_names(list(pair))
    chosen = [g for genes in pair.values() for g in genes]
    train = [s for s in sections if s.role == "train"]
    for index, s in enumerate(train):
        other = s.spots.loc[~s.spots["gene"].isin(chosen), ["x", "y"]].to_numpy(np.float64)
        sampled = sample_centres(references[s.name], {n: s.xy(g) for n, g in pair.items()},
                                 other, per_class=1, pixel_size_um=s.pixel_size_um,
                                 rng=np.random.default_rng([settings.seed, index]),
                                 mode=settings.labels)
        available.append(sampled.available)
    try:
        choose_classes(available, names, settings.min_per_class, [s.name for s in train])
    except InputError as error:
        problems.append(str(error).split(". Check")[0])
    return problems + empty_test_regions(sections, references, list(pair), "reference")


def empty_test_regions(sections: Sequence[Section], references: Mapping[str, np.ndarray],
                       names: Sequence[str], region: str) -> list[str]:
    """One line per class without a region in a test section (class i is label 2 + i).

    Parameters
    ----------
    sections : Sequence[Section]
        All sections; only the test ones are looked at.
    references : Mapping[str, np.ndarray]
        Per section name, its reference labels.
    names : Sequence[str]
        The classes after background and tissue, in label order.
    region : str
        What the region is called in the line (``reference``, ``niche``).

    Returns
    -------
    list[str]
        ``"<class>: empty <region> region in test section <name>"``, in section order.
    """
    return [f"{name}: empty {region} region in test section {s.name}"
            for s in sections if s.role == "test"
            for i, name in enumerate(names) if not (references[s.name] == 2 + i).any()]


def rank_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """The pairs best first: usable and scored by the probe (by ``probe_score``, the worse
    fold's, to 3 decimals), usable but not scored in both folds, not checked, not usable;
    ties by ``overlap_dice`` (lower first), then ``fewest_spots`` (more first).

    Parameters
    ----------
    table : pd.DataFrame
        With ``usable``, ``why_not``, ``probe_score``, ``overlap_dice``, ``fewest_spots``.

    Returns
    -------
    pd.DataFrame
        Sorted, with a fresh index.
    """
    if table.empty:
        return table.reset_index(drop=True)
    group = np.select([table["usable"] & table["probe_score"].notna(), table["usable"],
                       table["why_not"].str.startswith("not checked")], [0, 1, 2], 3)
    ranked = table.assign(_group=group, _probe=-table["probe_score"].round(3).fillna(0))
    ranked = ranked.sort_values(["_group", "_probe", "overlap_dice", "fewest_spots"],
                                ascending=[True, True, True, False], kind="stable")
    return ranked.drop(columns=["_group", "_probe"]).reset_index(drop=True)


def probe_grids(train: Sequence[Section], settings: Settings
                ) -> tuple[list[FeatureSettings], list[ProbeSection]]:
    """The probe's feature settings and grids of the training sections, computed once and
    shared by every pair (and by the niche candidates, ``txmorph.genes.niche_choice``).

    Parameters
    ----------
    train : Sequence[Section]
        The training sections (with their images).
    settings : Settings
        ``windows``, ``nucleus_diameter_um`` and ``probe_stride``.

    Returns
    -------
    tuple[list[FeatureSettings], list[ProbeSection]]
        Per training section, the baseline's settings and the probe grid.
    """
    feature_settings = [FeatureSettings(tuple(int(w) for w in settings.windows),
                                        settings.nucleus_diameter_um / s.pixel_size_um)
                        for s in train]
    return feature_settings, [prepare_section(s.image, fs, settings.probe_stride)
                              for s, fs in zip(train, feature_settings)]


def choose_genes(sections: Sequence[Section], settings: Settings = Settings(),
                 log: Callable[[str], None] = lambda message: None,
                 probes: tuple[list[FeatureSettings], list[ProbeSection]] | None = None
                 ) -> Choice:
    """Candidates, their pairs checked, overlapped and probed, best first (module docstring).

    Parameters
    ----------
    sections : Sequence[Section]
        Training and test sections.
    settings : Settings
        The pipeline's settings.
    log : Callable[[str], None]
        Progress messages.
    probes : tuple or None
        :func:`probe_grids` of the training sections, when already computed.

    Returns
    -------
    Choice
        Table columns: ``gene_a``/``gene_b`` the class names (a gene, or a marker set's name),
        ``genes_a``/``genes_b`` their genes; ``usable`` and ``why_not``; ``probe_score`` (the
        ranking key: the worse of ``probe_score_fold1``/``_fold2``, each the mean
        chance-corrected hold-out Dice of the two classes in that fold; NaN unless both folds
        score both classes), ``probe_dice`` (mean of the raw ``probe_dice_a``/``_b``, each
        averaged over the folds) and ``probe_note`` (why a class was not scored in a fold);
        ``overlap_dice``; ``spots_a``/``_b`` in the training tissue, ``fewest_spots`` in the
        tissue of any section; ``region_a_fraction``/``_b`` of the tissue (mean over
        sections). ``thresholds``: each candidate's, fitted on the training sections.

    Raises
    ------
    ValueError
        When no section is a training section.
    InputError
        When fewer than two classes have enough spots to be candidates.
    """
    train = [s for s in sections if s.role == "train"]
    if not train:
        raise ValueError("no training section")
    # Every gene with enough spots for one region in the training tissue.
    totals = _gene_counts(train)
    tissue_spots = {}
    for gene in totals[totals >= settings.min_spots_per_region].index:
        tissue_spots[str(gene)] = sum(_in_tissue(s.xy([gene]), s.tissue) for s in train)
    pool = sorted((g for g, n in tissue_spots.items() if n >= settings.min_spots_per_region),
                  key=lambda g: (-tissue_spots[g], g))
    modules = gene_modules(train, pool, settings.sigma_um)
    log(f"{len(pool)} genes with >= {settings.min_spots_per_region} spots in the training "
        f"tissue; {len(modules)} modules: "
        + "; ".join(f"{n} ({len(g)}: {', '.join(g[:6])}{', ...' if len(g) > 6 else ''})"
                    for n, g in modules.items()))
    facts = {g: class_facts(sections, [g], settings) for g in pool}
    singles = sorted(pool, key=lambda g: (bool(facts[g]["reasons"]),
                                          -facts[g]["fewest_spots"], g))[: settings.max_genes]
    candidates = {g: [g] for g in singles} | modules
    facts |= {n: class_facts(sections, g, settings) for n, g in modules.items()}
    if len(candidates) < 2:
        raise InputError(f"gene_candidates: fewer than two candidate classes: only {len(pool)} "
                         f"genes have >= {settings.min_spots_per_region} spots in the training "
                         "tissue. Use larger or more training sections, or lower "
                         f"truth.min_spots_per_region (now {settings.min_spots_per_region}).")

    # One definition per class, fitted on the training sections only and applied unchanged to
    # every section (as rules reference and truth do).
    thresholds = fit_candidate_thresholds(sections, candidates, settings)
    # The other way round (the test sections training, the training ones tested): a pair must
    # run in either direction, so its classes must be learnable from the test sections' spots
    # too. Only spots: no test image is looked at, and the probe stays on the training ones.
    swapped = [dataclasses.replace(s, role=SWAP_ROLES.get(s.role, s.role)) for s in sections]
    reverse = (fit_candidate_thresholds(swapped, candidates, settings)
               if any(s.role == "train" for s in swapped) else None)
    # Each candidate's own region per section: tissue fraction, and a sigma/4 grid for overlaps.
    fraction, grids, empty_in_test = {}, [], {n: [] for n in candidates}
    for s in sections:
        step = max(1, int(s.sigma_px(settings.sigma_um) // 4))
        tissue = max(int(s.tissue.sum()), 1)
        grid = {}
        for name, region in own_regions(s, candidates, thresholds, settings).items():
            fraction.setdefault(name, []).append(region.sum() / tissue)
            grid[name] = region[::step, ::step].ravel()
            if s.role == "test" and not region.any():
                empty_in_test[name].append(s.name)
        grids.append(np.array([grid[n] for n in candidates], np.float32))
    names = list(candidates)
    overlap = np.zeros((len(names), len(names)))
    for g in grids:
        inter, size = g @ g.T, g.sum(axis=1)
        total = size[:, None] + size[None, :]
        overlap += np.where(total > 0, 2 * inter / np.maximum(total, 1), 0.0) / len(grids)

    rows = []
    for i, j in itertools.combinations(range(len(names)), 2):
        a, b = names[i], names[j]
        if set(candidates[a]) & set(candidates[b]):
            continue
        reasons = [f"{n}: {r}" for n in (a, b) for r in facts[n]["reasons"]]
        reasons += [f"{n}: empty region in test section {t}" for n in (a, b)
                    for t in empty_in_test[n]]
        rows.append({
            "gene_a": a, "gene_b": b,
            "genes_a": " ".join(candidates[a]), "genes_b": " ".join(candidates[b]),
            "usable": False, "why_not": "; ".join(reasons),
            "probe_score": np.nan, "probe_score_fold1": np.nan, "probe_score_fold2": np.nan,
            "probe_dice": np.nan, "probe_dice_a": np.nan, "probe_dice_b": np.nan,
            "probe_note": "",
            "overlap_dice": round(float(overlap[i, j]), 4),
            "spots_a": facts[a]["train_spots"], "spots_b": facts[b]["train_spots"],
            "fewest_spots": min(facts[a]["fewest_spots"], facts[b]["fewest_spots"]),
            "region_a_fraction": round(float(np.mean(fraction[a])), 4),
            "region_b_fraction": round(float(np.mean(fraction[b])), 4),
        })
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS).sort_values(
        ["overlap_dice", "fewest_spots"], ascending=[True, False], kind="stable")

    # The least overlapping pairs that pass alone: checked together, then probed.
    feature_settings, probe_sections = probes or probe_grids(train, settings)
    passing = table.index[table["why_not"] == ""]
    for index in passing[: settings.max_probed]:
        pair = {table.at[index, c]: candidates[table.at[index, c]] for c in ("gene_a", "gene_b")}
        references = pair_references(sections, pair, thresholds, settings)
        problems = pair_problems(sections, pair, references, settings)
        if reverse is not None and not problems:
            problems = [f"the other way round (test sections training): {problem}" for problem in
                        pair_problems(swapped, pair,
                                      pair_references(swapped, pair, reverse, settings), settings)]
        if problems:
            table.at[index, "why_not"] = "; ".join(problems)
            continue
        table.at[index, "usable"] = True
        result = probe_pair(probe_sections, [references[s.name] for s in train],
                            feature_settings[0], settings.per_class, settings.seed)
        dice = result["dice"]
        table.loc[index, ["probe_dice_a", "probe_dice_b"]] = np.round(dice[2:4], 4)
        if np.isfinite(dice[2:4]).all():
            table.at[index, "probe_dice"] = round(float(dice[2:4].mean()), 4)
        table.loc[index, ["probe_score_fold1", "probe_score_fold2"]] = np.round(
            result["fold_scores"], 4)
        table.at[index, "probe_score"] = round(result["score"], 4)
        table.at[index, "probe_note"] = _probe_note(pair, references, train,
                                                    result["excess_folds"])
    for index in passing[settings.max_probed:]:
        table.at[index, "why_not"] = (f"not checked: beyond the {settings.max_probed} least "
                                      "overlapping pairs that pass alone")

    table = rank_pairs(table)
    best = None
    references = {}
    if len(table) and bool(table.at[0, "usable"]):
        best = {table.at[0, c]: candidates[table.at[0, c]] for c in ("gene_a", "gene_b")}
        references = pair_references(sections, best, thresholds, settings)
    return Choice(table=table, candidates=candidates, best=best, references=references,
                  thresholds=thresholds)


def _probe_note(pair: Mapping[str, Sequence[str]], references: Mapping[str, np.ndarray],
                train: Sequence[Section], excess_folds: np.ndarray) -> str:
    """Why the probe did not score a class in a fold (empty: it scored both in both)."""
    notes = []
    for k, name in enumerate(pair):
        missing = [str(f + 1) for f in range(len(excess_folds))
                   if not np.isfinite(excess_folds[f, 2 + k])]
        if not missing:
            continue
        if not any((references[s.name] == 2 + k).any() for s in train):
            notes.append(f"{name}: no reference region in the training sections")
        else:
            notes.append(f"{name}: not scored in fold {' and '.join(missing)} (too small or too "
                         "local in the training sections for the hold-out)")
    return "; ".join(notes)
