import numpy as np
import pandas as pd
import pytest

from txmorph.errors import InputError
from txmorph.sampling import class_names, extract_patches, sample_centres


def _section(seed=0, shape=(120, 160)):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    mask[20:100, 20:140] = True
    rows = []
    for gene, (r0, r1, c0, c1), n in [
        ("A", (25, 50, 25, 60), 80),
        ("B", (70, 95, 100, 135), 70),
        ("C", (20, 100, 20, 140), 300),
    ]:
        rows.append(pd.DataFrame({
            "gene": gene, "y": rng.uniform(r0, r1, n), "x": rng.uniform(c0, c1, n)}))
    return pd.concat(rows, ignore_index=True), mask


def test_classes_balanced_and_in_the_right_places():
    spots, mask = _section()
    sampled = sample_centres(spots, mask, ["A", "B"], per_class=30, exclusion_radius_px=8,
                             rng=np.random.default_rng(1))
    counts = np.bincount(sampled.labels, minlength=4)
    assert counts.tolist() == [30, 30, 30, 30]
    names = class_names(["A", "B"])
    rows, cols = sampled.centres.T
    background = sampled.labels == names.index("background")
    assert not mask[rows[background], cols[background]].any()
    assert mask[rows[~background], cols[~background]].all()
    # General tissue keeps its distance from every gene A/B spot.
    ab = spots[spots.gene.isin(["A", "B"])][["y", "x"]].to_numpy()
    tissue = sampled.centres[sampled.labels == names.index("tissue")]
    distances = np.sqrt(((tissue[:, None, :] - np.floor(ab)[None]) ** 2).sum(-1)).min(1)
    assert distances.min() > 8
    # Gene centres sit on that gene's spots.
    gene_a = sampled.centres[sampled.labels == names.index("A")]
    assert (gene_a[:, 0] < 50).all() and (gene_a[:, 1] < 60).all()


def test_balance_follows_the_rarest_class_and_cap():
    spots, mask = _section()
    sampled = sample_centres(spots, mask, ["A", "B"], per_class=1000, exclusion_radius_px=8,
                             rng=np.random.default_rng(1))
    counts = np.bincount(sampled.labels, minlength=4)
    assert len(set(counts.tolist())) == 1
    assert counts[0] == min(sampled.available.values()) == 70


def test_sampling_is_reproducible_and_seed_dependent():
    spots, mask = _section()
    run = lambda seed: sample_centres(spots, mask, ["A", "B"], 25, 8, np.random.default_rng(seed))
    first, again, other = run(3), run(3), run(4)
    assert np.array_equal(first.centres, again.centres)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.centres, other.centres)


def test_tissue_is_topped_up_with_pixels_when_other_genes_are_rare():
    spots, mask = _section()
    spots = spots[spots.gene != "C"]
    sampled = sample_centres(spots, mask, ["A", "B"], 30, 8, np.random.default_rng(0))
    assert np.bincount(sampled.labels).tolist() == [30, 30, 30, 30]


def test_too_few_candidates_is_a_clear_error():
    spots, mask = _section()
    spots = pd.concat([spots[spots.gene != "B"], spots[spots.gene == "B"].head(3)])
    with pytest.raises(InputError, match="class 'B' has only 3 candidate"):
        sample_centres(spots, mask, ["A", "B"], 30, 8, np.random.default_rng(0),
                       min_per_class=10, source="train")


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
