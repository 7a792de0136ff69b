"""Reference regions from a section's own spots (txmorph.truth). Tiny synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph.truth import (
    gene_regions,
    min_region_area_px,
    spot_density,
    truth_labels,
)

H = W = 200
YY, XX = np.mgrid[:H, :W]
MASK = (XX >= 10) & (XX < 190) & (YY >= 10) & (YY < 190)
SIGMA = 6.0


def _disk(cx: float, cy: float, r: float) -> np.ndarray:
    return (XX + 0.5 - cx) ** 2 + (YY + 0.5 - cy) ** 2 <= r**2


def _disk_spots(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = r * np.sqrt(rng.uniform(0, 1, n))
    return np.c_[cx + radius * np.cos(angle), cy + radius * np.sin(angle)]


def _uniform_spots(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.c_[rng.uniform(10, 190, n), rng.uniform(10, 190, n)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --- spot_density ---------------------------------------------------------------------


def test_density_integrates_to_spot_count_and_peaks_at_spot() -> None:
    xy = np.array([[50.5, 60.5], [150.5, 140.5]])
    for sigma in (2.0, 12.0):  # full-resolution path and coarse-grid path
        d = spot_density(xy, (H, W), sigma)
        assert d.shape == (H, W) and d.dtype == np.float32
        assert d.sum() == pytest.approx(2.0, rel=0.02)
        r, c = np.unravel_index(np.argmax(d), d.shape)
        assert min(abs(r - 60) + abs(c - 50), abs(r - 140) + abs(c - 150)) <= 2
        # Peak of one isolated spot: 1 / (2 pi sigma^2) (binning lowers it a little).
        assert d.max() == pytest.approx(1 / (2 * np.pi * sigma**2), rel=0.1)


def test_density_is_x_column_y_row_and_ignores_outside_spots() -> None:
    xy = np.array([[30.0, 100.0], [-5.0, 10.0], [10.0, 1e6], [np.nan, 3.0]])
    d = spot_density(xy, (H, W), 3.0)
    assert d.sum() == pytest.approx(1.0, rel=0.01)
    r, c = np.unravel_index(np.argmax(d), d.shape)
    assert (r, c) == (100, 30)


def test_density_empty_and_bad_sigma() -> None:
    assert not spot_density(np.zeros((0, 2)), (20, 30), 5.0).any()
    with pytest.raises(ValueError):
        spot_density(np.zeros((0, 2)), (20, 30), 0.0)


# --- gene_regions ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["otsu", "enrichment"])
def test_disk_with_sparse_off_target_spots(rule: str) -> None:
    rng = np.random.default_rng(3)
    xy = np.r_[_disk_spots(rng, 100, 100, 35, 300), _uniform_spots(rng, 60)]
    region = gene_regions(MASK, {"A": xy}, SIGMA, rule=rule)["A"]
    assert region.dtype == bool and region.shape == (H, W)
    assert _iou(region, _disk(100, 100, 35)) > 0.8
    assert not (region & ~MASK).any()


def test_two_genes_in_two_disks() -> None:
    rng = np.random.default_rng(4)
    a = np.r_[_disk_spots(rng, 60, 60, 30, 250), _uniform_spots(rng, 30)]
    b = np.r_[_disk_spots(rng, 135, 130, 40, 450), _uniform_spots(rng, 50)]
    regions = gene_regions(MASK, {"A": a, "B": b}, SIGMA)
    assert list(regions) == ["A", "B"]
    assert _iou(regions["A"], _disk(60, 60, 30)) > 0.8
    assert _iou(regions["B"], _disk(135, 130, 40)) > 0.8
    assert not (regions["A"] & regions["B"]).any()


def test_overlap_goes_to_the_more_enriched_gene() -> None:
    rng = np.random.default_rng(5)
    # Both genes fill the same disk; A is far more concentrated there than B (B has many
    # off-target spots), so A's enrichment is higher everywhere in the disk.
    a = _disk_spots(rng, 100, 100, 40, 400)
    b = np.r_[_disk_spots(rng, 100, 100, 40, 400), _uniform_spots(rng, 400)]
    for genes in (("A", "B"), ("B", "A")):
        spots = {"A": a, "B": b}
        regions = gene_regions(MASK, {g: spots[g] for g in genes}, SIGMA, rule="enrichment")
        assert _iou(regions["A"], _disk(100, 100, 40)) > 0.8
        assert regions["B"].sum() < 0.05 * regions["A"].sum()


def test_exact_tie_goes_to_the_earlier_gene() -> None:
    rng = np.random.default_rng(6)
    xy = np.r_[_disk_spots(rng, 100, 100, 35, 300), _uniform_spots(rng, 30)]
    regions = gene_regions(MASK, {"first": xy, "second": xy.copy()}, SIGMA)
    assert regions["first"].sum() > 1000
    assert not regions["second"].any()


def test_gene_without_spots_in_tissue_is_empty() -> None:
    rng = np.random.default_rng(7)
    outside = np.array([[2.0, 2.0], [195.0, 5.0]])  # only outside the mask
    regions = gene_regions(
        MASK,
        {"A": _disk_spots(rng, 100, 100, 35, 300), "none": np.zeros((0, 2)), "out": outside},
        SIGMA,
    )
    assert regions["A"].any()
    assert not regions["none"].any() and not regions["out"].any()


def test_lone_spots_make_no_region_and_specks_are_removed() -> None:
    rng = np.random.default_rng(8)
    xy = np.r_[_disk_spots(rng, 100, 100, 35, 300), [[30.0, 170.0]], [[170.0, 30.0]]]
    region = gene_regions(MASK, {"A": xy}, SIGMA, rule="enrichment", enrichment=0.5)["A"]
    assert not region[150:190, 10:50].any() and not region[10:50, 150:190].any()
    from scipy import ndimage

    _, n = ndimage.label(region, structure=np.ones((3, 3)))
    assert n == 1
    assert min_region_area_px(SIGMA) == pytest.approx(np.pi * 144)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        gene_regions(MASK, {}, SIGMA, rule="median")
    with pytest.raises(ValueError):
        gene_regions(MASK[None], {}, SIGMA)
    assert gene_regions(np.zeros((5, 5), bool), {"A": np.array([[1.0, 1.0]])}, 2.0)["A"].sum() == 0


# --- truth_labels ---------------------------------------------------------------------


def test_truth_labels_classes_and_background() -> None:
    rng = np.random.default_rng(9)
    spots = {
        "A": np.r_[_disk_spots(rng, 60, 60, 30, 250), _uniform_spots(rng, 30)],
        "B": np.r_[_disk_spots(rng, 135, 130, 40, 450), _uniform_spots(rng, 50)],
    }
    labels = truth_labels(MASK, spots, SIGMA, "otsu", 2.0)
    assert labels.dtype == np.uint8 and labels.shape == (H, W)
    assert (labels[~MASK] == 0).all()
    assert (labels[MASK] >= 1).all()
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert labels[60, 60] == 2 and labels[130, 135] == 3 and labels[175, 20] == 1
