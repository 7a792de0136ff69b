"""Tests for txmorph.io.plaintable, io.files and io.spots.check_spots: happy paths and every user error, on small generated files."""

from __future__ import annotations

import gzip
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from txmorph.errors import InputError
from txmorph.io import plaintable
from txmorph.io.images import read_image
from txmorph.io.plaintable import read_spots
from txmorph.io.spots import check_spots

COLS = {"gene": "gene", "x": "x", "y": "y"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def error_of(func, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    return str(info.value)


def spots_frame(genes: list[str], xs: list[float], ys: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"gene": genes, "x": np.asarray(xs, float), "y": np.asarray(ys, float)})


# ----------------------------------------------------------------------------- images (txmorph.io.images)


def test_read_uint8_png(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", image)
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30)
    np.testing.assert_array_equal(out, image)


def test_read_uint16_tiff_and_bigtiff(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 65535, (17, 23), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", image)
    tifffile.imwrite(tmp_path / "b.tiff", image, bigtiff=True)
    for name in ("a.tif", "b.tiff"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("shape", [(1, 12, 9), (12, 9, 1)])
def test_singleton_axis_is_squeezed(tmp_path: Path, shape: tuple[int, ...]) -> None:
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    tifffile.imwrite(tmp_path / "s.tif", image)
    out = read_image(tmp_path / "s.tif")
    assert out.shape == (12, 9) and out.dtype == np.float32


def test_grey_saved_as_rgb_is_accepted(tmp_path: Path) -> None:
    grey = np.random.default_rng(1).integers(0, 255, (10, 11), dtype=np.uint8)
    iio.imwrite(tmp_path / "g.png", np.stack([grey] * 3, axis=-1))
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), grey)


def test_image_missing(tmp_path: Path) -> None:
    message = error_of(read_image, tmp_path / "nope.tif")
    assert "nope.tif" in message and "not found" in message


def test_image_corrupt(tmp_path: Path) -> None:
    (tmp_path / "bad.tif").write_bytes(b"this is not a tiff at all" * 10)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 5)
    for name in ("bad.tif", "bad.png"):
        message = error_of(read_image, tmp_path / name)
        assert name in message and "could not be read as a" in message and "corrupt" in message


def test_image_unsupported_suffix(tmp_path: Path) -> None:
    write(tmp_path / "a.czi", "x")
    assert "unsupported file type" in error_of(read_image, tmp_path / "a.czi")


@pytest.mark.parametrize("channels", [3, 4])
def test_image_rgb_refused(tmp_path: Path, channels: int) -> None:
    rgb = np.random.default_rng(2).integers(0, 255, (10, 12, channels), dtype=np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    message = error_of(read_image, tmp_path / "c.png")
    assert "c.png" in message and "colour" in message and "'channel'" in message
    assert "DAPI channel" in message


def test_image_stack_refused(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((5, 10, 12), np.uint16))
    message = error_of(read_image, tmp_path / "z.tif")
    assert "z.tif" in message and "(5, 10, 12)" in message and "projection" in message
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((3, 10, 12), np.uint16), photometric="minisblack")
    assert "(3, 10, 12)" in error_of(read_image, tmp_path / "c.tif")


@pytest.mark.filterwarnings("ignore:.*zero-size")
def test_image_empty(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "e.tif", np.zeros((0, 5), np.uint8))
    message = error_of(read_image, tmp_path / "e.tif")
    assert "e.tif" in message and ("empty" in message or "could not be read" in message)


def test_image_nan_pixels(tmp_path: Path) -> None:
    image = np.ones((6, 7), np.float32)
    image[2, 3] = np.nan
    image[4, 0] = np.inf
    tifffile.imwrite(tmp_path / "n.tif", image)
    message = error_of(read_image, tmp_path / "n.tif")
    assert "n.tif" in message and "2 pixels" in message and "row 2, column 3" in message


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_image_bad_dtype(tmp_path: Path, dtype: type) -> None:
    tifffile.imwrite(tmp_path / "d.tif", np.zeros((6, 7), dtype))
    message = error_of(read_image, tmp_path / "d.tif")
    assert "d.tif" in message and "pixel type" in message


