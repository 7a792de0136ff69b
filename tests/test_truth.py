"""Reference regions from a section's own spots (txmorph.truth). Tiny synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph.truth import (
    fit_thresholds,
    gene_regions,
    local_shares,
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


# --- fitted once, applied unchanged --------------------------------------------------


def _other(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Spots of the genes of no class, uniform over the tissue (the local transcripts)."""
    return _uniform_spots(rng, n)


def _all(spots: dict[str, np.ndarray], other: np.ndarray) -> np.ndarray:
    return np.concatenate([*spots.values(), other])


def _fitted_regions(spots, other, rule="otsu", enrichment=2.0, mask=MASK):
    """Regions of one section by thresholds fitted on that same section."""
    all_xy = _all(spots, other)
    thresholds, _ = fit_thresholds([(mask, spots, all_xy, SIGMA)], rule, enrichment)
    return gene_regions(mask, spots, all_xy, SIGMA, thresholds), thresholds


@pytest.mark.parametrize("rule", ["otsu", "enrichment"])
def test_disk_with_sparse_off_target_spots(rule: str) -> None:
    rng = np.random.default_rng(3)
    spots = {"A": np.r_[_disk_spots(rng, 100, 100, 35, 300), _uniform_spots(rng, 60)]}
    regions, thresholds = _fitted_regions(spots, _other(rng), rule)
    region = regions["A"]
    assert region.dtype == bool and region.shape == (H, W)
    assert _iou(region, _disk(100, 100, 35)) > 0.8
    assert not (region & ~MASK).any()
    assert 0 < thresholds["A"] < 1


def test_share_does_not_depend_on_the_density_of_transcripts() -> None:
    # The same composition at twice the detection efficiency: the same shares.
    rng = np.random.default_rng(11)
    spots = {"A": _disk_spots(rng, 100, 100, 35, 300)}
    other = _other(rng)
    once = local_shares(MASK, spots, _all(spots, other), SIGMA)["A"]
    twice = {"A": np.r_[spots["A"], spots["A"] + 0.3]}
    doubled = local_shares(MASK, twice, _all(twice, np.r_[other, other + 0.3]), SIGMA)["A"]
    inside = _disk(100, 100, 20)
    assert np.allclose(once[inside], doubled[inside], rtol=0.05)


