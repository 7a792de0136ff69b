import json

import h5py
import numpy as np

from txmorph.patches.patchdata import (PatchSet, concatenate, read_patch_labels, read_patch_set,
                                      write_patch_set)


def _patch_set(n=6, size=16, section="s1"):
    rng = np.random.default_rng(0)
    return PatchSet(
        images=rng.integers(0, 4000, (n, size, size)).astype(np.uint16),
        labels=np.arange(n) % 4,
        centres=rng.integers(0, 100, (n, 2)),
        section=np.zeros(n, dtype=np.int64),
        classes=["background", "tissue", "A", "B"],
        sections=[section],
        section_intensity=np.array([[10.0, 3000.0]]),
        pixel_size=np.array([0.5]),
        patch_size=size,
        config={"seed": 1, "genes": ["A", "B"]},
    )


def test_hdf5_layout(tmp_path):
    path = tmp_path / "size16.h5"
    write_patch_set(path, _patch_set())
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (6, 16, 16) and f["images"].dtype == np.uint16
        assert f["images"].chunks == (1, 16, 16)
        assert f["images"].compression == "gzip"
        assert f["labels"].shape == (6,) and f["centres"].shape == (6, 2)
        assert f["section"].shape == (6,)
        assert list(f.attrs["classes"]) == ["background", "tissue", "A", "B"]
        assert f.attrs["patch_size"] == 16
        assert np.allclose(f.attrs["pixel_size"], [0.5])
        assert json.loads(f.attrs["config"])["genes"] == ["A", "B"]
    assert [p.name for p in tmp_path.iterdir()] == ["size16.h5"]  # no temporary file left


def test_round_trip_and_concatenate(tmp_path):
    joined = concatenate([_patch_set(section="a"), _patch_set(n=4, section="b")])
    assert joined.sections == ["a", "b"]
    assert joined.section.tolist() == [0] * 6 + [1] * 4
    path = tmp_path / "p.h5"
    write_patch_set(path, joined)
    back = read_patch_set(path)
    assert np.array_equal(back.images, joined.images)
    assert np.array_equal(back.section, joined.section)
    assert back.section_intensity.shape == (2, 2)
    assert back.config == joined.config


def test_patch_labels_without_the_images(tmp_path):
    # The baseline reads centres and labels only (read_patch_labels), the same as a whole read.
    joined = concatenate([_patch_set(section="a"), _patch_set(n=4, section="b")])
    write_patch_set(tmp_path / "p.h5", joined)
    got, whole = read_patch_labels(tmp_path / "p.h5"), read_patch_set(tmp_path / "p.h5")
    assert got.sections == ["a", "b"] and got.classes == ["background", "tissue", "A", "B"]
    for name in ("centres", "labels", "section"):
        assert np.array_equal(getattr(got, name), getattr(joined, name)), name
        assert np.array_equal(getattr(whole, name), getattr(joined, name)), name
    assert not hasattr(got, "images")
