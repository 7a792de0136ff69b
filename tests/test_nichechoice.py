"""gene_candidates' niches: K: the joint niches of synthetic sections checked as the pipeline
would run them and probed over K classes as a pair is over two."""

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

pytest.importorskip("points2regions")

from conftest import REPO  # noqa: E402
from txmorph.errors import InputError  # noqa: E402
from test_genechoice import SETTINGS, SHAPE, _image  # noqa: E402
from txmorph.genes.choice import (  # noqa: E402
    TABLE_COLUMNS, Choice, Section, choose_genes, probe_grids)
from txmorph.genes.niche_choice import (  # noqa: E402
    CANDIDATE_COLUMNS, NICHE_COLUMNS, NICHE_KS, NicheChoice, candidate_table, choose_niches,
    niche_problems, rank_niches)
from txmorph.genes.probe import probe_pair  # noqa: E402
from txmorph.genes.report import yaml_snippet  # noqa: E402
from txmorph.niches import Niches  # noqa: E402
from txmorph.outputs import write_label_tiff  # noqa: E402

#: The bands of ``_image``'s textures (rows): bright and busy, medium, dim and sparse.
BANDS = ((0, 80), (80, 160), (160, 240))


def _niche_section(name: str, role: str, seed: int, bands=BANDS, genes_per_band: int = 3,
                   spots_per_band: int = 3000) -> Section:
    """Three niches in the three texture bands of ``_image``: band i's spots are a mix of its
    own genes ``N{i}_*`` (80 %) and a gene found everywhere (20 %)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, rows in enumerate(bands):
        own = [f"N{i}_{g}" for g in range(genes_per_band)]
        gene = np.where(rng.uniform(size=spots_per_band) < 0.8,
                        rng.choice(own, spots_per_band), "Common")
        parts.append(pd.DataFrame({"gene": gene, "x": rng.uniform(0, SHAPE[1], spots_per_band),
                                   "y": rng.uniform(*rows, spots_per_band)}))
    tissue = np.ones(SHAPE, bool)
    return Section(name=name, role=role, tissue=tissue, dapi=tissue,
                   spots=pd.concat(parts, ignore_index=True), pixel_size_um=1.0,
                   image=_image(rng) if role == "train" else None)


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    return [_niche_section("train", "train", 0), _niche_section("test", "test", 1)]


@pytest.fixture(scope="module")
def niche_choice(sections) -> NicheChoice:
    return choose_niches(sections, SETTINGS, ks=(3, 6))


def _row(table: pd.DataFrame, k: int) -> pd.Series:
    return table.set_index("niches").loc[k]


def test_niches_of_the_right_k_are_usable_and_learnable(niche_choice, sections) -> None:
    table = niche_choice.table
    assert list(table.columns) == NICHE_COLUMNS and list(table.niches) == [3, 6]
    three = _row(table, 3)
    assert three.usable and three.why_not == "" and three.probe_note == ""
    assert niche_choice.best == 3
    # Each niche is one band, named by its genes, and its map is that band in every section.
    names = three.niche_names.split("; ")
    assert [n.split(" (")[0] for n in names] == ["niche1", "niche2", "niche3"]
    band_of = {}
    for i, name in enumerate(names):
        bands = {gene.split("_")[0] for gene in name.split("(")[1].rstrip(")").split(", ")}
        assert len(bands) == 1 and bands <= {"N0", "N1", "N2"}, name
        band_of[2 + i] = int(bands.pop()[1])
    for s in sections:
        labels = niche_choice.references[s.name]
        for label, band in band_of.items():
            top, bottom = BANDS[band]
            assert (labels[top + 12:bottom - 12] == label).mean() > 0.95
    # The bands differ in texture: the niches are learnable, and every niche is scored.
    assert three.probe_score > 0.6
    assert three.probe_score == pytest.approx(min(three.probe_score_fold1,
                                                  three.probe_score_fold2))
    per_niche = [float(v) for v in three.probe_score_niches.split()]
    assert len(per_niche) == 3 and min(per_niche) > 0.5


def test_more_niches_than_the_data_holds_are_not_usable(niche_choice, sections) -> None:
    six = _row(niche_choice.table, 6)
    assert not six.usable and six.why_not
    assert "niche" in six.why_not
    # With more patch centres asked for than the extra niches hold, the support check names K.
    spots = replace(SETTINGS, labels="spots", min_per_class=1000)
    table = choose_niches(sections, spots, ks=(3, 6)).table
    assert _row(table, 3).usable
    why = _row(table, 6).why_not
    assert "niches: 6 is more than these spots support" in why
    assert "candidate patch centres in the training sections" in why
    assert table.iloc[0].niches == 3  # usable first


def test_the_probe_scores_k_classes_by_the_worse_fold(sections) -> None:
    """The niche maps of the bands against maps that ignore the image (vertical stripes): K
    classes scored as a pair's two, chance-corrected per class, mean, worse fold."""
    feature_settings, grids = probe_grids(sections[:1], SETTINGS)
    rows = np.arange(SHAPE[0])[:, None]
    cols = np.arange(SHAPE[1])[None, :]
    bands = np.broadcast_to(2 + (rows >= 80) + (rows >= 160), SHAPE).astype(np.uint8)
    stripes = np.broadcast_to(2 + (cols // 120), SHAPE).astype(np.uint8)
    good = probe_pair(grids, [bands], feature_settings[0], 300, 0, n_classes=5)
    bad = probe_pair(grids, [stripes], feature_settings[0], 300, 0, n_classes=5)
    assert good["score"] > 0.6 > 0.2 > bad["score"]
    excess = good["excess_folds"][:, 2:]
    assert np.allclose(good["fold_scores"], excess.mean(axis=1))
    assert good["score"] == pytest.approx(good["fold_scores"].min())
    # A class absent from the maps is left out of the score when not among ``scored``.
    two = np.where(bands == 4, 3, bands).astype(np.uint8)
    strict = probe_pair(grids, [two], feature_settings[0], 300, 0, n_classes=5)
    present = probe_pair(grids, [two], feature_settings[0], 300, 0, n_classes=5, scored=[2, 3])
    assert np.isnan(strict["score"]) and np.isfinite(present["score"])


def test_problems_both_ways_round() -> None:
    """A niche with no region in the test section, or too few patch centres in training."""
    mask = np.ones((60, 80), bool)
    spots = pd.DataFrame({"gene": ["G"] * 4, "x": [5.0, 6, 70, 71], "y": [5.0, 6, 50, 51]})
    train = Section("a", "train", mask, mask, spots, 1.0)
    test = replace(train, name="b", role="test")
    niches = Niches([np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])], ["niche1", "niche2"],
                    [[], []], np.full((2, 2), 0.5))
    halves = np.full((60, 80), 2, np.uint8)
    halves[:, 40:] = 3
    references = {"a": halves, "b": np.full((60, 80), 2, np.uint8)}
    settings = replace(SETTINGS, labels="regions", min_per_class=2)
    assert niche_problems([train, test], niches, 2, references, settings) == [
        "niche2: empty niche region in test section b"]
    # The other way round: the test section trains, and holds no niche2 to cut patches from.
    swapped = [replace(train, role="test"), replace(test, role="train")]
    problems = niche_problems(swapped, niches, 2, references, settings)
    assert problems == ["niche2: only 0 candidate patch centres in the training sections (b: 0; "
                        "patches.min_per_class = 2)"]


