"""Tests for txmorph.io.vendors: vendor transcript tables -> spots in image pixels.

All fixtures are written to tmp_path in the vendors' documented column layouts (with the extra
columns the real files have), so nothing binary is committed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from txmorph.errors import InputError
from txmorph.io import vendors
from txmorph.io.vendors import SpotTable, read_spot_table

# The validated config always carries columns (the schema's default); direct calls pass them.
COLUMNS = {"gene": "gene", "x": "x", "y": "y"}
XENIUM_UM = 0.2125
MERSCOPE_UM = 0.108


def error_of(path, options) -> str:
    with pytest.raises(InputError) as info:
        read_spot_table(path, options)
    return str(info.value)


def coords(table: SpotTable) -> np.ndarray:
    return table.spots[["x", "y"]].to_numpy()


def check_frame(table: SpotTable) -> None:
    """The uniform output: gene (str), x, y (float64), int index of data rows."""
    spots = table.spots
    assert list(spots.columns) == ["gene", "x", "y"]
    assert spots["x"].dtype == np.float64 and spots["y"].dtype == np.float64
    assert all(isinstance(g, str) for g in spots["gene"])
    assert spots.index.dtype == np.int64
    assert isinstance(table.description, str) and "\n" not in table.description


# ----------------------------------------------------------------------------- Xenium

# gene, x_um, y_um, qv, is_gene -> what happens to it
XENIUM_ROWS = [
    ("ACTB", 2.125, 4.25, 30.0, True),  # kept: pixel (10, 20)
    ("NegControlProbe_00042", 1.0, 1.0, 40.0, False),  # negative control
    ("negcontrolcodeword_0500", 1.0, 1.0, 40.0, False),  # prefix is case-insensitive
    ("UnassignedCodeword_0001", 1.0, 1.0, 40.0, False),
    ("GAPDH", 1.0, 1.0, 10.0, True),  # low quality
    ("BLANK_0001", 1.0, 1.0, 5.0, False),  # control first, not counted as low quality too
    ("Intergenic_Region_1", 1.0, 1.0, 40.0, False),
    ("EPCAM", 1.0, 1.0, 30.0, False),  # is_gene False
    ("DeprecatedCodeword_3", 1.0, 1.0, 40.0, False),
    ("EPCAM", 0.2125, 0.425, 20.0, True),  # qv == min_qv is kept: pixel (1, 2)
]
XENIUM_FILTERED = {"negative_controls": 6, "not_genes": 1, "low_quality": 1}


def xenium_frame(rows=XENIUM_ROWS) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame({
        "transcript_id": np.arange(281474976710656, 281474976710656 + n, dtype=np.uint64),
        "cell_id": ["aaaaaaaa-1"] * n,
        "overlaps_nucleus": np.ones(n, dtype=np.uint8),
        "feature_name": [r[0] for r in rows],
        "x_location": np.array([r[1] for r in rows], dtype=np.float32),
        "y_location": np.array([r[2] for r in rows], dtype=np.float32),
        "z_location": np.full(n, 12.5, dtype=np.float32),
        "qv": np.array([r[3] for r in rows], dtype=np.float32),
        "fov_name": ["A1"] * n,
        "nucleus_distance": np.zeros(n, dtype=np.float32),
        "codeword_index": np.arange(n, dtype=np.int32),
        "is_gene": [r[4] for r in rows],
    })


def write_xenium_parquet(path: Path, frame: pd.DataFrame, bytes_names: bool = True) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if bytes_names:  # older Xenium outputs store feature_name as binary
        names = pa.array([s.encode() for s in frame["feature_name"]], type=pa.binary())
        index = table.schema.get_field_index("feature_name")
        table = table.set_column(index, "feature_name", names)
    pq.write_table(table, path)
    return path


def test_xenium_parquet_bytes_names_filters_and_pixels(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame())
    assert pq.read_schema(path).field("feature_name").type == pa.binary()
    table = read_spot_table(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    check_frame(table)
    assert table.spots["gene"].tolist() == ["ACTB", "EPCAM"]
    assert table.spots.index.tolist() == [0, 9]
    np.testing.assert_allclose(coords(table), [[10, 20], [1, 2]], atol=1e-4)
    assert table.filtered == XENIUM_FILTERED
    assert "xenium" in table.description and str(path) in table.description


def test_xenium_dictionary_encoded_names(tmp_path: Path) -> None:
    frame = xenium_frame()
    frame["feature_name"] = pd.Categorical(frame["feature_name"])
    path = tmp_path / "transcripts.parquet"
    frame.to_parquet(path)
    assert pa.types.is_dictionary(pq.read_schema(path).field("feature_name").type)
    table = read_spot_table(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    check_frame(table)
    assert table.spots["gene"].tolist() == ["ACTB", "EPCAM"]
    assert table.filtered == XENIUM_FILTERED


def test_xenium_min_qv_and_origin(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame(), bytes_names=False)
    options = {"format": "xenium", "pixel_size_um": 0.5, "origin_um": [0.2, 0.25], "min_qv": 25}
    table = read_spot_table(path, options)
    assert table.spots["gene"].tolist() == ["ACTB"]  # EPCAM at qv 20 now too low
    assert table.filtered == {"negative_controls": 6, "not_genes": 1, "low_quality": 2}
    expected = [[(2.125 - 0.2) / 0.5, (4.25 - 0.25) / 0.5]]
    np.testing.assert_allclose(coords(table), expected, atol=1e-5)


def test_xenium_csv_gz_in_chunks_keeps_line_numbers(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(vendors, "CHUNK_ROWS", 3)
    frame = xenium_frame().drop(columns="is_gene")  # CSV exports may lack is_gene
    path = tmp_path / "transcripts.csv.gz"
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, index=False)
    table = read_spot_table(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert table.spots["gene"].tolist() == ["ACTB", "EPCAM", "EPCAM"]
    assert table.spots.index.tolist() == [0, 7, 9]  # data rows across chunks
    assert table.filtered == {"negative_controls": 6, "not_genes": 0, "low_quality": 1}


def test_vendor_tables_in_chunks_equal_the_whole_table(tmp_path: Path, monkeypatch) -> None:
    # LATE is first seen in the last 3-row chunk; the CSV has a blank line as data row 5.
    frame = xenium_frame(XENIUM_ROWS + [("LATE", 4.25, 2.125, 30.0, True)])
    xenium_csv = tmp_path / "transcripts.csv"
    lines = frame.to_csv(index=False).splitlines()
    xenium_csv.write_text("\n".join(lines[:6] + [""] + lines[6:]) + "\n")
    xenium_parquet = write_xenium_parquet(tmp_path / "transcripts.parquet", frame)
    cosmx = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(cosmx, index=False)
    positions = tmp_path / "pos.csv"
    positions.write_text("fov,x_global_px,y_global_px\n1,4000,5000\n2,9000,5000\n")
    reads = [
        (xenium_csv, {"format": "xenium", "pixel_size_um": XENIUM_UM}),
        (xenium_parquet, {"format": "xenium", "pixel_size_um": XENIUM_UM}),
        (cosmx, {"format": "cosmx", "fov_positions": str(positions)}),
    ]
    whole = [read_spot_table(path, options) for path, options in reads]
    monkeypatch.setattr(vendors, "CHUNK_ROWS", 3)
    for (path, options), expected in zip(reads, whole):
        streamed = read_spot_table(path, options)
        check_frame(streamed)
        pd.testing.assert_frame_equal(streamed.spots, expected.spots)
        assert streamed.filtered == expected.filtered
    assert whole[0].spots["gene"].tolist() == ["ACTB", "EPCAM", "LATE"]
    assert whole[0].spots.index.tolist() == [0, 10, 11]  # data rows, the blank line counted
    assert whole[1].spots.index.tolist() == [0, 9, 10]
    np.testing.assert_allclose(coords(whole[1])[2], [20, 10], atol=1e-4)
    np.testing.assert_allclose(coords(whole[2]), [[4010, 5010], [9020, 5020], [9030, 5030]])


def test_vendor_bad_coordinate_in_a_later_chunk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(vendors, "CHUNK_ROWS", 3)
    frame = xenium_frame()
    frame["y_location"] = frame["y_location"].astype(object)
    frame.loc[1, "y_location"] = "?"  # a negative control: dropped, so not checked
    frame.loc[9, "y_location"] = "4,5"  # EPCAM, kept, in the fourth chunk
    path = tmp_path / "transcripts.csv"
    frame.to_csv(path, index=False)
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert message == (
        f"spots file '{path}': column 'y_location', line 11 (data row 10): value '4,5' is not a "
        "number (it has a decimal comma; use a decimal point). Fix or remove that row."
    )


def test_xenium_csv_text_is_gene_and_bytes_repr(tmp_path: Path) -> None:
    frame = xenium_frame()
    frame["feature_name"] = [f"b'{g}'" for g in frame["feature_name"]]  # CSV made from bytes
    path = tmp_path / "transcripts.csv"
    frame.to_csv(path, index=False)  # is_gene written as True/False text
    table = read_spot_table(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert table.spots["gene"].tolist() == ["ACTB", "EPCAM"]
    assert table.filtered == XENIUM_FILTERED


def test_xenium_inline_transform_and_image_scale(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame())
    s = 1 / XENIUM_UM
    options = {
        "format": "xenium", "pixel_size_um": XENIUM_UM * 4, "image_scale": 0.25,
        "transform": [[s, 0, 0], [0, s, 0]],
    }
    table = read_spot_table(path, options)
    np.testing.assert_allclose(coords(table), [[2.5, 5], [0.25, 0.5]], atol=1e-4)
    assert "transform" in table.description and "image_scale 0.25" in table.description
    # pixel_size_um that disagrees with transform x image_scale is refused
    message = error_of(path, {**options, "pixel_size_um": XENIUM_UM})
    assert "pixel_size_um" in message and "0.85" in message and str(path) in message


def test_xenium_image_scale_without_transform_is_refused(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame())
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM, "image_scale": 0.25})
    assert "image_scale" in message and "pixel_size_um" in message and str(path) in message


def test_xenium_missing_qv(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame().drop(columns="qv"))
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert str(path) in message and "'qv' not found" in message
    assert "x_location" in message and "Xenium" in message  # present and expected columns


def test_xenium_cells_table_is_recognised(tmp_path: Path) -> None:
    cells = pd.DataFrame({
        "cell_id": ["a-1"], "x_centroid": [1.0], "y_centroid": [2.0], "transcript_counts": [5],
    })
    path = tmp_path / "cells.parquet"
    cells.to_parquet(path)
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert "cell table" in message and "transcripts.parquet" in message


def test_xenium_bad_qv_value_names_line(tmp_path: Path) -> None:
    frame = xenium_frame()
    frame["qv"] = frame["qv"].astype(object)
    frame.loc[3, "qv"] = "high"
    path = tmp_path / "transcripts.csv"
    frame.to_csv(path, index=False)
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM})
    assert "'qv'" in message and "line 5" in message and "'high'" in message


def test_xenium_all_dropped(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame())
    message = error_of(path, {"format": "xenium", "pixel_size_um": XENIUM_UM, "min_qv": 99})
    assert "all 10 transcripts were dropped" in message and "min_qv" in message


def test_units_um_without_pixel_size(tmp_path: Path) -> None:
    path = write_xenium_parquet(tmp_path / "transcripts.parquet", xenium_frame())
    for size in (None, 0, -1.0):
        message = error_of(path, {"format": "xenium", "pixel_size_um": size})
        assert "pixel_size_um" in message and str(path) in message
    csv = tmp_path / "spots.csv"
    csv.write_text("gene,x,y\nA,1,2\n")
    message = error_of(csv, {"units": "um", "pixel_size_um": 0, "columns": COLUMNS})
    assert "pixel_size_um" in message and str(csv) in message


# ----------------------------------------------------------------------------- MERSCOPE


def merscope_frame() -> pd.DataFrame:
    rows = [  # gene, global_x, global_y (um)
        ("Snap25", 100.0, 200.0),
        ("Blank-12", 101.0, 201.0),
        ("Gad1", 110.8, 210.8),
        ("blank-3", 99.0, 99.0),
    ]
    n = len(rows)
    return pd.DataFrame({
        "barcode_id": np.arange(n),
        "global_x": [r[1] for r in rows],
        "global_y": [r[2] for r in rows],
        "global_z": np.zeros(n),
        "x": [1500.5, 1510.2, 1600.1, 12.0],  # FOV-local pixels
        "y": [800.5, 810.2, 900.1, 13.0],
        "fov": [0, 0, 1, 1],
        "gene": [r[0] for r in rows],
        "transcript_id": [f"ENSMUST{i:011d}" for i in range(n)],
        "cell_id": [-1, 12, 12, -1],
    })


def write_merscope(path: Path, frame: pd.DataFrame | None = None) -> Path:
    frame = merscope_frame() if frame is None else frame
    frame.to_csv(path, index=True)  # the real file starts with an unnamed index column
    return path


def write_transform(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


MERSCOPE_A = np.array([[1 / MERSCOPE_UM, 0, -500.0], [0, 1 / MERSCOPE_UM, -1000.0], [0, 0, 1]])
MERSCOPE_TEXT = "\n".join(" ".join(repr(float(v)) for v in row) for row in MERSCOPE_A) + "\n"


def test_merscope_transform_file(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    assert path.read_text().startswith(",barcode_id,global_x")
    transform = write_transform(tmp_path / "micron_to_mosaic_pixel_transform.csv", MERSCOPE_TEXT)
    options = {"format": "merscope", "transform": str(transform), "pixel_size_um": MERSCOPE_UM * 2,
               "image_scale": 0.5}
    table = read_spot_table(path, options)
    check_frame(table)
    assert table.spots["gene"].tolist() == ["Snap25", "Gad1"]
    assert table.spots.index.tolist() == [0, 2]
    assert table.filtered == {"negative_controls": 2}
    um = np.array([[100.0, 200.0, 1], [110.8, 210.8, 1]])
    expected = (um @ MERSCOPE_A.T)[:, :2] * 0.5
    np.testing.assert_allclose(coords(table), expected, rtol=1e-9)
    assert "micron_to_mosaic_pixel_transform.csv" in table.description


def test_merscope_comma_transform_and_gz(tmp_path: Path) -> None:
    path = tmp_path / "detected_transcripts.csv.gz"
    with gzip.open(path, "wt") as f:
        merscope_frame().to_csv(f, index=True)
    transform = write_transform(tmp_path / "t.csv", MERSCOPE_TEXT.replace(" ", ","))
    table = read_spot_table(path, {"format": "merscope", "transform": transform,
                                   "pixel_size_um": MERSCOPE_UM})
    expected = [100 / MERSCOPE_UM - 500, 200 / MERSCOPE_UM - 1000]
    np.testing.assert_allclose(coords(table)[0], expected)


def test_merscope_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + [""] + lines[2:] + [""]) + "\n")  # blank line 3 and last
    table = read_spot_table(path, {"format": "merscope", "pixel_size_um": 0.1})
    assert table.spots.index.tolist() == [0, 3]  # Gad1 is now on line 5 (data row 3)


def test_merscope_pixel_size_and_origin(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    table = read_spot_table(path, {"format": "merscope", "pixel_size_um": 0.4,
                                   "origin_um": [90.0, 180.0]})
    np.testing.assert_allclose(coords(table), [[25, 50], [52, 77]], atol=1e-9)


def test_merscope_without_global_x(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv",
                          merscope_frame().drop(columns=["global_x", "global_y"]))
    message = error_of(path, {"format": "merscope", "pixel_size_um": MERSCOPE_UM})
    assert str(path) in message and "'global_x'" in message and "global_y" in message
    assert "detected_transcripts.csv" in message and "field of view" in message


def test_merscope_file_read_as_xenium_hints_format(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    message = error_of(path, {"format": "xenium", "pixel_size_um": MERSCOPE_UM})
    assert "'feature_name'" in message and "format: merscope" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9.26 0\n0 9.26\n", "found 2 rows of 2 numbers"),
        ("9.26 0 1\n0 abc 2\n0 0 1\n", "line 2: 'abc' is not a number"),
        ("9.26 0 1\n18.52 0 2\n0 0 1\n", "singular"),
        ("9.26 0 1\n0 9.26 2\n0 1 1\n", "last row is 0 1 1"),
        ("9.26 0 1\n0 nan 2\n0 0 1\n", "non-finite"),
        ("", "found 0 rows"),
    ],
)
def test_bad_transform_file(tmp_path: Path, text: str, problem: str) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    transform = write_transform(tmp_path / "bad_transform.csv", text)
    message = error_of(path, {"format": "merscope", "transform": str(transform)})
    assert f"transform file '{transform}'" in message and problem in message


def test_missing_transform_file(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    message = error_of(path, {"format": "merscope", "transform": str(tmp_path / "nope.csv")})
    assert "nope.csv" in message and "not found" in message


@pytest.mark.parametrize("matrix", [[[1, 0], [0, 1]], [[1, 0, 0]], [[1, 0, "a"], [0, 1, 0]], "x"])
def test_bad_inline_transform(tmp_path: Path, matrix) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    if matrix == "x":  # a string is a path
        message = error_of(path, {"format": "merscope", "transform": matrix})
        assert "not found" in message
        return
    message = error_of(path, {"format": "merscope", "transform": matrix})
    assert "inline 'transform'" in message and str(path) in message


def test_transform_with_origin_is_refused(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    transform = write_transform(tmp_path / "t.csv", MERSCOPE_TEXT)
    message = error_of(path, {"format": "merscope", "transform": str(transform),
                              "origin_um": [1, 2]})
    assert "origin_um" in message and "transform" in message


# ----------------------------------------------------------------------------- CosMx

COSMX_TARGETS = [
    "CD3E", "NegPrb3", "Negative12", "SystemControl7", "FalseCode0042", "MS4A1", "CD3E",
]


def cosmx_frame(global_coords: bool = True) -> pd.DataFrame:
    n = len(COSMX_TARGETS)
    frame = pd.DataFrame({
        "fov": [1, 1, 1, 2, 2, 2, 2],
        "cell_ID": [0, 3, 3, 5, 0, 7, 7],
        "x_global_px": [4010.0, 0, 0, 0, 0, 9020.0, 9030.0],
        "y_global_px": [5010.0, 0, 0, 0, 0, 5020.0, 5030.0],
        "x_local_px": [10.0, 1, 1, 1, 1, 20.0, 30.0],
        "y_local_px": [10.0, 1, 1, 1, 1, 20.0, 30.0],
        "z": np.zeros(n, dtype=int),
        "target": COSMX_TARGETS,
        "CellComp": ["Nuclear", "None", "None", "Cytoplasm", "None", "Membrane", "Membrane"],
    })
    return frame if global_coords else frame.drop(columns=["x_global_px", "y_global_px"])


def test_cosmx_global_pixels_and_image_scale(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv.gz"
    with gzip.open(path, "wt") as f:
        cosmx_frame().to_csv(f, index=False)
    table = read_spot_table(path, {"format": "cosmx", "pixel_size_um": 0.24056, "image_scale": 0.5})
    check_frame(table)
    assert table.spots["gene"].tolist() == ["CD3E", "MS4A1", "CD3E"]
    assert table.spots.index.tolist() == [0, 5, 6]
    assert table.filtered == {"negative_controls": 4}
    np.testing.assert_allclose(coords(table), [[2005, 2505], [4510, 2510], [4515, 2515]])


def test_cosmx_local_plus_fov_positions_px(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(path, index=False)
    positions = tmp_path / "Run5_fov_positions_file.csv"
    positions.write_text("fov,x_global_px,y_global_px\n1,4000,5000\n2,9000,5000\n3,0,0\n")
    table = read_spot_table(path, {"format": "cosmx", "pixel_size_um": 0.12028,
                                   "fov_positions": str(positions)})
    np.testing.assert_allclose(coords(table), [[4010, 5010], [9020, 5020], [9030, 5030]])
    assert "fov" in table.description.lower()


def test_cosmx_fov_positions_mm(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(path, index=False)
    positions = tmp_path / "Run5_fov_positions_file.csv"
    positions.write_text("Slide,FOV,X_mm,Y_mm\n1,1,0.5,1.0\n1,2,1.5,1.0\n")
    table = read_spot_table(path, {"format": "cosmx", "pixel_size_um": 0.25,
                                   "fov_positions": positions, "image_scale": 0.5})
    # one CosMx pixel = 0.25 * 0.5 um; offsets in CosMx px = mm * 1000 / 0.125
    local = np.array([[10, 10], [20, 20], [30, 30]])
    offsets = np.array([[4000, 8000], [12000, 8000], [12000, 8000]])
    np.testing.assert_allclose(coords(table), (local + offsets) * 0.5)


def test_cosmx_fov_missing_from_positions(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(path, index=False)
    positions = tmp_path / "pos.csv"
    positions.write_text("fov,x_global_px,y_global_px\n1,4000,5000\n")
    message = error_of(path, {"format": "cosmx", "fov_positions": str(positions)})
    assert "fov 2" in message and "line 7" in message and str(path) in message
    assert "pos.csv" in message


def test_cosmx_local_only_needs_fov_positions(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(path, index=False)
    message = error_of(path, {"format": "cosmx"})
    assert "fov_positions" in message and str(path) in message


def test_cosmx_duplicate_fov_in_positions(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame(global_coords=False).to_csv(path, index=False)
    positions = tmp_path / "pos.csv"
    positions.write_text("fov,x_global_px,y_global_px\n1,4000,5000\n2,0,0\n1,0,0\n")
    message = error_of(path, {"format": "cosmx", "fov_positions": str(positions)})
    assert "fov 1 appears more than once" in message and "line 2" in message and "line 4" in message


def test_cosmx_missing_target_and_transform_refused(tmp_path: Path) -> None:
    path = tmp_path / "Run5_tx_file.csv"
    cosmx_frame().drop(columns="target").to_csv(path, index=False)
    message = error_of(path, {"format": "cosmx"})
    assert "'target' not found" in message and "CosMx" in message and "CellComp" in message
    cosmx_frame().to_csv(path, index=False)
    message = error_of(path, {"format": "cosmx", "transform": [[1, 0, 0], [0, 1, 0]]})
    assert "transform" in message and "already pixels" in message


# ----------------------------------------------------------------------------- table format


def test_table_csv_px_default(tmp_path: Path) -> None:
    path = tmp_path / "spots.csv"
    path.write_text("gene,x,y,extra\nA,1.5,2.5,z\nNegPrb1,3,4,z\n")
    table = read_spot_table(path, {"pixel_size_um": 0.5, "columns": COLUMNS})
    check_frame(table)
    assert table.spots["gene"].tolist() == ["A", "NegPrb1"]  # nothing dropped
    assert table.filtered == {}
    np.testing.assert_allclose(coords(table), [[1.5, 2.5], [3, 4]])
    scaled = read_spot_table(path, {"format": "table", "units": "px", "image_scale": 2,
                                   "columns": COLUMNS})
    np.testing.assert_allclose(coords(scaled), [[3, 5], [6, 8]])


def test_table_csv_um_with_origin_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "spots.tsv"
    path.write_text("Gene\tX_um\tY_um\nA\t11\t22\nB\t12\t24\n")
    options = {"format": "table", "units": "um", "pixel_size_um": 0.5, "origin_um": [10, 20],
               "columns": {"gene": "Gene", "x": "X_um", "y": "Y_um"}}
    table = read_spot_table(path, options)
    np.testing.assert_allclose(coords(table), [[2, 4], [4, 8]])
    assert "origin (10, 20)" in table.description


def test_table_parquet(tmp_path: Path) -> None:
    path = tmp_path / "spots.parquet"
    pd.DataFrame({"gene": ["A", "B"], "x": [1.0, 2.0], "y": [3.0, 4.0]}).to_parquet(path)
    table = read_spot_table(path, {"format": "table", "units": "px", "columns": COLUMNS})
    assert table.spots["gene"].tolist() == ["A", "B"]
    np.testing.assert_allclose(coords(table), [[1, 3], [2, 4]])


def test_table_px_refuses_origin(tmp_path: Path) -> None:
    path = tmp_path / "spots.csv"
    path.write_text("gene,x,y\nA,1,2\n")
    message = error_of(path, {"units": "px", "origin_um": [5, 5], "columns": COLUMNS})
    assert "origin_um" in message and str(path) in message


# ----------------------------------------------------------------------------- options


def test_unknown_format_and_units(tmp_path: Path) -> None:
    path = tmp_path / "spots.csv"
    path.write_text("gene,x,y\nA,1,2\n")
    message = error_of(path, {"format": "visium"})
    assert "'visium'" in message and str(path) in message
    assert all(f in message for f in ("table", "xenium", "merscope", "cosmx"))
    assert str(path) in message
    message = error_of(path, {"units": "mm"})
    assert "'mm'" in message and "px" in message and "um" in message and str(path) in message


def test_columns_and_fov_positions_only_where_they_apply(tmp_path: Path) -> None:
    path = write_merscope(tmp_path / "detected_transcripts.csv")
    message = error_of(path, {"format": "merscope", "pixel_size_um": 0.1,
                              "columns": {"gene": "gene", "x": "x", "y": "y"} | {"x": "global_x"}})
    assert "'columns' applies only to 'spots_format: table'" in message
    message = error_of(path, {"format": "merscope", "pixel_size_um": 0.1, "fov_positions": "p.csv"})
    assert "'fov_positions' applies only to 'spots_format: cosmx'" in message
    # the schema's defaults for keys that do not apply are accepted
    table = read_spot_table(path, {"format": "merscope", "pixel_size_um": 0.1, "min_qv": 20,
                                   "columns": {"gene": "gene", "x": "x", "y": "y"},
                                   "image_scale": 1.0, "origin_um": [0, 0], "role": "train"})
    assert len(table.spots) == 2


def test_missing_spots_file(tmp_path: Path) -> None:
    for fmt in ("table", "xenium"):
        message = error_of(tmp_path / "transcripts.parquet",
                           {"format": fmt, "pixel_size_um": 1, "columns": COLUMNS})
        assert "not found" in message and "transcripts.parquet" in message
