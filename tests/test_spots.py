"""txmorph.io.spots: from a vendor table to spots in pixels of the canonical (cropped, downsampled) image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from txmorph.errors import InputError
from txmorph.io.spots import crop_spots, import_spots, spot_options, write_spots

PARAMS = {"name": "s", "spots_format": "table", "units": "px", "pixel_size_um": 0.5,
          "columns": {"gene": "gene", "x": "x", "y": "y"}, "origin_um": [0.0, 0.0],
          "transform": None, "min_qv": 20, "fov_positions": None, "downsample": 1,
          "region": None, "spots_outside_image": "error"}
INFO = {"level_scale": 1.0, "source_shape": [100, 80], "shape": [100, 80]}


def test_spot_options_scale_pixel_coordinates_only() -> None:
    assert spot_options(PARAMS, 0.25)["image_scale"] == 0.25  # px of level 0 -> level 2
    um = dict(PARAMS, units="um")
    assert spot_options(um, 0.25)["image_scale"] == 1.0  # pixel_size_um is per level pixel
    assert spot_options(dict(um, transform=[[2, 0, 0], [0, 2, 0]]), 0.5)["image_scale"] == 0.5
    assert "transform" not in spot_options(PARAMS, 1.0)  # unset keys are not passed on


def test_crop_and_downsample() -> None:
    spots = pd.DataFrame({"gene": ["a", "b", "c"], "x": [5.0, 47.9, 60.0], "y": [3.0, 9.5, 1.0]})
    kept, outside = crop_spots(spots, {"x": [4, 48]}, 4)
    assert outside == 1 and list(kept["gene"]) == ["a", "b"]
    np.testing.assert_allclose(kept["x"], [0.25, 10.975])
    np.testing.assert_allclose(kept["y"], [0.75, 2.375])


def test_crop_leaves_its_input_and_write_spots(tmp_path) -> None:
    spots = pd.DataFrame({"gene": ["a", "b"], "x": [5.0, 7.0], "y": [3.0, 9.0]}, index=[4, 9])
    before = spots.copy()
    kept, outside = crop_spots(spots, None, 1)  # nothing to do: the table as it is
    assert outside == 0
    pd.testing.assert_frame_equal(kept, before)
    kept, outside = crop_spots(spots, {"y": [4, 10]}, 2)
    pd.testing.assert_frame_equal(spots, before)
    assert outside == 1 and kept.index.tolist() == [9] and kept["y"].tolist() == [2.5]
    write_spots(kept, tmp_path / "spots.parquet")
    written = pd.read_parquet(tmp_path / "spots.parquet")
    assert list(written.columns) == ["gene", "x", "y"] and written.index.tolist() == [0]
    assert written["gene"].tolist() == ["b"] and written["x"].dtype == np.float64


def test_import_spots_from_um_table(tmp_path) -> None:
    path = tmp_path / "spots.csv"
    path.write_text("gene,x_um,y_um\nA,10,20\nB,30.5,5\nA,39,49\nB,45,1\n")
    params = dict(PARAMS, units="um", columns={"gene": "gene", "x": "x_um", "y": "y_um"},
                  downsample=2, region={"x": [10, 80]}, spots_outside_image="drop")
    info = dict(INFO, shape=[50, 35])
    messages: list[str] = []
    spots, summary = import_spots(str(path), params, info, ["A", "B"], messages.append)
    # um -> px (/0.5): (20, 40), (61, 10), (78, 98), (90, 2): the last lies off the 80-px width.
    assert summary["filtered"] == {"outside_image": 1, "outside_region": 0}
    np.testing.assert_allclose(spots[["x", "y"]].to_numpy(), [[5, 20], [25.5, 5], [34, 49]])
    assert summary["spots_per_gene"] == {"A": 2, "B": 1}
    assert any("outside the image" in m for m in messages)


def test_import_spots_gene_lost_to_region(tmp_path) -> None:
    path = tmp_path / "spots.csv"
    path.write_text("gene,x,y\nA,1,1\nB,70,1\n")
    params = dict(PARAMS, region={"x": [0, 40]})
    with pytest.raises(InputError, match="'B'"):
        import_spots(str(path), params, dict(INFO, shape=[100, 40]), ["A", "B"])
