"""gene_candidates: candidates and modules, usable by the pipeline's rules, ranked by the probe."""

from __future__ import annotations

import json
import runpy
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from conftest import REPO
from txmorph.errors import InputError
from txmorph.genes.choice import (
    TABLE_COLUMNS,
    Choice,
    Section,
    Settings,
    choose_genes,
    fit_candidate_thresholds,
    gene_modules,
    own_regions,
    rank_pairs,
)
from txmorph.genes.probe import pair_score
from txmorph.genes.report import blocking_settings, no_pair_advice, plot_choice, yaml_snippet
from txmorph.outputs import write_label_tiff
from txmorph.patches.sampling import AREA_PER_CANDIDATE_UM2

SHAPE = (240, 360)  # rows, cols; 1 µm per pixel
# Small windows, sigma and thresholds for a small section; the pipeline passes its config.
SETTINGS = Settings(sigma_um=8.0, min_spots_per_region=5, per_class=300, min_per_class=30,
                    windows=(9, 17), nucleus_diameter_um=4.0, probe_stride=4, max_genes=50,
                    max_probed=20)


def _image(rng: np.random.Generator) -> np.ndarray:
    """Two textures in horizontal bands: bright, busy nuclei on top (rows < 80), dim and
    sparse at the bottom (rows >= 160), medium in between."""
    image = np.full(SHAPE, 0.3) + 0.02 * rng.standard_normal(SHAPE)
    rows = np.arange(SHAPE[0])[:, None]
    for top, count, bright in ((0, 900, 1.0), (80, 250, 0.6), (160, 60, 0.4)):
        r = rng.integers(top, top + 80, count)
        c = rng.integers(0, SHAPE[1], count)
        for y, x in zip(r, c):
            image[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = bright
    image[rows.ravel() < 80] += 0.2
    return (image * 1000).astype(np.uint16)


def _uniform(rng, gene, n, rows, cols) -> pd.DataFrame:
    return pd.DataFrame({"gene": gene, "x": rng.uniform(*cols, n), "y": rng.uniform(*rows, n)})


def _disk(rng, gene, n, centre, radius) -> pd.DataFrame:
    angle, r = rng.uniform(0, 2 * np.pi, n), radius * np.sqrt(rng.uniform(0, 1, n))
    return pd.DataFrame({"gene": gene, "x": centre[1] + r * np.cos(angle),
                         "y": centre[0] + r * np.sin(angle)})


def _section(name: str, role: str, seed: int) -> Section:
    rng = np.random.default_rng(seed)
    parts = [
        # A module following the top texture, another the bottom one.
        *(_uniform(rng, g, 300, (0, 80), (0, 360)) for g in ("T1a", "T1b", "T1c")),
        *(_uniform(rng, g, 300, (160, 240), (0, 360)) for g in ("T2a", "T2b")),
        # Two genes in disks placed regardless of the texture (each spans all three bands).
        _disk(rng, "Rand1", 300, (120, 90), 75), _disk(rng, "Rand2", 300, (120, 270), 75),
        _uniform(rng, "Everywhere", 3000, (0, 240), (0, 360)),
    ]
    if role == "train":
        parts += [_disk(rng, "Sparse", 12, (200, 330), 10),   # too few for min_per_class
                  _disk(rng, "Diffuse", 200, (40, 180), 15),  # plenty to train on ...
                  _disk(rng, "Small", 200, (120, 180), 20)]   # a small region
    else:
        parts += [_disk(rng, "Sparse", 60, (200, 330), 10),
                  _uniform(rng, "Diffuse", 40, (0, 240), (0, 360)),  # ... too sparse to score
                  _disk(rng, "Small", 200, (120, 180), 20)]
    spots = pd.concat(parts, ignore_index=True)
    tissue = np.ones(SHAPE, bool)
    return Section(name=name, role=role, tissue=tissue, dapi=tissue, spots=spots,
                   pixel_size_um=1.0, image=_image(rng) if role == "train" else None)


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    return [_section("train", "train", 0), _section("test", "test", 1)]


@pytest.fixture(scope="module")
def choice(sections) -> Choice:
    return choose_genes(sections, SETTINGS)


def _row(table: pd.DataFrame, a: str, b: str) -> pd.Series:
    hit = table[((table.gene_a == a) & (table.gene_b == b))
                | ((table.gene_a == b) & (table.gene_b == a))]
    assert len(hit) == 1, (a, b)
    return hit.iloc[0]


def test_modules_group_colocated_genes(sections) -> None:
    genes = ["T1a", "T1b", "T1c", "T2a", "T2b", "Rand1", "Rand2", "Everywhere"]
    modules = gene_modules(sections[:1], genes, SETTINGS.sigma_um)
    found = sorted(sorted(m) for m in modules.values())
    assert found == [["T1a", "T1b", "T1c"], ["T2a", "T2b"]]
    assert set(modules) == {"T1a_set", "T2a_set"}


def test_probe_ranks_learnable_pair_above_unlearnable(choice) -> None:
    table = choice.table
    learnable = _row(table, "T1a", "T2a")
    unlearnable = _row(table, "Rand1", "Rand2")
    assert learnable.usable and unlearnable.usable
    assert learnable.probe_dice > 0.7 > unlearnable.probe_dice + 0.2
    assert learnable.probe_score > 0.6 > unlearnable.probe_score + 0.3
    assert learnable.name < unlearnable.name  # ranked above
    # Modules are candidates and pair like genes; the best pair follows the texture.
    assert {"T1a_set", "T2a_set"} <= set(choice.candidates)
    best = set(choice.best)
    assert best & {"T1a", "T1b", "T1c", "T1a_set"} and best & {"T2a", "T2b", "T2a_set"}
    assert table.iloc[0].probe_score == table["probe_score"].max()
    # The key is the worse fold, both folds are in the table.
    scored = table[table.probe_score.notna()]
    assert len(scored) > 10
    worse = scored[["probe_score_fold1", "probe_score_fold2"]].min(axis=1)
    assert np.allclose(scored.probe_score, worse)
    assert list(table.columns) == TABLE_COLUMNS


def test_usable_agrees_with_sampler_and_checks(choice, sections) -> None:
    table = choice.table
    sparse = _row(table, "Sparse", "T2a")
    assert not sparse.usable
    assert "Sparse: 12 spots in the training tissue (patches.min_per_class = 30)" in sparse.why_not
    diffuse = _row(table, "Diffuse", "T2a")
    assert not diffuse.usable
    assert "Diffuse: at most" in diffuse.why_not and "not evaluable" in diffuse.why_not
    assert "test section test" in diffuse.why_not
    # Spots mode: a small region is fine (its spots are the centres); regions mode: its area
    # (~1500 µm²) holds fewer than min_per_class candidates, as the sampler counts them.
    assert _row(table, "Small", "T2a").usable
    few = [replace(s, spots=s.spots[s.spots.gene.isin(["Small", "T1a", "T2a", "Everywhere"])])
           for s in sections]
    min_per_class = int(3000 / AREA_PER_CANDIDATE_UM2)
    regions = choose_genes(few, replace(SETTINGS, labels="regions",
                                        min_per_class=min_per_class)).table
    small = _row(regions, "Small", "T2a")
    assert not small.usable and "class 'Small' has only" in small.why_not
    assert _row(regions, "T1a", "T2a").usable
    # Never usable without a probe of both classes or a check: usable rows have no reason.
    assert (table.loc[table.usable, "why_not"] == "").all()


def test_snippet_and_figure(choice, sections, tmp_path) -> None:
    text = yaml_snippet(choice, "made by a test")
    assert text.startswith("# made by a test\n# probe score")
    assert "(the worse fold: " in text
    genes = yaml.safe_load(text)["genes"]
    assert genes == list(choice.best) or genes == choice.best
    # A set and a gene: the set form, the gene as a set of its own.
    table = choice.table
    mixed = table[(table.gene_a.str.endswith("_set") ^ table.gene_b.str.endswith("_set"))
                  & table.usable].iloc[0]
    pair = {mixed.gene_a: choice.candidates[mixed.gene_a],
            mixed.gene_b: choice.candidates[mixed.gene_b]}
    other = Choice(table=table.loc[[mixed.name]].reset_index(drop=True),
                   candidates=choice.candidates, best=pair)
    assert yaml.safe_load(yaml_snippet(other))["genes"] == pair
    none = Choice(table=table, candidates=choice.candidates, best=None)
    assert "No usable pair" in yaml_snippet(none) and yaml.safe_load(yaml_snippet(none)) is None
    path = tmp_path / "choice.png"
    plot_choice({s.name: s.image if s.image is not None else np.zeros(SHAPE) for s in sections},
                sections, choice, str(path))
    assert path.stat().st_size > 1000


def test_too_few_genes_is_explained(sections) -> None:
    with pytest.raises(InputError, match="fewer than two candidate classes.*lower truth"):
        choose_genes(sections, replace(SETTINGS, min_spots_per_region=100_000))


# --- Class definitions: fitted on the training sections, applied unchanged ------------------


def _two_genes(name: str, role: str, seed: int, x_cols: tuple[int, int] | None) -> Section:
    """Gene ``Bg`` everywhere; gene ``X`` uniform over columns ``x_cols`` at one density (per
    area), i.e. at the same share of local transcripts wherever it is."""
    rng = np.random.default_rng(seed)
    parts = [_uniform(rng, "Bg", 4000, (0, 240), (0, 360))]
    if x_cols is not None:
        parts.append(_uniform(rng, "X", int(1500 * (x_cols[1] - x_cols[0]) / 180), (0, 240),
                              x_cols))
    tissue = np.ones(SHAPE, bool)
    return Section(name=name, role=role, tissue=tissue, dapi=tissue,
                   spots=pd.concat(parts, ignore_index=True), pixel_size_um=1.0)


def test_thresholds_are_fitted_on_training_sections_only(choice, sections) -> None:
    """X covers the left half of the training section. A test section holding it over a
    quarter gets that quarter, one holding it everywhere gets all of it: the training
    threshold, not one re-fitted on the test section (which would split the flat share of
    the second one in its noise)."""
    train = _two_genes("train", "train", 0, (0, 180))
    half = _two_genes("half", "test", 2, (0, 90))
    everywhere = _two_genes("all", "test", 1, (0, 360))
    candidates = {"X": ["X"], "Bg": ["Bg"]}
    thresholds = fit_candidate_thresholds([train, half, everywhere], candidates, SETTINGS)
    assert thresholds == fit_candidate_thresholds([train], candidates, SETTINGS)
    assert np.isfinite(thresholds["X"])
    region = own_regions(train, candidates, thresholds, SETTINGS)["X"]
    assert region[:, :170].mean() > 0.98 and region[:, 190:].mean() < 0.02
    region = own_regions(half, candidates, thresholds, SETTINGS)["X"]
    assert region[:, :80].mean() > 0.98 and region[:, 100:].mean() < 0.02
    assert own_regions(everywhere, candidates, thresholds, SETTINGS)["X"].mean() > 0.98
    refitted = fit_candidate_thresholds([replace(everywhere, role="train")], candidates,
                                        SETTINGS)
    assert own_regions(everywhere, candidates, refitted, SETTINGS)["X"].mean() < 0.8
    # The choice keeps the training sections' thresholds, whatever the test sections hold.
    assert choice.thresholds == fit_candidate_thresholds(sections[:1], choice.candidates,
                                                         SETTINGS)


# --- Ranking by the worse fold ----------------------------------------------------------


def _ranked_row(a: str, b: str, excess_folds, usable: bool = True) -> dict:
    fold_scores, score = pair_score(np.asarray(excess_folds, dtype=float))
    return {**dict.fromkeys(TABLE_COLUMNS, np.nan), "gene_a": a, "gene_b": b,
            "usable": usable, "why_not": "" if usable else "B: 3 spots",
            "probe_score": score, "probe_score_fold1": fold_scores[0],
            "probe_score_fold2": fold_scores[1], "overlap_dice": 0.0, "fewest_spots": 100}


def test_ranking_by_the_worse_fold() -> None:
    """A pair strong in one fold and weak in the other ranks below one moderate in both (the
    mean of the folds would rank it first); one that a fold cannot score ranks after both."""
    lopsided = _ranked_row("Strong", "Weak", [[0.95, 0.85], [0.15, 0.25]])  # folds 0.9, 0.2
    even = _ranked_row("Mid1", "Mid2", [[0.5, 0.5], [0.45, 0.55]])  # folds 0.5, 0.5
    unscored = _ranked_row("Big", "Local", [[0.9, 0.9], [np.nan, 0.9]])
    unusable = _ranked_row("Few", "Other", [[0.9, 0.9], [0.9, 0.9]], usable=False)
    assert lopsided["probe_score"] == pytest.approx(0.2)
    assert even["probe_score"] == pytest.approx(0.5)
    assert np.isnan(unscored["probe_score"]) and unscored["probe_score_fold1"] == 0.9
    table = pd.DataFrame([unusable, unscored, lopsided, even], columns=TABLE_COLUMNS)
    ranked = rank_pairs(table)
    assert list(ranked.gene_a) == ["Mid1", "Strong", "Big", "Few"]
    fold_mean = table[["probe_score_fold1", "probe_score_fold2"]].mean(axis=1)
    assert fold_mean[2] > fold_mean[3]  # what the mean would have said
    assert rank_pairs(table.iloc[:0]).empty


# --- No usable pair ---------------------------------------------------------------------


def test_no_usable_pair_gives_advice(choice, sections, tmp_path) -> None:
    assert no_pair_advice(choice.table, SETTINGS) == ""  # a usable pair: no advice
    settings = replace(SETTINGS, min_per_class=100_000)
    choice = choose_genes(sections, settings)
    assert choice.best is None and not choice.table.usable.any() and not choice.references
    blockers = blocking_settings(choice.table)
    assert blockers[0][0] == "patches.min_per_class"
    assert blockers[0][1] == len(choice.table)  # every pair names it
    advice = no_pair_advice(choice.table, settings)
    first, second = advice.splitlines()[:2]
    assert first.startswith("No usable pair among the")
    assert second.startswith("patches.min_per_class blocked")
    assert "lower patches.min_per_class (now 100000)" in second
    assert "truth.min_spots_per_region blocked" in advice  # Diffuse, sparse in the test
    assert "Start with patches.min_per_class" in advice
    text = yaml_snippet(choice, "header", advice)
    assert "# No usable pair" in text and "# patches.min_per_class blocked" in text
    assert yaml.safe_load(text) is None
    path = tmp_path / "none.png"
    plot_choice({s.name: np.zeros(SHAPE) for s in sections}, sections, choice, str(path), advice)
    assert path.stat().st_size > 1000


def test_rule_script_without_usable_pair_succeeds(sections, tmp_path) -> None:
    """The rule's script on canonical files: no usable pair still writes its three outputs,
    with the advice in the .yaml and the log, and returns normally (exit 0)."""
    inputs = {"images": [], "image_info": [], "masks": [], "spots": []}
    for s in sections:
        folder = tmp_path / s.name
        folder.mkdir()
        image = s.image if s.image is not None else np.zeros(SHAPE, np.uint16)
        tifffile.imwrite(folder / "image.tif", image)
        (folder / "image.json").write_text(json.dumps({"pixel_size_um": s.pixel_size_um,
                                                       "shape": list(SHAPE)}))
        write_label_tiff(folder / "dapi.tif", s.dapi)
        s.spots.to_parquet(folder / "spots.parquet")
        for key, name in (("images", "image.tif"), ("image_info", "image.json"),
                          ("masks", "dapi.tif"), ("spots", "spots.parquet")):
            inputs[key].append(str(folder / name))
    out = tmp_path / "report"
    out.mkdir()
    fields = {k: v for k, v in vars(replace(SETTINGS, min_per_class=100_000)).items()}
    smk = SimpleNamespace(
        input=SimpleNamespace(**inputs),
        output=SimpleNamespace(table=str(out / "gene_candidates.csv"),
                               snippet=str(out / "gene_candidates.yaml"),
                               figure=str(out / "gene_candidates.png")),
        params=SimpleNamespace(sections=[{"name": s.name} for s in sections],
                               roles=[s.role for s in sections],
                               tissue={"source": "dapi", "gap_um": 100.0,
                                       "min_area_um2": 10000.0}, settings=fields),
        log=[str(tmp_path / "gene_candidates.log")], rule="gene_candidates")
    runpy.run_path(str(REPO / "workflow/scripts/gene_candidates.py"),
                   init_globals={"snakemake": smk})
    table = pd.read_csv(out / "gene_candidates.csv")
    assert len(table) and not table.usable.any()
    # The pairs first, then a row per niches: K (none usable either with these settings).
    assert list(table.kind.drop_duplicates()) == ["pair", "niches"]
    assert sorted(table.loc[table.kind == "niches", "niches"]) == [3, 4, 5, 6]
    assert table.loc[table.kind == "niches", "niche_names"].str.startswith("niche1 (").all()
    snippet = (out / "gene_candidates.yaml").read_text()
    assert "# patches.min_per_class blocked" in snippet and yaml.safe_load(snippet) is None
    assert "# No niches: K of 3, 4, 5, 6 is usable" in snippet
    assert (out / "gene_candidates.png").stat().st_size > 1000
    log = (tmp_path / "gene_candidates.log").read_text()
    assert "WARNING No usable pair among the" in log and "finished in" in log


def test_a_pair_must_run_the_other_way_round_too(sections) -> None:
    # "Shrinks": a wide region in the training section, a small one in the test section. The
    # training thresholds find it in both, so it runs as configured; with the roles swapped the
    # test section's own region is too small for min_per_class candidates, so it is not usable.
    rng = np.random.default_rng(21)
    wide = _disk(rng, "Shrinks", 400, (120, 180), 45)
    small = _disk(rng, "Shrinks", 60, (120, 180), 12)
    keep = ["T1a", "T2a", "Everywhere"]
    both = [replace(s, spots=pd.concat([s.spots[s.spots.gene.isin(keep)],
                                        wide if s.role == "train" else small]))
            for s in sections]
    settings = replace(SETTINGS, labels="regions", min_per_class=40)
    table = choose_genes(both, settings).table
    shrinks = _row(table, "Shrinks", "T2a")
    assert not shrinks.usable
    assert "the other way round (test sections training): class 'Shrinks' has only" \
        in shrinks.why_not
    assert _row(table, "T1a", "T2a").usable
