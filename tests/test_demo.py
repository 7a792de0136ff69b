"""Tests of the synthetic demo-section generator, on tiny sections (well under a second each)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from txmorph.demo.layout import (
    BACKGROUND,
    REGION_A,
    REGION_B,
    TISSUE,
    DemoParams,
    DemoSection,
    generate_section,
    write_section,
)
from txmorph.errors import InputError

# Non-square, so that a row/column mix-up shows; 2 um pixels keep it tiny but complete.
TINY = DemoParams(height=384, width=320, pixel_size_um=2.0)


@pytest.fixture(scope="module")
def section() -> DemoSection:
    return generate_section(TINY, seed=1)


@pytest.fixture(scope="module")
def other_section() -> DemoSection:
    return generate_section(TINY, seed=2)


def spot_labels(section: DemoSection) -> np.ndarray:
    rows = np.rint(section.spots["y"].to_numpy()).astype(int)
    cols = np.rint(section.spots["x"].to_numpy()).astype(int)
    return section.regions[rows, cols]


def test_defaults_describe_a_full_size_section() -> None:
    params = DemoParams()
    assert (params.height, params.width, params.pixel_size_um) == (2048, 2048, 1.0)
    assert (params.gene_a, params.gene_b) == ("Prox1", "Mbp")
    assert len(params.other_genes) >= 3


def test_same_seed_gives_identical_section(section: DemoSection) -> None:
    again = generate_section(TINY, seed=1)
    np.testing.assert_array_equal(again.image, section.image)
    np.testing.assert_array_equal(again.regions, section.regions)
    pd.testing.assert_frame_equal(again.spots, section.spots)


def test_different_seeds_give_different_brains(section: DemoSection,
                                               other_section: DemoSection) -> None:
    assert not np.array_equal(section.image, other_section.image)
    assert not section.spots.equals(other_section.spots)
    # a different layout, not just different noise: the gene-A regions barely coincide
    a1, a2 = section.regions == REGION_A, other_section.regions == REGION_A
    assert (a1 & a2).sum() / (a1 | a2).sum() < 0.5


def test_types_and_shapes(section: DemoSection) -> None:
    assert section.image.dtype == np.uint16 and section.image.shape == (384, 320)
    assert section.regions.dtype == np.uint8 and section.regions.shape == (384, 320)
    assert set(np.unique(section.regions)) == {BACKGROUND, TISSUE, REGION_A, REGION_B}
    assert list(section.spots.columns) == ["gene", "x", "y"]
    assert section.spots["x"].dtype == np.float64 and section.spots["y"].dtype == np.float64
    assert all(isinstance(g, str) for g in section.spots["gene"])
    assert set(section.spots["gene"]) == {TINY.gene_a, TINY.gene_b, *TINY.other_genes}


def test_spots_lie_inside_the_image_and_the_tissue(section: DemoSection) -> None:
    x, y = section.spots["x"], section.spots["y"]
    assert x.between(0, TINY.width - 1).all() and y.between(0, TINY.height - 1).all()
    assert np.mean(spot_labels(section) != BACKGROUND) > 0.97


def test_regions_are_sized_and_kept_apart(section: DemoSection) -> None:
    regions = section.regions
    tissue = regions != BACKGROUND
    assert 0.4 < tissue.mean() < 0.8
    for label in (REGION_A, REGION_B):
        assert 0.03 < (regions == label).sum() / tissue.sum() < 0.25
    grown_a = ndimage.binary_dilation(regions == REGION_A, iterations=3)
    assert not (grown_a & (regions == REGION_B)).any()


def test_marker_genes_sit_in_their_regions(section: DemoSection) -> None:
    labels, genes = spot_labels(section), section.spots["gene"].to_numpy()
    assert np.mean(labels[genes == TINY.gene_a] == REGION_A) > 0.7
    assert np.mean(labels[genes == TINY.gene_b] == REGION_B) > 0.7
    others = np.isin(genes, TINY.other_genes)
    assert np.mean(labels[others] == REGION_A) < 0.3
    assert (genes == TINY.gene_a).sum() > 50 and (genes == TINY.gene_b).sum() > 50


def test_off_target_fraction_scatters_marker_spots() -> None:
    shares = []
    for fraction in (0.0, 0.4):
        noisy = generate_section(DemoParams(height=256, width=256, pixel_size_um=2.0,
                                            off_target_fraction=fraction), seed=3)
        genes = noisy.spots["gene"].to_numpy()
        shares.append(np.mean(spot_labels(noisy)[genes == "Prox1"] == REGION_A))
    assert shares[0] > shares[1] + 0.2


def test_region_a_is_denser_and_brighter_than_tissue(section: DemoSection) -> None:
    image, regions = section.image.astype(float), section.regions
    assert image[regions == REGION_A].mean() > 1.5 * image[regions == TISSUE].mean()
    threshold = 0.5 * (np.median(image[regions == BACKGROUND]) + np.percentile(image, 99))
    nuclear = image > threshold
    assert nuclear[regions == REGION_A].mean() > 1.5 * nuclear[regions == TISSUE].mean()


def test_region_b_nuclei_share_an_orientation(section: DemoSection) -> None:
    """Gradient structure-tensor coherence: rows of elongated nuclei are strongly oriented."""
    smooth = ndimage.gaussian_filter(section.image.astype(float), 1.0)
    gy, gx = np.gradient(smooth)
    jxx, jyy, jxy = (ndimage.gaussian_filter(g, 6.0) for g in (gx * gx, gy * gy, gx * gy))
    coherence = np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy + 1e-9)
    inner = ndimage.binary_erosion(section.regions == REGION_B, iterations=6)
    assert coherence[inner].mean() > 1.5 * coherence[section.regions == TISSUE].mean()


def test_background_is_dark_but_not_zero(section: DemoSection) -> None:
    image, regions = section.image.astype(float), section.regions
    background = image[regions == BACKGROUND]
    assert 0 < np.median(background) < 0.6 * image[regions == TISSUE].mean()


def test_write_section_round_trip(section: DemoSection, tmp_path) -> None:
    out = tmp_path / "demo"
    write_section(section, out / "image.tif", out / "spots.csv", out / "regions.tif")
    image, regions = tifffile.imread(out / "image.tif"), tifffile.imread(out / "regions.tif")
    assert image.dtype == np.uint16 and regions.dtype == np.uint8
    np.testing.assert_array_equal(image, section.image)
    np.testing.assert_array_equal(regions, section.regions)
    assert (out / "spots.csv").read_text().splitlines()[0] == "gene,x,y"
    spots = pd.read_csv(out / "spots.csv")
    assert list(spots["gene"]) == list(section.spots["gene"])
    np.testing.assert_allclose(spots[["x", "y"]], section.spots[["x", "y"]], atol=1e-9)
    assert sorted(p.name for p in out.iterdir()) == ["image.tif", "regions.tif", "spots.csv"]


def test_write_section_without_regions(section: DemoSection, tmp_path) -> None:
    write_section(section, tmp_path / "i.tif", tmp_path / "s.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.tif", "s.csv"]


@pytest.mark.parametrize("change", [
    {"height": 64}, {"width": 100.0}, {"pixel_size_um": 0.0}, {"gene_b": "Prox1"},
    {"other_genes": ()}, {"off_target_fraction": 1.0}, {"spots_per_cell_a": -1.0},
])
def test_bad_parameters_are_input_errors(change: dict) -> None:
    with pytest.raises(InputError, match="demo parameters"):
        DemoParams(**change)
