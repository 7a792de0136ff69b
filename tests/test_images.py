"""Tests for txmorph.io.images (+ tiffplanes, imagewrite): lazy plane reading of
TIFF/OME-TIFF/PNG/JPEG and the canonical copy.

Every fixture is generated in tmp_path; results are compared with ``tifffile.imread``.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from txmorph.errors import InputError
from txmorph.io import imagesource, tiffplanes
from txmorph.io.images import open_image, read_image
from txmorph.io.imagesource import ImageSource
from txmorph.io.imagewrite import write_canonical_image

RNG = np.random.default_rng(0)


def noise(shape: tuple[int, ...], dtype: str = "uint16") -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.random(shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


def smooth(shape: tuple[int, int], dtype: str = "uint16") -> np.ndarray:
    """A compressible image (gradient plus a little noise) for the larger files."""
    rows, cols = np.indices(shape)
    return ((rows * 7 + cols * 3) % 4000 + RNG.integers(0, 16, shape)).astype(dtype)


def error_of(func, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    return str(info.value)


def check_windows(source: ImageSource, expected: np.ndarray) -> None:
    """Windows at corners/edges/middle, strided reads and strips all equal the expected plane."""
    assert source.shape == expected.shape and source.dtype == expected.dtype.newbyteorder("=")
    h, w = expected.shape
    for rows, cols in [((0, h), (0, w)), ((0, 1), (0, 1)), ((h - 7, h), (w - 5, w)),
                       ((13, 101), (29, 77)), ((h // 2 - 40, h // 2 + 3), (0, w))]:
        got = source.read(slice(*rows), slice(*cols))
        np.testing.assert_array_equal(got, expected[slice(*rows), slice(*cols)])
    np.testing.assert_array_equal(source[5:-3, 7:60], expected[5:-3, 7:60])
    np.testing.assert_array_equal(source[::3, ::2], expected[::3, ::2])
    np.testing.assert_array_equal(source[4::7, 1:50:5], expected[4::7, 1:50:5])
    strips = list(source.iter_strips(41))
    assert [top for top, _ in strips] == list(range(0, h, 41))
    np.testing.assert_array_equal(np.concatenate([s for _, s in strips]), expected)


# ----------------------------------------------------------------------------- TIFF layouts


TIFF_LAYOUTS = {
    "tiled_raw": ("uint16", dict(tile=(64, 32))),
    "tiled_zlib": ("uint16", dict(tile=(64, 64), compression="zlib")),
    "tiled_lzw": ("uint8", dict(tile=(32, 48), compression="lzw")),
    "tiled_predictor_float": ("float32", dict(tile=(64, 64), compression="zlib", predictor=True)),
    "striped_raw": ("uint16", dict(rowsperstrip=16)),
    "striped_zlib": ("uint16", dict(rowsperstrip=16, compression="zlib")),
    "single_strip_zlib": ("int16", dict(compression="zlib")),
    "bigtiff_tiled": ("uint16", dict(tile=(64, 64), compression="zlib", bigtiff=True)),
    "bigendian_striped": ("uint16", dict(rowsperstrip=10, byteorder=">")),
    "bigendian_tiled": ("float32", dict(tile=(32, 32), byteorder=">")),
}


@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_tiff_layouts_equal_tifffile(tmp_path: Path, layout: str) -> None:
    dtype, options = TIFF_LAYOUTS[layout]
    path = tmp_path / f"{layout}.tif"
    tifffile.imwrite(path, noise((301, 203), dtype), **options)
    with open_image(path) as source:
        check_windows(source, tifffile.imread(path))
        assert source.pixel_size_um is None and source.channel is None
        assert path.name in source.description
        mapped = layout in ("striped_raw", "bigendian_striped")  # uncompressed and contiguous
        assert ("memory-mapped" in source.description) == mapped


def test_suffixes_and_read_image(tmp_path: Path) -> None:
    image = noise((40, 30))
    for name in ("a.TIF", "b.tiff", "c.btf", "d.tf8", "e.tf2", "f.ome.tif"):
        tifffile.imwrite(tmp_path / name, image, bigtiff=name[-3:] in ("btf", "tf8"))
        np.testing.assert_array_equal(read_image(tmp_path / name), image)


def test_multichannel_pages(tmp_path: Path) -> None:
    data = noise((3, 120, 90))
    for name, options in [("raw.tif", {}), ("zlib.tif", dict(compression="zlib", tile=(32, 32)))]:
        path = tmp_path / name
        tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "CYX"}, **options)
        message = error_of(open_image, path)
        assert "3 channels (0, 1, 2" in message and "'channel'" in message and "config.yaml" in message
        with open_image(path, channel=2) as source:
            check_windows(source, data[2])
            assert source.channel == 2
        np.testing.assert_array_equal(read_image(path, channel="1"), data[1])
        assert "no channel 3" in error_of(open_image, path, channel=3)


def test_ome_channel_names_case_insensitive(tmp_path: Path) -> None:
    data = noise((2, 64, 48), "uint8")
    path = tmp_path / "names.ome.tif"
    metadata = {"axes": "CYX", "Channel": {"Name": ["DAPI", "PolyT"]}, "PhysicalSizeX": 300,
                "PhysicalSizeXUnit": "nm"}
    tifffile.imwrite(path, data, metadata=metadata)
    message = error_of(open_image, path)
    assert "0 'DAPI', 1 'PolyT'" in message
    with open_image(path, channel="polyt") as source:
        np.testing.assert_array_equal(source.read(slice(None), slice(None)), data[1])
        assert source.channel == 1 and source.channel_name == "PolyT"
        assert source.pixel_size_um == pytest.approx(0.3)
    assert "no channel 'GFP'" in error_of(open_image, path, channel="GFP")


def test_rgb_contiguous_samples(tmp_path: Path) -> None:
    rgb = noise((70, 50, 3), "uint8")
    for name, options in [("raw.tif", {}), ("tiled.tif", dict(tile=(32, 32), compression="zlib"))]:
        path = tmp_path / name
        tifffile.imwrite(path, rgb, photometric="rgb", **options)
        assert "RGB colour image" in error_of(open_image, path)
        with open_image(path, channel=2) as source:
            check_windows(source, rgb[..., 2])
        np.testing.assert_array_equal(read_image(path, channel="green"), rgb[..., 1])
    grey = np.repeat(noise((70, 50, 1), "uint8"), 3, axis=2)
    tifffile.imwrite(tmp_path / "grey.tif", grey, photometric="rgb", tile=(32, 32))
    with open_image(tmp_path / "grey.tif") as source:
        check_windows(source, grey[..., 0])


def test_colour_found_late_fails_on_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(imagesource, "BAND_PIXELS", 100)  # probe bands of 2 rows only
    rgb = np.repeat(noise((60, 50, 1), "uint8"), 3, axis=2)
    rgb[45, 3] = (1, 2, 3)
    path = tmp_path / "late.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    with open_image(path) as source:
        source.read(slice(0, 40), slice(None))
        assert "RGB colour image" in error_of(source.read, slice(40, 50), slice(None))


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_z_stack_max_projection(tmp_path: Path, compression: str | None) -> None:
    data = noise((4, 90, 70))
    path = tmp_path / "z.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "ZYX"}, compression=compression)
    with open_image(path) as source:
        check_windows(source, data.max(axis=0))
        assert source.projection == "max" and source.z_planes == 4
        assert "max projection over 4 z-planes" in source.description
    assert "z_projection" in error_of(open_image, path, z_projection="none")
    assert "z_projection" in error_of(open_image, path, z_projection="mean")


def test_tczyx_channel_and_projection_and_time(tmp_path: Path) -> None:
    data = noise((1, 2, 3, 40, 30))
    path = tmp_path / "tczyx.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TCZYX", "Channel": {"Name": ["a", "dapi"]}},
                     compression="zlib")
    np.testing.assert_array_equal(read_image(path, channel="DAPI"), data[0, 1].max(axis=0))
    timed = tmp_path / "time.ome.tif"
    tifffile.imwrite(timed, noise((3, 40, 30)), metadata={"axes": "TYX"})
    assert "time series of 3 frames" in error_of(open_image, timed)


def test_unlabelled_stack_needs_channel(tmp_path: Path) -> None:
    data = noise((5, 40, 30), "uint8")
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, compression="zlib")  # axes 'QYX': channels or z-planes?
    message = error_of(open_image, path)
    assert "channels or z-planes" in message and "'channel'" in message
    np.testing.assert_array_equal(read_image(path, channel=3), data[3])


def test_single_channel_accepts_its_name_or_index(tmp_path: Path) -> None:
    image = noise((20, 30))
    tifffile.imwrite(tmp_path / "one.ome.tif", image, metadata={"Channel": {"Name": "DAPI"}})
    np.testing.assert_array_equal(read_image(tmp_path / "one.ome.tif", channel="dapi"), image)
    np.testing.assert_array_equal(read_image(tmp_path / "one.ome.tif", channel=0), image)
    assert "single channel" in error_of(open_image, tmp_path / "one.ome.tif", channel="GFP")
    assert "single channel" in error_of(open_image, tmp_path / "one.ome.tif", channel=1)


def write_pyramid(path: Path, data: np.ndarray) -> None:
    """A pyramidal OME-TIFF as in the tifffile docs: SubIFDs hold the reduced levels."""
    options = dict(photometric="minisblack", tile=(64, 64), compression="zlib")
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(data, subifds=2, metadata={"axes": "CYX", "PhysicalSizeX": 0.5,
                                             "Channel": {"Name": ["DAPI", "PolyT"]}}, **options)
        for factor in (2, 4):
            tif.write(data[:, ::factor, ::factor], subfiletype=1, **options)


def test_pyramidal_ome_tiff(tmp_path: Path) -> None:
    data = noise((2, 300, 260))
    path = tmp_path / "pyramid.ome.tif"
    write_pyramid(path, data)
    for level, factor in enumerate((1, 2, 4)):
        expected = tifffile.imread(path, level=level)[0]
        np.testing.assert_array_equal(expected, data[0, ::factor, ::factor])
        with open_image(path, level=level, channel="dapi") as source:
            check_windows(source, expected)
            assert source.pixel_size_um == pytest.approx(0.5 * 300 / expected.shape[0], rel=0.02)
            assert source.level == level and f"level {level}" in source.description
    message = error_of(open_image, path, level=3, channel=0)
    assert "0: (2, 300, 260), 1: (2, 150, 130), 2: (2, 75, 65)" in message and "'level'" in message


def count_decodes(monkeypatch) -> list[int]:
    """Record the index of every segment that images decodes."""
    decoded: list[int] = []
    original = tiffplanes.decode_segment

    def counting(page, data, index):
        decoded.append(index)
        return original(page, data, index)

    monkeypatch.setattr(tiffplanes, "decode_segment", counting)
    return decoded


def test_only_intersecting_segments_are_decoded(tmp_path: Path, monkeypatch) -> None:
    decoded = count_decodes(monkeypatch)
    image = smooth((1024, 1024))
    tifffile.imwrite(tmp_path / "tiled.tif", image, tile=(128, 128), compression="zlib")
    with open_image(tmp_path / "tiled.tif") as source:
        window = source.read(slice(130, 250), slice(300, 400))  # tile row 1, tile columns 2-3
        np.testing.assert_array_equal(window, image[130:250, 300:400])
        assert sorted(decoded) == [1 * 8 + 2, 1 * 8 + 3]
    decoded.clear()
    tifffile.imwrite(tmp_path / "strips.tif", image, rowsperstrip=32, compression="zlib")
    with open_image(tmp_path / "strips.tif") as source:
        np.testing.assert_array_equal(source.read(slice(40, 70), slice(0, 10)), image[40:70, :10])
        assert sorted(decoded) == [1, 2]


def test_uncompressed_pages_are_memory_mapped_one_by_one(tmp_path: Path, monkeypatch) -> None:
    decoded = count_decodes(monkeypatch)
    # pretend the pages are not one contiguous block, as when other data lies between them
    monkeypatch.setattr(tifffile.TiffPageSeries, "dataoffset", property(lambda self: None))
    data = noise((3, 50, 40))
    path = tmp_path / "pages.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "CYX"}, rowsperstrip=7)
    with open_image(path, channel=1) as source:
        check_windows(source, data[1])
        assert "decoded on demand" in source.description
    assert decoded == []


def test_indexing_errors(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", noise((20, 20)))
    with open_image(tmp_path / "a.tif") as source:
        with pytest.raises(ValueError, match="positive"):
            source[::-1, :]
        with pytest.raises(ValueError, match="step 1"):
            source.read(slice(0, 10, 2), slice(None))
        with pytest.raises(TypeError):
            source[3, 4]
        assert source[30:40, 0:5].shape == (0, 5)
        assert source[::40, ::3].shape == (1, 7)


# ----------------------------------------------------------------------------- PNG / JPEG


def test_png_and_jpeg(tmp_path: Path) -> None:
    image = noise((40, 30), "uint8")
    iio.imwrite(tmp_path / "a.png", image)
    with open_image(tmp_path / "a.png") as source:
        check_windows(source, image)
    grey_rgb = np.repeat(image[..., None], 3, axis=2)
    iio.imwrite(tmp_path / "grey.png", grey_rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), image)
    iio.imwrite(tmp_path / "colour.png", noise((40, 30, 3), "uint8"))
    assert "RGB colour image" in error_of(open_image, tmp_path / "colour.png")
    iio.imwrite(tmp_path / "b.jpg", image)
    assert read_image(tmp_path / "b.jpg").shape == (40, 30)
    assert "level" in error_of(open_image, tmp_path / "a.png", level=1)


# ----------------------------------------------------------------------------- user errors


def test_file_errors(tmp_path: Path) -> None:
    assert "not found" in error_of(open_image, tmp_path / "missing.tif")
    assert "is a directory" in error_of(open_image, tmp_path)
    (tmp_path / "a.bmp").write_bytes(b"BM")
    assert "unsupported file type '.bmp'" in error_of(open_image, tmp_path / "a.bmp")
    (tmp_path / "junk.tif").write_bytes(b"this is not a tiff")
    assert "could not be read as a TIFF" in error_of(open_image, tmp_path / "junk.tif")
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    assert "could not be read as a PNG" in error_of(open_image, tmp_path / "junk.png")


def test_corrupt_and_truncated_tiles(tmp_path: Path) -> None:
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, smooth((256, 256)), tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[5]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))
    with open_image(path) as source:
        source.read(slice(0, 64), slice(0, 64))  # an intact tile
        assert "could not be decoded" in error_of(source.read, slice(64, 128), slice(64, 128))
    tifffile.imwrite(path, smooth((256, 256)), tile=(64, 64), compression="zlib")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = error_of(lambda: open_image(path).read(slice(None), slice(None)))
    assert "incomplete or corrupt" in message
    tifffile.imwrite(path, smooth((256, 256)))
    path.write_bytes(path.read_bytes()[:-1000])  # uncompressed: memory map too short
    assert "incomplete or corrupt" in error_of(open_image, path)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((8, 8), bool), "pixel type 'bool'"),
        (np.zeros((8, 8), np.complex64), "pixel type 'complex64'"),
        (np.zeros((1, 9), np.uint8), "expected a 2-D image"),
        (np.zeros((9, 1), np.uint8), "expected a 2-D image"),
        (np.zeros((0, 9), np.uint8), "the image is empty"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*zero-size array")
def test_bad_pixel_types_and_shapes(tmp_path: Path, array: np.ndarray, expected: str) -> None:
    tifffile.imwrite(tmp_path / "x.tif", array)
    assert expected in error_of(open_image, tmp_path / "x.tif")


def test_read_image_refuses_nan(tmp_path: Path) -> None:
    image = noise((30, 20), "float32")
    image[7, 3] = np.nan
    image[9, 1] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", image)
    message = error_of(read_image, tmp_path / "nan.tif")
    assert "2 pixels are NaN or infinite" in message and "row 7, column 3" in message


def test_closed_source_refuses_reads(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", noise((20, 20)))
    source = open_image(tmp_path / "a.tif")
    source.close()
    with pytest.raises(ValueError, match="closed"):
        source.read(slice(0, 2), slice(0, 2))


# ----------------------------------------------------------------------------- canonical copy


def block_mean(image: np.ndarray, k: int) -> np.ndarray:
    """Reference block mean: pad with NaN to whole blocks, so partial blocks average what they have."""
    h, w = image.shape
    padded = np.full((-(-h // k) * k, -(-w // k) * k), np.nan)
    padded[:h, :w] = image
    return np.nanmean(padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k), axis=(1, 3))


def test_canonical_copy_streams_region_and_downsample(tmp_path: Path, monkeypatch) -> None:
    image = smooth((3000, 2000))
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, image, tile=(256, 256), compression="zlib", metadata={"axes": "YX"})
    windows: list[tuple[int, int]] = []
    original = ImageSource.read

    def recording(self, rows, cols):
        block = original(self, rows, cols)
        windows.append(block.shape)
        return block

    monkeypatch.setattr(ImageSource, "read", recording)
    out = tmp_path / "out" / "canonical.tif"
    region = (100, 2901, 7, 1990)
    with open_image(path) as source:
        tracemalloc.start()
        summary = write_canonical_image(source, out, downsample=4, region=region, rows_per_strip=250)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert max(r for r, _ in windows) == 248 and max(c for _, c in windows) == 1983
    assert len(windows) == -(-2801 // 248)
    assert peak < image.nbytes / 3, peak  # O(strip), never the whole plane
    crop = image[100:2901, 7:1990]
    expected = np.rint(block_mean(crop, 4)).astype(np.uint16)
    result = tifffile.memmap(out, mode="r")
    np.testing.assert_array_equal(result, expected)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert tif.is_bigtiff and page.compression == 1 and not page.is_tiled and page.is_contiguous
    assert json.loads(json.dumps(summary)) == summary
    assert summary["shape"] == [701, 496] and summary["source_shape"] == [3000, 2000]
    assert summary["region"] == list(region) and summary["downsample"] == 4
    assert summary["dtype"] == "uint16" and summary["pixel_size_um"] is None
    assert summary["min"] == int(expected.min()) and summary["max"] == int(expected.max())
    assert [p.name for p in out.parent.iterdir()] == ["canonical.tif"]  # no temporary left


def test_canonical_copy_of_pyramid_channel_with_pixel_size(tmp_path: Path) -> None:
    data = noise((2, 300, 260))
    write_pyramid(tmp_path / "p.ome.tif", data)
    with open_image(tmp_path / "p.ome.tif", level=1, channel="PolyT") as source:
        summary = write_canonical_image(source, tmp_path / "c.tif", downsample=1)
    np.testing.assert_array_equal(tifffile.memmap(tmp_path / "c.tif", mode="r"), data[1, ::2, ::2])
    assert summary["level"] == 1 and summary["channel"] == 1 and summary["channel_name"] == "PolyT"
    assert summary["pixel_size_um"] == pytest.approx(1.0)


def test_block_mean_partial_blocks_and_rounding(tmp_path: Path) -> None:
    image = np.arange(35, dtype=np.uint8).reshape(5, 7)
    tifffile.imwrite(tmp_path / "small.tif", image)
    with open_image(tmp_path / "small.tif") as source:
        write_canonical_image(source, tmp_path / "k2.tif", downsample=2, rows_per_strip=3)
    result = tifffile.imread(tmp_path / "k2.tif")
    np.testing.assert_array_equal(result, np.rint(block_mean(image, 2)).astype(np.uint8))
    assert result[-1, -1] == 34 and result[0, 0] == 4  # mean of 0, 1, 7, 8 = 4.0
    floats = np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 6)
    tifffile.imwrite(tmp_path / "f.tif", floats)
    with open_image(tmp_path / "f.tif") as source:
        summary = write_canonical_image(source, tmp_path / "f3.tif", downsample=2)
    np.testing.assert_allclose(tifffile.imread(tmp_path / "f3.tif"), block_mean(floats, 2), rtol=1e-6)
    assert tifffile.imread(tmp_path / "f3.tif").dtype == np.float32
    assert isinstance(summary["min"], float)


def test_canonical_copy_refuses_nan_and_keeps_no_file(tmp_path: Path) -> None:
    image = noise((100, 40), "float32")
    image[55, 9] = np.nan
    image[80:82, 0] = -np.inf
    tifffile.imwrite(tmp_path / "nan.tif", image)
    out = tmp_path / "out.tif"
    with open_image(tmp_path / "nan.tif") as source:
        message = error_of(write_canonical_image, source, out, rows_per_strip=16)
    assert "3 pixels are NaN or infinite" in message and "row 55, column 9" in message
    assert list(tmp_path.iterdir()) == [tmp_path / "nan.tif"]


def test_canonical_copy_argument_errors(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", noise((50, 40)))
    with open_image(tmp_path / "a.tif") as source:
        for region in [(0, 51, 0, 10), (10, 10, 0, 10), (-1, 5, 0, 10), (0, 5, 30, 20), (0, 5), "0:5"]:
            message = error_of(write_canonical_image, source, tmp_path / "o.tif", region=region)
            assert "region" in message and "50 x 40" in message
        assert "downsample" in error_of(write_canonical_image, source, tmp_path / "o.tif", downsample=0)
        assert "fewer than 2" in error_of(write_canonical_image, source, tmp_path / "o.tif",
                                          downsample=41)
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("value", [0, 65535])
def test_blank_image_is_refused_and_leaves_no_output(tmp_path: Path, value: int) -> None:
    path = tmp_path / "blank.tif"
    tifffile.imwrite(path, np.full((300, 200), value, np.uint16))
    out = tmp_path / "out" / "canonical.tif"
    with open_image(path) as source:
        with pytest.raises(InputError, match=f"blank: every pixel is {value}"):
            write_canonical_image(source, out, rows_per_strip=64)
    assert not out.exists() and not list(out.parent.iterdir())
    # A region that is uniform while the image is not is also blank, and says so.
    image = np.zeros((300, 200), np.uint16)
    image[250:, 150:] = 900
    tifffile.imwrite(path, image)
    with open_image(path) as source:
        with pytest.raises(InputError, match="every pixel of the region is 0"):
            write_canonical_image(source, out, region=(0, 200, 0, 100))
