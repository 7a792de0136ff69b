"""gene_candidates: candidates and modules, usable by the pipeline's rules, ranked by the probe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from txmorph.genes.choice import Choice, Section, Settings, choose_genes, gene_modules
from txmorph.genes.report import plot_choice, yaml_snippet
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
    with pytest.raises(ValueError, match="fewer than two candidate classes"):
        choose_genes(sections, replace(SETTINGS, min_spots_per_region=100_000))
