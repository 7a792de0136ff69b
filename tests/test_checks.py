"""Input checks of one section (txmorph.checks) on generated masks and spot clouds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from txmorph.checks import (
    CheckSettings,
    apply_policy,
    check_section,
    densest_disk_count,
    failure_message,
    tissue_covered_by_box,
)

GENES = ["A", "B"]


def tissue(shape=(400, 400)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[40:360, 40:360] = True
    return mask


def spot_cloud(rng, n=2000, box=(40, 360, 40, 360), genes=GENES, cluster_of=None) -> pd.DataFrame:
    x0, x1, y0, y1 = box
    frame = pd.DataFrame({"gene": rng.choice(genes, n), "x": rng.uniform(x0, x1, n),
                          "y": rng.uniform(y0, y1, n)})
    if cluster_of:  # a gene whose spots crowd one 20 px disk
        gene, count = cluster_of
        frame = pd.concat([frame, pd.DataFrame({"gene": gene, "x": rng.normal(200, 5, count),
                                                "y": rng.normal(200, 5, count)})])
    return frame


def run(spots, mask=None, role="test", **kwargs):
    arguments = dict(section="s", role=role, tissue_mask=tissue() if mask is None else mask,
                     spots=spots, genes=GENES, pixel_size_um=1.0, patch_sizes=[32, 64],
                     sigma_um=10.0, files={"image": "img.tif", "spots": "spots.csv"})
    arguments.update(kwargs)
    return check_section(**arguments)


def checks_of(result, severity):
    return {f.check for f in result.of_severity(severity)}


def test_matching_inputs_pass_cleanly() -> None:
    result = run(spot_cloud(np.random.default_rng(0)))
    assert result.findings == []
    assert result.fraction_in_tissue == 1.0 and result.tissue_covered_by_spots > 0.95
    assert result.evaluable and result.evaluable_genes == GENES
    assert failure_message(result) is None


@pytest.mark.parametrize("factor", [0.5, 0.3])
def test_spots_at_a_smaller_scale_are_an_error(factor) -> None:
    spots = spot_cloud(np.random.default_rng(1))
    spots[["x", "y"]] *= factor
    result = run(spots)
    assert "spot_extent" in checks_of(result, "error")
    message = failure_message(result)
    assert "section 's'" in message and "corner" in message and "spots.csv" in message
    assert "pixel_size_um" in message and "checks.on_failure: warn" in message


def test_spots_off_tissue_are_an_error_and_policy_warn_downgrades() -> None:
    mask = tissue()
    spots = spot_cloud(np.random.default_rng(2), box=(0, 400, 0, 400))
    spots = spots[~mask[spots["y"].astype(int), spots["x"].astype(int)]]  # all off tissue
    result = run(spots, mask=mask)
    assert "spots_in_tissue" in checks_of(result, "error")
    apply_policy(result, "warn")
    assert not result.of_severity("error")
    assert "spots_in_tissue" in checks_of(result, "warning")


def test_empty_tissue_train_is_an_error_test_is_not_evaluable() -> None:
    spots = spot_cloud(np.random.default_rng(3))
    empty = np.zeros((400, 400), bool)
    train = run(spots, mask=empty, role="train")
    assert "tissue" in checks_of(train, "error")
    apply_policy(train, "warn")  # cannot be waved through: there is nothing to learn from
    assert "tissue" in checks_of(train, "error")
    test = run(spots, mask=empty, role="test")
    assert not test.of_severity("error") and not test.evaluable
    assert "no tissue" in test.of_severity("not_evaluable")[0].message


def test_patch_larger_than_section_is_an_error() -> None:
    result = run(spot_cloud(np.random.default_rng(4)), patch_sizes=[32, 512])
    assert "patch_size" in checks_of(result, "error")
    assert "[512] px" in failure_message(result) and "400 px" in failure_message(result)
    assert "patch_size" not in checks_of(run(spot_cloud(np.random.default_rng(4))), "error")


def test_sparse_test_gene_is_not_evaluable_clustered_one_is() -> None:
    rng = np.random.default_rng(5)
    spots = spot_cloud(rng, n=1000, genes=["A"])
    spots = pd.concat([spots, spot_cloud(rng, n=5, genes=["B"])])
    result = run(spots)
    assert result.evaluable_genes == ["A"]
    finding = result.of_severity("not_evaluable")[0]
    assert finding.gene == "B" and "B has 5 spots" in finding.message
    assert "20 µm radius" in finding.message  # 2 x sigma_um, in µm
    # The same count in a training section: the class is not learnt from there (a warning;
    # rule reference stops the run when no training section supports it).
    train = run(spots, role="train")
    assert not train.of_severity("not_evaluable") and train.evaluable_genes == ["A"]
    warning = [f for f in train.of_severity("warning") if f.gene == "B"][0]
    assert "B has 5 spots" in warning.message and "not learnt from this training section" \
        in warning.message and "truth.min_spots_per_region" in warning.message
    # Twelve spots that crowd one region make it evaluable.
    crowded = pd.concat([spot_cloud(rng, n=3000, genes=["A"]),
                         spot_cloud(rng, n=0, cluster_of=("B", 12))])
    assert run(crowded).evaluable_genes == GENES
    # The minimum is a setting.
    assert run(crowded, settings=CheckSettings(min_spots_per_region=30)).evaluable_genes == ["A"]


def test_many_spots_off_the_image_warn() -> None:
    result = run(spot_cloud(np.random.default_rng(6)), spots_dropped_off_image=3000)
    assert "spots_off_image" in checks_of(result, "warning")


def test_helpers() -> None:
    mask = tissue()
    assert tissue_covered_by_box(mask, (40, 359, 40, 359)) == 1.0
    assert tissue_covered_by_box(mask, (40, 199, 40, 199)) == pytest.approx(0.25)
    assert np.isnan(tissue_covered_by_box(np.zeros((4, 4), bool), (0, 3, 0, 3)))
    xy = np.array([[0, 0], [1, 0], [0, 1], [50, 50]], float)
    assert densest_disk_count(xy, 2.0) == 3 and densest_disk_count(np.empty((0, 2)), 2.0) == 0


def test_saturated_and_dark_images_are_found_on_the_tissue() -> None:
    from txmorph.checks import SATURATION_ERROR, grey_level_findings, grey_levels

    rng = np.random.default_rng(7)
    mask = np.zeros((300, 200), bool)
    mask[50:250, 40:160] = True
    image = rng.integers(200, 3000, mask.shape).astype(np.uint16)
    levels = grey_levels(image, mask)
    assert levels["saturated"] < 0.01 and levels["dark"] < 0.01
    assert grey_level_findings(levels, "s", "img.tif") == []
    # x40 and clipped: a third of the tissue at the top; errors name the key that relaxes them.
    clipped = np.clip(image.astype(np.float64) * 40, 0, 65535).astype(np.uint16)
    levels = grey_levels(clipped, mask)
    assert levels["saturated"] > SATURATION_ERROR and levels["top"] == 65535
    (finding,) = grey_level_findings(levels, "section 's'", "img.tif")
    assert finding.severity == "error" and finding.check == "saturation"
    assert "checks.on_failure: warn" in finding.message and "img.tif" in finding.message
    result = run(spot_cloud(rng), levels=levels)
    assert "saturation" in checks_of(result, "error")
    assert "saturation" in checks_of(apply_policy(result, "warn"), "warning")
    # A few saturated nuclei: a warning only; outside the tissue: nothing.
    some = image.copy()
    some[60:70, 50:120] = 65535
    some[:40] = 65535
    (finding,) = grey_level_findings(grey_levels(some, mask), "s", "img.tif")
    assert finding.severity == "warning"
    # Almost every tissue pixel in the lowest grey levels: too dark.
    dark = rng.integers(0, 3, mask.shape).astype(np.uint16)
    dark[100:110, 60:70] = 40
    (finding,) = grey_level_findings(grey_levels(dark, mask), "s", "img.tif")
    assert finding.check == "dark_image" and finding.severity == "error"
    # Row strips give the same counts as the whole image at once.
    import txmorph.checks as checks_module

    whole = grey_levels(clipped, mask)
    old = checks_module.GREY_LEVEL_ROWS
    try:
        checks_module.GREY_LEVEL_ROWS = 7
        assert grey_levels(clipped, mask) == whole
    finally:
        checks_module.GREY_LEVEL_ROWS = old


def test_swapped_x_and_y_are_named_as_the_likely_cause() -> None:
    # Tissue that is not symmetric: a wide, short band.
    mask = np.zeros((400, 600), bool)
    mask[20:140, 20:580] = True
    rng = np.random.default_rng(8)
    spots = spot_cloud(rng, box=(20, 580, 20, 140))
    assert failure_message(run(spots, mask=mask)) is None
    swapped = spots.rename(columns={"x": "y", "y": "x"})
    message = failure_message(run(swapped, mask=mask))
    assert message and "x and y columns may be swapped" in message and "'columns'" in message
    # Spots at another scale are not mistaken for swapped columns.
    scaled = spots.copy()
    scaled[["x", "y"]] *= 0.3
    assert "swapped" not in failure_message(run(scaled, mask=mask))


@pytest.mark.parametrize("role, blocks, expected", [
    ("train", {"grid": [2, 2], "keep": "even"}, None),        # 200 px blocks, 64 px patches
    ("test", {"grid": [8, 8], "keep": "odd"}, None),          # a test section needs no buffer
    ("train", {"grid": [8, 8], "keep": "odd"}, "coarser grid"),  # 50 px blocks < 64 px buffer
    ("test", {"grid": [500, 2], "keep": "even"}, "finer than the 400 x 400 px image"),
    ("test", {"grid": [1, 1], "keep": "odd"}, "keeps no pixel"),
])
def test_blocks_are_checked_against_the_image_and_patches(role, blocks, expected) -> None:
    result = run(spot_cloud(np.random.default_rng(7)), role=role, blocks=blocks)
    errors = [f for f in result.of_severity("error") if f.check == "blocks"]
    if expected is None:
        assert errors == []
    else:
        assert len(errors) == 1 and expected in errors[0].message
        assert "section 's': blocks" in errors[0].message
        assert "blocks" in failure_message(result)
        # not one of the errors that checks.on_failure: warn lets through
        assert [f.check for f in apply_policy(result, "warn").of_severity("error")] == ["blocks"]
