"""Sections made of blocks of one image (txmorph.blocks): the checkerboard, the training
buffer, and what the rules do with pixels outside a section's blocks."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph.blocks import (OUTSIDE_AREA, block_index, checkerboard, restrict_labels,
                            section_area, training_area)
from txmorph.evaluate.metrics import unlearned_notes
from txmorph.patches.sampling import sample_centres
from txmorph.truth import fit_thresholds


def test_checkerboard_halves_are_disjoint_and_cover_the_image():
    even = checkerboard((7, 10), (2, 3), "even")
    odd = checkerboard((7, 10), (2, 3), "odd")
    assert not (even & odd).any() and (even | odd).all()
    assert even[0, 0] and odd[0, 4] and even[0, -1] and odd[-1, 0]
    rows, cols = block_index((7, 10), (2, 3))
    assert rows.tolist() == [0, 0, 0, 0, 1, 1, 1]  # sides differ by at most a pixel
    assert np.bincount(cols).tolist() == [4, 3, 3]
    assert section_area((7, 10), None) is None
    assert (section_area((7, 10), {"grid": [2, 3], "keep": "odd"}) == odd).all()


@pytest.mark.parametrize("grid, keep", [((0, 2), "even"), ((2,), "even"), ((9, 2), "even"),
                                        ((2, 2), "diagonal")])
def test_bad_grids_are_refused(grid, keep):
    with pytest.raises(ValueError, match="blocks"):
        checkerboard((8, 8), grid, keep)


def test_training_area_keeps_the_buffer_from_the_other_blocks_only():
    area = checkerboard((40, 40), (2, 2), "even")
    kept = training_area(area, 10)
    # Top-left block: 10 px from the other blocks on its right and bottom, none at the border.
    assert kept[0, 0] and kept[0, 10] and not kept[0, 11] and kept[10, 0] and not kept[11, 0]
    assert not (kept & ~area).any()
    assert training_area(None, 10) is None
    whole = np.ones((5, 5), bool)
    assert training_area(whole, 3).all()


def test_restricted_labels_are_never_sampled_or_counted():
    labels = np.ones((40, 40), np.uint8)  # tissue
    labels[:, 20:] = 2  # the gene's region
    area = checkerboard((40, 40), (1, 2), "even")  # the left half only
    restricted = restrict_labels(labels, area)
    assert (restricted[:, 20:] == OUTSIDE_AREA).all() and (labels[:, 20:] == 2).all()
    spots = {"GeneA": np.array([[30.0, 5.0], [25.0, 30.0], [5.0, 5.0]])}  # (x, y)
    for mode in ("regions", "spots"):
        sampled = sample_centres(restricted, spots, np.zeros((0, 2)), per_class=50,
                                 pixel_size_um=10.0, rng=np.random.default_rng(0), mode=mode)
        assert (sampled.centres[:, 1] < 20).all()
        assert sampled.available["GeneA"] == 0 or mode == "spots"
    # A niche left out of the models: its share is of the section's blocks, not the image.
    notes = unlearned_notes(restricted, ["background", "tissue", "GeneA"], ["tissue"], {})
    assert "100.0% of this section" in notes["tissue"]


def test_thresholds_are_fitted_inside_the_area_only():
    rng = np.random.default_rng(1)
    mask = np.ones((200, 200), bool)
    dense = rng.uniform(0, [100, 200], size=(4000, 2))  # x < 100: dense
    sparse = rng.uniform([100, 0], [200, 200], size=(400, 2))
    spots = np.concatenate([dense, sparse])
    section = (mask, {"A": spots}, spots, 5.0, 1.0)
    left = np.zeros((200, 200), bool)
    left[:, :100] = True
    whole, _ = fit_thresholds([section], quantity="density")
    inside, _ = fit_thresholds([section], quantity="density", areas=[left])
    assert inside["A"] != whole["A"]  # the contrast lies across the block edge
    with pytest.raises(ValueError, match="areas"):
        fit_thresholds([section], quantity="density", areas=[left, left])