# ----------------------------------------------------------------------------- spots: happy paths


def test_read_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,x,y,extra\nACTB,1.5,2,a\nGAPDH,3,4.25,b\n\n")
    spots = read_spots(path, COLS)
    assert list(spots.columns) == ["gene", "x", "y"]
    assert spots["x"].dtype == np.float64 and spots["y"].dtype == np.float64
    assert list(spots["gene"]) == ["ACTB", "GAPDH"]
    assert spots["x"].tolist() == [1.5, 3.0] and spots["y"].tolist() == [2.0, 4.25]


def test_read_tsv_gz_and_custom_columns(tmp_path: Path) -> None:
    text = "feature_name\tx_location\ty_location\nNA\t1\t2\n  Krt5 \t3\t4\n"
    with gzip.open(tmp_path / "s.tsv.gz", "wt") as handle:
        handle.write(text)
    cols = {"gene": "feature_name", "x": "x_location", "y": "y_location"}
    spots = read_spots(tmp_path / "s.tsv.gz", cols)
    assert list(spots["gene"]) == ["NA", "Krt5"]  # 'NA' is a name, not a missing value
    assert spots["y"].tolist() == [2.0, 4.0]
    write(tmp_path / "s.tsv", text)
    assert read_spots(tmp_path / "s.tsv", cols).equals(spots)


def test_read_csv_gz(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "s.csv.gz", "wt") as handle:
        handle.write("gene,x,y\nA,1,2\n")
    assert read_spots(tmp_path / "s.csv.gz", COLS)["gene"].tolist() == ["A"]


@pytest.mark.parametrize("sep", [",", "\t", ";", " "])
def test_read_txt_sniffs_separator(tmp_path: Path, sep: str) -> None:
    path = write(tmp_path / "s.txt", sep.join(["gene", "x", "y"]) + "\n" + sep.join(["A", "1", "2"]) + "\n")
    assert read_spots(path, COLS)["x"].tolist() == [1.0]


def test_parquet_without_pyarrow_or_read(tmp_path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "s.parquet").write_bytes(b"PAR1")
        assert "pyarrow" in error_of(read_spots, tmp_path / "s.parquet", COLS)
    else:
        pd.DataFrame({"gene": ["A"], "x": [1.0], "y": [2.0]}).to_parquet(tmp_path / "s.parquet")
        assert read_spots(tmp_path / "s.parquet", COLS)["y"].tolist() == [2.0]


# ----------------------------------------------------------------------------- spots: errors


def test_spots_missing_file(tmp_path: Path) -> None:
    message = error_of(read_spots, tmp_path / "s.csv", COLS)
    assert "s.csv" in message and "not found" in message


def test_spots_unsupported_suffix(tmp_path: Path) -> None:
    write(tmp_path / "s.xlsx", "x")
    assert "unsupported file type" in error_of(read_spots, tmp_path / "s.xlsx", COLS)