def test_a_test_section_with_half_of_the_class_gets_half_the_region() -> None:
    rng = np.random.default_rng(12)
    # Training: the class fills a band of columns 40..160; test: only its left half 40..100.
    # A threshold fitted on the test section's own statistics would redraw the class over
    # whatever it holds; the training threshold keeps the test's region where the class is.
    band = (XX >= 40) & (XX < 160) & MASK
    half = (XX >= 40) & (XX < 100) & MASK

    def section(where: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rows, cols = np.nonzero(where)
        pick = rng.integers(0, len(rows), 1500 * int(where.sum()) // int(band.sum()))
        xy = np.c_[cols[pick] + rng.random(len(pick)), rows[pick] + rng.random(len(pick))]
        return {"A": xy}, _other(rng)

    train_spots, train_other = section(band)
    thresholds, _ = fit_thresholds(
        [(MASK, train_spots, _all(train_spots, train_other), SIGMA)])
    test_spots, test_other = section(half)
    region = gene_regions(MASK, test_spots, _all(test_spots, test_other), SIGMA,
                          thresholds)["A"]
    assert _iou(region, half) > 0.75
    assert region.sum() == pytest.approx(half.sum(), rel=0.2)
    # A test section without the class: no region, not a redrawn one.
    none = {"A": np.zeros((0, 2))}
    assert not gene_regions(MASK, none, _other(rng), SIGMA, thresholds)["A"].any()
    # A test section where the class is only as frequent as off-target noise: the training
    # threshold finds (almost) nothing; Otsu on its own statistics would draw a region.
    noise = {"A": _other(rng, 150)}
    noise_all = _all(noise, _other(rng))
    kept = gene_regions(MASK, noise, noise_all, SIGMA, thresholds)["A"]
    own, _ = fit_thresholds([(MASK, noise, noise_all, SIGMA)])
    redrawn = gene_regions(MASK, noise, noise_all, SIGMA, own)["A"]
    assert kept.sum() < 0.02 * MASK.sum() < 0.1 * MASK.sum() < redrawn.sum()


def test_thresholds_pool_the_training_sections() -> None:
    rng = np.random.default_rng(13)
    a = {"A": _disk_spots(rng, 100, 100, 35, 300)}
    b = {"A": _disk_spots(rng, 80, 80, 30, 200)}
    oa, ob = _other(rng), _other(rng)
    pooled, shares = fit_thresholds([(MASK, a, _all(a, oa), SIGMA), (MASK, b, _all(b, ob), SIGMA)],
                                    "enrichment", 2.0)
    assert shares["A"] == pytest.approx(500 / (500 + len(oa) + len(ob)))
    assert pooled["A"] == pytest.approx(2.0 * shares["A"])
    none, _ = fit_thresholds([(MASK, {"A": np.zeros((0, 2))}, oa, SIGMA)])
    assert none["A"] == np.inf


def test_two_genes_in_two_disks() -> None:
    rng = np.random.default_rng(4)
    spots = {"A": np.r_[_disk_spots(rng, 60, 60, 30, 250), _uniform_spots(rng, 30)],
             "B": np.r_[_disk_spots(rng, 135, 130, 40, 450), _uniform_spots(rng, 50)]}
    regions, _ = _fitted_regions(spots, _other(rng))
    assert list(regions) == ["A", "B"]
    assert _iou(regions["A"], _disk(60, 60, 30)) > 0.8
    assert _iou(regions["B"], _disk(135, 130, 40)) > 0.8
    assert not (regions["A"] & regions["B"]).any()


def test_overlap_goes_to_the_class_furthest_above_its_threshold() -> None:
    rng = np.random.default_rng(5)
    a = _disk_spots(rng, 100, 100, 40, 400)
    b = _disk_spots(rng, 100, 100, 40, 400)
    other = _other(rng)
    for genes, thresholds in ((("A", "B"), {"A": 0.05, "B": 0.1}),
                              (("B", "A"), {"A": 0.05, "B": 0.1})):
        spots = {g: {"A": a, "B": b}[g] for g in genes}
        regions = gene_regions(MASK, spots, _all(spots, other), SIGMA, thresholds)
        assert _iou(regions["A"], _disk(100, 100, 40)) > 0.7
        assert regions["B"].sum() < 0.05 * regions["A"].sum()


def test_exact_tie_goes_to_the_earlier_gene() -> None:
    rng = np.random.default_rng(6)
    xy = np.r_[_disk_spots(rng, 100, 100, 35, 300), _uniform_spots(rng, 30)]
    spots = {"first": xy, "second": xy.copy()}
    regions = gene_regions(MASK, spots, _all(spots, _other(rng)), SIGMA,
                           {"first": 0.05, "second": 0.05})
    assert regions["first"].sum() > 1000
    assert not regions["second"].any()


def test_gene_without_spots_in_tissue_is_empty() -> None:
    rng = np.random.default_rng(7)
    outside = np.array([[2.0, 2.0], [195.0, 5.0]])  # only outside the mask
    spots = {"A": _disk_spots(rng, 100, 100, 35, 300), "none": np.zeros((0, 2)), "out": outside}
    regions = gene_regions(MASK, spots, _all(spots, _other(rng)), SIGMA,
                           {"A": 0.05, "none": 0.05, "out": 0.05})
    assert regions["A"].any()
    assert not regions["none"].any() and not regions["out"].any()


def test_lone_spots_make_no_region_and_specks_are_removed() -> None:
    rng = np.random.default_rng(8)
    spots = {"A": np.r_[_disk_spots(rng, 100, 100, 35, 300), [[30.0, 170.0]], [[170.0, 30.0]]]}
    region = gene_regions(MASK, spots, _all(spots, _other(rng, 1000)), SIGMA,
                          {"A": 0.3})["A"]
    assert not region[150:190, 10:50].any() and not region[10:50, 150:190].any()
    from scipy import ndimage

    _, n = ndimage.label(region, structure=np.ones((3, 3)))
    assert n == 1
    assert min_region_area_px(SIGMA) == pytest.approx(np.pi * 144)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        fit_thresholds([(MASK, {}, np.zeros((0, 2)), SIGMA)], rule="median")
    with pytest.raises(ValueError):
        fit_thresholds([])
    with pytest.raises(ValueError):
        gene_regions(MASK[None], {}, np.zeros((0, 2)), SIGMA, {})
    with pytest.raises(ValueError, match="threshold"):
        gene_regions(MASK, {"A": np.zeros((0, 2))}, np.zeros((0, 2)), SIGMA, {})
    one = np.array([[1.0, 1.0]])
    assert gene_regions(np.zeros((5, 5), bool), {"A": one}, one, 2.0, {"A": 0.1})["A"].sum() == 0


# --- truth_labels ---------------------------------------------------------------------


def test_truth_labels_classes_and_background() -> None:
    rng = np.random.default_rng(9)
    spots = {
        "A": np.r_[_disk_spots(rng, 60, 60, 30, 250), _uniform_spots(rng, 30)],
        "B": np.r_[_disk_spots(rng, 135, 130, 40, 450), _uniform_spots(rng, 50)],
    }
    other = _other(rng)
    thresholds, _ = fit_thresholds([(MASK, spots, _all(spots, other), SIGMA)])
    labels = truth_labels(MASK, spots, _all(spots, other), SIGMA, thresholds)
    assert labels.dtype == np.uint8 and labels.shape == (H, W)
    assert (labels[~MASK] == 0).all()
    assert (labels[MASK] >= 1).all()
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert labels[60, 60] == 2 and labels[130, 135] == 3 and labels[175, 20] == 1
