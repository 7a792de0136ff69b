"""The import rules on instrument-style inputs: a pyramidal multi-channel OME-TIFF, Xenium
transcripts in micrometres, a pixel size from the OME metadata, a region and downsampling."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_snakemake, tiny_config

pytestmark = pytest.mark.e2e

UM_PER_PX = 0.2125  # Xenium morphology image, full resolution


def _write_inputs(data) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (2, 256, 240), dtype=np.uint16)
    image[1] = 65535  # a second channel that must not be picked
    options = dict(photometric="minisblack", tile=(64, 64), compression="zlib")
    with tifffile.TiffWriter(data / "morphology.ome.tif", bigtiff=True) as tif:
        tif.write(image, subifds=1, metadata={"axes": "CYX", "PhysicalSizeX": UM_PER_PX,
                                              "PhysicalSizeY": UM_PER_PX,
                                              "Channel": {"Name": ["DAPI", "PolyT"]}},
                  **options)
        tif.write(image[:, ::2, ::2], subfiletype=1, **options)
    # Level 1 is 128 x 120 px of 0.425 µm; spots at level-1 pixels (x, y) = µm / 0.425.
    genes = ["Prox1", "Mbp", "NegControlProbe_00042", "Prox1", "Mbp", "Mbp"]
    level1 = np.array([[10.0, 20.0], [90.0, 30.0], [40.0, 40.0], [50.0, 100.0], [20.0, 8.0],
                       [115.0, 60.0]])
    qv = [30.0, 35.0, 40.0, 5.0, 25.0, 39.0]  # the fourth is below min_qv 20
    frame = pd.DataFrame({
        "transcript_id": np.arange(6, dtype=np.uint64), "cell_id": ["UNASSIGNED"] * 6,
        "overlaps_nucleus": [0] * 6, "feature_name": genes,
        "x_location": level1[:, 0] * 2 * UM_PER_PX, "y_location": level1[:, 1] * 2 * UM_PER_PX,
        "z_location": [10.0] * 6, "qv": qv,
    })
    frame.to_parquet(data / "transcripts.parquet")


def test_xenium_section_on_a_pyramid_level(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_inputs(data)
    config = copy.deepcopy(tiny_config())
    config["sections"]["train"] = {
        "role": "train", "image": "data/morphology.ome.tif", "spots": "data/transcripts.parquet",
        "spots_format": "xenium", "level": 1, "channel": "dapi", "downsample": 2,
        "region": {"x": [0, 100]},  # level-1 pixels: the spot at x = 115 is cut off
    }
    targets = ["results/sections/train/image.json", "results/sections/train/spots.json"]
    result = run_snakemake(tmp_path, "--cores", "1", *targets, config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    image = json.loads((tmp_path / targets[0]).read_text())
    assert image["level"] == 1 and image["channel_name"] == "DAPI"
    assert image["shape"] == [64, 50] and image["pixel_size_um"] == pytest.approx(0.85)
    canonical = tifffile.imread(tmp_path / "results/sections/train/image.tif")
    assert canonical.max() < 4000  # the DAPI channel, not the saturated one
    spots_info = json.loads((tmp_path / targets[1]).read_text())
    assert spots_info["filtered"] == {"negative_controls": 1, "not_genes": 0, "low_quality": 1,
                                      "outside_image": 0, "outside_region": 1}
    spots = pd.read_parquet(tmp_path / "results/sections/train/spots.parquet")
    assert list(spots["gene"]) == ["Prox1", "Mbp", "Mbp"]
    np.testing.assert_allclose(spots[["x", "y"]].to_numpy(), [[5, 10], [45, 15], [10, 4]],
                               atol=1e-9)