def test_spots_excel_renamed_csv(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_bytes(b"PK\x03\x04rest")
    assert "Excel" in error_of(read_spots, tmp_path / "s.csv", COLS)


def test_missing_column_lists_present(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,X,y_px\nA,1,2\n")
    message = error_of(read_spots, path, COLS)
    assert "s.csv" in message and "'x', 'y' not found" in message
    assert "'gene', 'X', 'y_px'" in message and "'X'" in message and "columns" in message


def test_wrong_separator_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene;x;y\nA;1;2\n")
    message = error_of(read_spots, path, COLS)
    assert "one column" in message and "semicolons" in message


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    assert "empty" in error_of(read_spots, write(tmp_path / "e.csv", ""), COLS)
    message = error_of(read_spots, write(tmp_path / "h.csv", "gene,x,y\n"), COLS)
    assert "h.csv" in message and "no data rows" in message


def test_non_numeric_coordinate(tmp_path: Path) -> None:
    rows = [f"G{i},{i},{i}" for i in range(16)] + ["G,abc,3", "G,def,4"]
    path = write(tmp_path / "s1.csv", "gene,x,y\n" + "\n".join(rows) + "\n")
    message = error_of(read_spots, path, COLS)
    assert message.startswith(
        f"spots file '{path}': column 'x', line 18 (data row 17): value 'abc' is not a number"
    )
    assert "2 rows" in message and "Fix or remove" in message


@pytest.mark.parametrize("value, words", [("nan", "not a finite"), ("inf", "not a finite"), ("", "empty"), ("1,5", "decimal comma")])
def test_bad_y_values(tmp_path: Path, value: str, words: str) -> None:
    path = write(tmp_path / "s.tsv", f"gene\tx\ty\nA\t1\t2\nB\t1\t{value}\n")
    message = error_of(read_spots, path, COLS)
    assert "column 'y', line 3 (data row 2)" in message and words in message


def test_empty_gene_name(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,x,y\nA,1,2\n,3,4\n  ,5,6\n")
    message = error_of(read_spots, path, COLS)
    assert "column 'gene', line 3 (data row 2)" in message and "gene name is empty" in message
    assert "2 rows" in message


def test_ragged_row(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,x,y\nA,1,2\nB,3,4,5,6\n")
    message = error_of(read_spots, path, COLS)
    assert "s.csv" in message and "could not be parsed" in message and "line 3" in message


def test_trailing_separator_and_unquoted_comma_in_gene(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "gene,x,y\nA,1,2,\nB,3,4,\n")
    assert read_spots(path, COLS)["gene"].tolist() == ["A", "B"]
    path = write(tmp_path / "c.csv", "gene,x,y\nA,1,2\nHLA,B,3,4\n")
    message = error_of(read_spots, path, COLS)
    assert "line 3 has 4 fields but the header has 3" in message and "quotes" in message


def test_bad_column_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,x,y\nA,1,2\n")
    assert "'y'" in error_of(read_spots, path, {"gene": "gene", "x": "x"})
    assert "same column" in error_of(read_spots, path, {"gene": "gene", "x": "x", "y": "x"})


# ----------------------------------------------------------------------------- spots: in chunks

# Data rows 0-7: a blank line (2) and a line of empty fields (5) are skipped; C and D are first
# seen in later chunks when read 2 rows at a time.
CHUNKED_ROWS = ["A,1,2", "  B ,3,4", "", "A,5.5,6", "C,7,8", ",,", "B,9,1e1", "D,11,12"]


def test_spots_read_in_chunks_equal_the_whole_table(tmp_path: Path, monkeypatch) -> None:
    csv = write(tmp_path / "s.csv", "gene,x,y\n" + "\n".join(CHUNKED_ROWS) + "\n")
    table = spots_frame(["A", "B", "A", "C", "B", "D"], [1, 3, 5.5, 7, 9, 11], [2, 4, 6, 8, 10, 12])
    parquet = tmp_path / "s.parquet"
    table.to_parquet(parquet, row_group_size=2)
    whole = {path: read_spots(path, COLS) for path in (csv, parquet)}
    monkeypatch.setattr(plaintable, "CHUNK_ROWS", 2)
    for path, expected in whole.items():
        streamed = read_spots(path, COLS)
        pd.testing.assert_frame_equal(streamed, expected)
        assert streamed["gene"].tolist() == ["A", "B", "A", "C", "B", "D"]
        assert streamed["x"].tolist() == [1, 3, 5.5, 7, 9, 11] and streamed["x"].dtype == np.float64
        assert streamed["y"].tolist() == [2, 4, 6, 8, 10, 12] and streamed["y"].dtype == np.float64
        assert streamed.index.dtype == np.int64
    assert whole[csv].index.tolist() == [0, 1, 3, 4, 6, 7]  # data rows of the file
    assert whole[parquet].index.tolist() == [0, 1, 2, 3, 4, 5]


def test_spots_in_chunks_report_bad_rows_of_the_whole_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(plaintable, "CHUNK_ROWS", 2)
    rows = list(CHUNKED_ROWS)
    rows[1] = "B,3,?"  # a bad y in the first chunk: x is checked first, as for the whole table
    rows[4], rows[7] = "C,7;5,8", "D,n/a,12"  # bad x in the third and fourth chunks
    path = write(tmp_path / "s.csv", "gene,x,y\n" + "\n".join(rows) + "\n")
    message = error_of(read_spots, path, COLS)
    assert message.startswith(
        f"spots file '{path}': column 'x', line 6 (data row 5): value '7;5' is not a number "
        "(2 rows are affected). Fix or remove those rows."
    )
    rows[4], rows[7] = CHUNKED_ROWS[4], " ,11,12"  # now only the y, and an empty gene at the end
    path = write(tmp_path / "s.csv", "gene,x,y\n" + "\n".join(rows) + "\n")
    assert "column 'y', line 3 (data row 2): value '?' is not a number. Fix" in error_of(
        read_spots, path, COLS)
    rows[1] = CHUNKED_ROWS[1]
    path = write(tmp_path / "s.csv", "gene,x,y\n" + "\n".join(rows) + "\n")
    assert "column 'gene', line 9 (data row 8): the gene name is empty. Fill" in error_of(
        read_spots, path, COLS)


# ----------------------------------------------------------------------------- check_spots


def test_check_spots_ok() -> None:
    spots = spots_frame(["A", "B", "C"], [0, 9.99, 5], [0, 7.5, 7.99])
    clean, n = check_spots(spots, (8, 10), ["A", "B"], "s.csv")
    assert n == 0 and clean.equals(spots)


def test_outside_error_message() -> None:
    spots = spots_frame(["A", "B", "A", "B"], [1, 5, 10, -1], [1, 5, 2, 3])
    message = error_of(check_spots, spots, (8, 10), ["A", "B"], "data/s1.csv")
    assert "data/s1.csv" in message and "2 of 4 spots" in message
    assert "line 4 (data row 3)" in message and "10 pixels wide" in message and "8 high" in message
    assert "spots_outside_image: drop" in message and "micrometres" in message


def test_outside_drop() -> None:
    spots = spots_frame(["A", "B", "A", "B"], [1, 5, 10, -1], [1, 5, 2, 7.99])
    clean, n = check_spots(spots, (8, 10), ["A", "B"], "s.csv", outside="drop")
    assert n == 2 and clean["x"].tolist() == [1.0, 5.0] and clean.index.tolist() == [0, 1]


def test_outside_all_spots_is_error_even_with_drop() -> None:
    spots = spots_frame(["A", "B"], [100, 200], [300, 400])
    message = error_of(check_spots, spots, (10, 20), ["A", "B"], "s.csv", outside="drop")
    assert "all of them" in message and "times the image size" in message


def test_swapped_xy_hint() -> None:
    spots = spots_frame(["A", "B"], [1, 90], [2, 5])
    assert "swapped" in error_of(check_spots, spots, (100, 10), ["A", "B"], "s.csv")


def test_line_numbers_survive_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "gene,x,y\nA,1,1\n\nB,50,1\n")
    spots = read_spots(path, COLS)
    assert "line 4 (data row 3)" in error_of(check_spots, spots, (10, 10), ["A"], path)


def test_missing_gene_suggests() -> None:
    genes = ["Actb"] * 5 + ["Gapdh"] * 3 + ["Krt5"]
    spots = spots_frame(genes, [1] * 9, [1] * 9)
    message = error_of(check_spots, spots, (10, 10), ["ACTB", "Krt15", "Gapdh"], "s.csv")
    assert "s.csv" in message and "'ACTB', 'Krt15'" in message
    assert "Actb (5)" in message and "'ACTB' -> 'Actb'" in message and "'Krt5'" in message
    assert "'genes' in config.yaml" in message


def test_bad_outside_option() -> None:
    spots = spots_frame(["A"], [1], [1])
    assert "spots_outside_image" in error_of(check_spots, spots, (10, 10), ["A"], "s.csv", outside="keep")