def test_ranking_table_and_snippet(niche_choice) -> None:
    rows = pd.DataFrame([{"niches": 5, "usable": True, "probe_score": 0.4},
                         {"niches": 3, "usable": False, "probe_score": 0.9},
                         {"niches": 6, "usable": True, "probe_score": np.nan},
                         {"niches": 4, "usable": True, "probe_score": 0.4004}])
    assert list(rank_niches(rows).niches) == [4, 5, 6, 3]  # ties (3 decimals) to the smaller K
    # One table: pairs first, with a kind column.
    pair = {**dict.fromkeys(TABLE_COLUMNS, np.nan), "gene_a": "A", "gene_b": "B", "usable": True,
            "why_not": "", "probe_score": 0.3, "probe_score_fold1": 0.3,
            "probe_score_fold2": 0.4, "probe_dice": 0.5, "probe_dice_a": 0.5,
            "probe_dice_b": 0.5, "overlap_dice": 0.0, "spots_a": 100, "spots_b": 90,
            "fewest_spots": 90}
    pairs = pd.DataFrame([pair], columns=TABLE_COLUMNS)
    table = candidate_table(pairs, niche_choice.table)
    assert list(table.columns) == CANDIDATE_COLUMNS
    assert list(table.kind) == ["pair", "niches", "niches"]
    assert table.niches.tolist()[1:] == [3, 6] and pd.isna(table.niches[0])
    # A usable pair stays the snippet; the best K is a comment with its score.
    choice = Choice(table=pairs, candidates={"A": ["A"], "B": ["B"]}, best={"A": ["A"], "B": ["B"]})
    text = yaml_snippet(choice, "header", niches=niche_choice)
    assert yaml.safe_load(text) == {"genes": ["A", "B"]}
    assert "# Or, without a gene choice: niches: 3 (" in text and "probe score 0." in text
    # No usable pair: niches: K is the config.
    none = Choice(table=pairs.assign(usable=False), candidates={}, best=None)
    text = yaml_snippet(none, "header", "No usable pair among the 1 candidate pairs.",
                        niches=niche_choice)
    assert yaml.safe_load(text) == {"niches": 3}
    assert "# No usable pair among the 1" in text and "remove genes:" in text
    # Neither: comments only, saying why no K runs.
    nothing = NicheChoice(table=niche_choice.table.assign(usable=False, why_not="niche2: x"),
                          niches={}, best=None)
    text = yaml_snippet(none, "header", "No usable pair.", niches=nothing)
    assert yaml.safe_load(text) is None and "# No niches: K of 3, 6 is usable" in text


