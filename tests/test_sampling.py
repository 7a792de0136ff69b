import numpy as np
import pandas as pd
import pytest

from txmorph.classes import class_names
from txmorph.errors import InputError
from txmorph.patches.sampling import (
    AREA_PER_CANDIDATE_UM2,
    choose_classes,
    extract_patches,
    sample_centres,
)

NAMES = class_names(["A", "B"])


def _section(seed=0, shape=(120, 160), n_b=70):
    """A section: tissue in [20:100, 20:140], class A's region top left, B's bottom right,
    reference labels as the truth rule would give them, and the spots of A, B and C."""
    rng = np.random.default_rng(seed)
    reference = np.zeros(shape, dtype=np.uint8)
    reference[20:100, 20:140] = 1
    reference[25:50, 25:60] = 2
    reference[70:95, 100:135] = 3
    spots = {}
    for gene, (r0, r1, c0, c1), n in [
        ("A", (25, 50, 25, 60), 80),
        ("B", (70, 95, 100, 135), n_b),
        ("C", (20, 100, 20, 140), 300),
    ]:
        spots[gene] = np.column_stack([rng.uniform(c0, c1, n), rng.uniform(r0, r1, n)])
    return reference, {"A": spots["A"], "B": spots["B"]}, spots["C"]


PIXEL_UM = 2.0  # so that each class region holds more than 30 cell-sized candidates


def _sample(mode="spots", per_class=30, seed=1, **kwargs):
    reference, class_spots, other = _section(**kwargs)
    return reference, sample_centres(reference, class_spots, other, per_class=per_class,
                                     pixel_size_um=PIXEL_UM, rng=np.random.default_rng(seed),
                                     mode=mode)


@pytest.mark.parametrize("mode", ["spots", "regions"])
def test_centres_lie_in_their_class_places(mode):
    reference, sampled = _sample(mode)
    assert np.bincount(sampled.labels, minlength=4).tolist() == [30, 30, 30, 30]
    rows, cols = sampled.centres.T
    at = reference[rows, cols]
    for label, name in enumerate(NAMES):
        mine = at[sampled.labels == label]
        if name in ("background", "tissue") or mode == "regions":
            assert (mine == label).all(), name  # inside its own reference region
        else:
            assert (mine >= 1).all(), name  # a gene's spots anywhere in the tissue


def test_general_tissue_exists_at_real_spot_densities():
    # Dense spots of the chosen genes everywhere (the case where a distance rule found no
    # tissue at all): general tissue is what lies outside the class regions.
    reference, class_spots, other = _section()
    rng = np.random.default_rng(5)
    everywhere = np.column_stack([rng.uniform(20, 140, 5000), rng.uniform(20, 100, 5000)])
    class_spots["A"] = np.concatenate([class_spots["A"], everywhere])
    sampled = sample_centres(reference, class_spots, other, per_class=30, pixel_size_um=1.0,
                             rng=np.random.default_rng(0))
    assert (sampled.labels == NAMES.index("tissue")).sum() == 30


def test_each_class_keeps_its_own_count_no_starvation():
    reference, sampled = _sample(per_class=1000, n_b=12)
    counts = np.bincount(sampled.labels, minlength=4)
    assert counts[NAMES.index("B")] == 12
    assert counts[NAMES.index("A")] == 80  # not cut down to the rarest class
    # Areas count one candidate per AREA_PER_CANDIDATE_UM2.
    background_area = int((reference == 0).sum())
    expected = int(background_area * PIXEL_UM**2 / AREA_PER_CANDIDATE_UM2)
    assert sampled.available["background"] == expected
    assert counts[0] == min(1000, sampled.available["background"])


def test_sampling_is_reproducible_and_seed_dependent():
    _, first = _sample(seed=3)
    _, again = _sample(seed=3)
    _, other = _sample(seed=4)
    assert np.array_equal(first.centres, again.centres)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.centres, other.centres)


def test_tissue_is_topped_up_with_pixels_when_other_genes_are_rare():
    reference, class_spots, other = _section()
    sampled = sample_centres(reference, class_spots, other[:3], per_class=30,
                             pixel_size_um=1.0, rng=np.random.default_rng(0))
    assert (sampled.labels == NAMES.index("tissue")).sum() == 30


def test_class_set_drops_missing_background_and_refuses_missing_genes():
    full = {"background": 500, "tissue": 900, "A": 80, "B": 70}
    kept, dropped = choose_classes([full], NAMES, min_per_class=50)
    assert kept == NAMES and dropped == {}
    inside_tissue = dict(full, background=0)
    kept, dropped = choose_classes([inside_tissue, inside_tissue], NAMES, 50, ["s1", "s2"])
    assert kept == ["tissue", "A", "B"]
    assert "tissue throughout" in dropped["background"] and "s1: 0" in dropped["background"]
    # Counts add up over sections.
    kept, _ = choose_classes([dict(full, B=30), dict(full, B=30)], NAMES, 50)
    assert "B" in kept
    with pytest.raises(InputError, match="class 'B' has only 3 candidate"):
        choose_classes([dict(full, B=3)], NAMES, 50, ["train"])


def test_a_niche_the_training_sections_lack_is_left_out_but_two_must_stay():
    names = ["background", "tissue", "niche1", "niche2", "niche3"]
    counts = {"background": 0, "tissue": 0, "niche1": 400, "niche2": 300, "niche3": 4}
    niches = names[2:]
    kept, dropped = choose_classes([counts], names, 50, ["left"], optional=niches)
    assert kept == ["niche1", "niche2"] and "not learnt" in dropped["niche3"]
    with pytest.raises(InputError, match="of the niches can be learned"):
        choose_classes([dict(counts, niche2=3)], names, 50, ["left"], optional=niches)


@pytest.mark.parametrize("patch_size", [8, 9, 32])
def test_patches_are_centred_and_never_out_of_bounds(patch_size):
    image = np.arange(40 * 50, dtype=np.uint16).reshape(40, 50)
    centres = np.array([[0, 0], [39, 49], [20, 25], [0, 49], [5, 3]])
    patches = extract_patches(image, centres, patch_size)
    assert patches.shape == (5, patch_size, patch_size)
    assert patches.dtype == image.dtype
    half = patch_size // 2
    for centre, patch in zip(centres, patches):
        assert patch[half, half] == image[centre[0], centre[1]]
    # Interior patch equals a plain crop; border patches continue by reflection.
    r, c = centres[2]
    assert np.array_equal(patches[2], image[r - half:r - half + patch_size, c - half:c - half + patch_size])
    padded = np.pad(image, patch_size, mode="reflect")
    assert np.array_equal(patches[0], padded[patch_size - half:2 * patch_size - half,
                                             patch_size - half:2 * patch_size - half])