def test_rule_script_proposes_niches_when_no_gene_can_be_a_class(tmp_path) -> None:
    """Many genes, each too rare to be a class (no pair at all), in three niches: the rule's
    script writes the niche rows and ``niches: K`` as the snippet, and succeeds."""
    sections = [_niche_section("train", "train", 0, genes_per_band=300),
                _niche_section("test", "test", 1, genes_per_band=300)]
    settings = replace(SETTINGS, min_spots_per_region=30)  # every gene has ~10 spots
    with pytest.raises(InputError, match="fewer than two candidate classes"):
        choose_genes(sections, settings)
    inputs = {"images": [], "image_info": [], "masks": [], "spots": []}
    for s in sections:
        folder = tmp_path / s.name
        folder.mkdir()
        tifffile.imwrite(folder / "image.tif",
                         s.image if s.image is not None else np.zeros(SHAPE, np.uint16))
        (folder / "image.json").write_text(json.dumps({"pixel_size_um": 1.0,
                                                       "shape": list(SHAPE)}))
        write_label_tiff(folder / "dapi.tif", s.dapi)
        s.spots.to_parquet(folder / "spots.parquet")
        for key, name in (("images", "image.tif"), ("image_info", "image.json"),
                          ("masks", "dapi.tif"), ("spots", "spots.parquet")):
            inputs[key].append(str(folder / name))
    out = tmp_path / "report"
    out.mkdir()
    smk = SimpleNamespace(
        input=SimpleNamespace(**inputs),
        output=SimpleNamespace(table=str(out / "gene_candidates.csv"),
                               snippet=str(out / "gene_candidates.yaml"),
                               figure=str(out / "gene_candidates.png")),
        params=SimpleNamespace(sections=[{"name": s.name} for s in sections],
                               roles=[s.role for s in sections],
                               tissue={"source": "dapi", "gap_um": 100.0,
                                       "min_area_um2": 10000.0}, settings=vars(settings)),
        log=[str(tmp_path / "gene_candidates.log")], rule="gene_candidates")
    runpy.run_path(str(REPO / "workflow/scripts/gene_candidates.py"),
                   init_globals={"snakemake": smk})
    table = pd.read_csv(out / "gene_candidates.csv")
    assert list(table.columns) == CANDIDATE_COLUMNS
    assert set(table.kind) == {"niches"} and sorted(table.niches) == list(NICHE_KS)
    assert table.set_index("niches").loc[3, "usable"]
    best = int(table.niches.iloc[0])
    assert table.usable.iloc[0] and yaml.safe_load((out / "gene_candidates.yaml").read_text()) \
        == {"niches": best}
    log = (tmp_path / "gene_candidates.log").read_text()
    assert "fewer than two candidate classes" in log and "finished in" in log
