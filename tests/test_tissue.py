"""Tests for txmorph.tissue on synthetic nuclei images (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest

from txmorph import tissue
from txmorph.errors import InputError
from txmorph.tissue import block_mean, tissue_mask, upsample_nearest


def nuclei_image(
    shape: tuple[int, int] = (512, 512),
    pixel_size_um: float = 1.0,
    seed: int = 0,
    autofluorescence: float = 0.05,
    holes: list[tuple[float, float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """uint16 image of a bright noisy blob of nuclei on a dark noisy background, and its truth.

    The blob is an ellipse (in micrometres, so the same tissue can be drawn at any pixel
    size); nuclei are ~8 um Gaussian dots ~14 um apart; ``holes`` are (row_um, col_um, radius_um)
    discs without tissue inside the blob.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) * np.float32(pixel_size_um)
    ch, cw = h * pixel_size_um / 2, w * pixel_size_um / 2
    truth = ((rows - ch) / (0.35 * h * pixel_size_um)) ** 2 + ((cols - cw) / (0.3 * w * pixel_size_um)) ** 2 < 1
    for r, c, radius in holes or []:
        truth &= (rows - r) ** 2 + (cols - c) ** 2 >= radius**2
    spacing_px = 14.0 / pixel_size_um
    n = int(h * w / spacing_px**2)
    centres = rng.uniform(0, [h, w], size=(n, 2))
    centres = centres[truth[centres[:, 0].astype(int), centres[:, 1].astype(int)]]
    dots = np.zeros(shape, np.float32)
    np.add.at(dots, (centres[:, 0].astype(int), centres[:, 1].astype(int)), 1.0)
    from scipy import ndimage as ndi

    sigma = 3.0 / pixel_size_um
    dots = ndi.gaussian_filter(dots, sigma) * np.float32(2 * np.pi * sigma**2)  # peak ~1 per nucleus
    signal = dots * rng.uniform(0.6, 1.4, shape).astype(np.float32) + autofluorescence * truth
    image = 100 + 2000 * signal + rng.normal(0, 15, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_covers_blob_excludes_background() -> None:
    image, truth = nuclei_image()
    mask = tissue_mask(image, pixel_size_um=1.0)
    assert mask.dtype == bool and mask.shape == image.shape
    assert iou(mask, truth) > 0.9
    assert mask[~truth].mean() < 0.05  # background stays background
    assert not mask[:20].any() and not mask[:, :20].any()


def test_no_autofluorescence_gaps_between_nuclei_are_tissue() -> None:
    image, truth = nuclei_image(autofluorescence=0.0, seed=1)
    assert iou(tissue_mask(image, pixel_size_um=1.0), truth) > 0.9


def test_robust_to_illumination_gradient() -> None:
    image, truth = nuclei_image(seed=2)
    ramp = np.linspace(0.3, 1.5, image.shape[1], dtype=np.float32)[None, :]
    dimmed = np.clip(image.astype(np.float32) * ramp, 0, 65535).astype(np.uint16)
    mask = tissue_mask(dimmed, pixel_size_um=1.0)
    assert iou(mask, truth) > 0.9
    # both the dim and the bright half are found
    half = image.shape[1] // 2
    assert iou(mask[:, :half], truth[:, :half]) > 0.85 and iou(mask[:, half:], truth[:, half:]) > 0.85


def test_same_defaults_across_pixel_sizes() -> None:
    """The same tissue imaged at 1 um and 0.5 um per pixel gives the same mask (parameters in um)."""
    coarse, truth_c = nuclei_image((512, 512), pixel_size_um=1.0, seed=3)
    fine, truth_f = nuclei_image((1024, 1024), pixel_size_um=0.5, seed=3)
    mask_c = tissue_mask(coarse, pixel_size_um=1.0)
    mask_f = tissue_mask(fine, pixel_size_um=0.5)
    assert iou(mask_c, truth_c) > 0.9 and iou(mask_f, truth_f) > 0.9
    assert iou(mask_f[::2, ::2], mask_c) > 0.9


def test_small_holes_filled_large_holes_kept() -> None:
    # image is 512 um; blob centre (256, 256); a 6 um hole is filled, a 70 um one (15000 um2) kept
    image, truth = nuclei_image(holes=[(200, 220, 6.0), (320, 270, 70.0)], seed=4)
    mask = tissue_mask(image, pixel_size_um=1.0)
    assert mask[200, 220]
    assert not mask[320, 270]


def test_small_objects_removed() -> None:
    image, truth = nuclei_image(seed=5)
    # a small cluster of three nuclei far from the blob (~30 um across: < 10000 um2)
    image[10:40, 490:505] = 3000
    mask = tissue_mask(image, pixel_size_um=1.0)
    assert not mask[10:40, 490:505].any()
    assert tissue_mask(image, pixel_size_um=1.0, min_area_um2=0)[25, 497]


@pytest.mark.parametrize("value", [0, 1000])
def test_constant_image_is_all_background(value: int) -> None:
    mask = tissue_mask(np.full((300, 200), value, np.uint16), pixel_size_um=0.5)
    assert mask.shape == (300, 200) and mask.dtype == bool and not mask.any()


def test_float_and_tiny_images() -> None:
    image, truth = nuclei_image((160, 128), seed=6)
    mask = tissue_mask(image.astype(np.float64) / 65535, 1.0, min_area_um2=100)
    assert iou(mask, truth) > 0.8  # a small blob: the border (about 6 um wide) weighs more
    assert tissue_mask(np.zeros((1, 1), np.uint8), 1.0).shape == (1, 1)


def test_bad_parameters() -> None:
    image = np.zeros((10, 10), np.uint8)
    with pytest.raises(InputError, match="pixel_size_um"):
        tissue_mask(image, pixel_size_um=0)
    with pytest.raises(InputError, match="smoothing_um"):
        tissue_mask(image, 1.0, smoothing_um=float("nan"))
    with pytest.raises(ValueError):
        tissue_mask(np.zeros((2, 3, 4)), 1.0)


@pytest.mark.parametrize("shape, factor", [((37, 53), 5), ((40, 50), 5), ((7, 9), 4), ((3, 3), 1)])
def test_block_mean_matches_naive(shape: tuple[int, int], factor: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tissue, "STRIP_PIXELS", 64)  # force several strips
    image = np.random.default_rng(7).integers(0, 4000, shape).astype(np.uint16)
    out = block_mean(image, factor)
    expected = np.array(
        [
            [image[r : r + factor, c : c + factor].mean() for c in range(0, shape[1], factor)]
            for r in range(0, shape[0], factor)
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_upsample_nearest() -> None:
    small = np.array([[True, False], [False, True]])
    up = upsample_nearest(small, 3, (5, 6))
    assert up.shape == (5, 6) and up[0, 0] and not up[0, 3] and up[4, 5] and not up[4, 2]


def test_2048_uint16_at_fine_and_coarse_pixels() -> None:
    # Speed is measured by `make benchmark`, not asserted here (a loaded machine is slow).
    rng = np.random.default_rng(8)
    image = rng.integers(90, 120, (2048, 2048), dtype=np.uint16)
    image[500:1500, 400:1600] += rng.integers(0, 2000, (1000, 1200), dtype=np.uint16)
    for pixel_size in (0.5, 2.0):  # fine (downsampled) and coarse (no downsampling) images
        mask = tissue_mask(image, pixel_size_um=pixel_size)
        assert mask[1000, 1000] and not mask[100, 100]


def _cells(rng, n, box):
    """``n`` spots in clusters of ~20 (cells of ~5 µm radius) uniformly inside ``box``."""
    x0, x1, y0, y1 = box
    centres = np.column_stack([rng.uniform(x0, x1, n // 20), rng.uniform(y0, y1, n // 20)])
    return np.repeat(centres, 20, axis=0) + rng.normal(0, 5, (len(centres) * 20, 2))


def test_tissue_from_spots_crop_inside_tissue_is_all_tissue() -> None:
    rng = np.random.default_rng(0)
    spots = _cells(rng, 20000, (0, 400, 0, 300))
    # A nucleus-poor patch (few transcripts, not none) stays tissue, and so does a
    # transcript-free gap narrower than gap_um.
    sparse = (spots[:, 0] > 100) & (spots[:, 0] < 160) & (spots[:, 1] > 100) & (spots[:, 1] < 160)
    spots = spots[~sparse | (rng.random(len(spots)) < 0.05)]
    gap = (spots[:, 0] > 250) & (spots[:, 0] < 310) & (spots[:, 1] > 150) & (spots[:, 1] < 210)
    mask = tissue.tissue_from_spots(spots[~gap], (300, 400), pixel_size_um=1.0)
    assert mask.all()


def test_tissue_from_spots_finds_glass_whatever_the_spot_density() -> None:
    rng = np.random.default_rng(1)
    for n in (3000, 60000):  # a small panel and a large one: the same absolute rule
        spots = _cells(rng, n, (0, 250, 0, 300))  # tissue: x < 250; glass to the right
        # A few stray detections on the glass do not make it tissue.
        stray = np.c_[rng.uniform(260, 500, 6), rng.uniform(0, 300, 6)]
        mask = tissue.tissue_from_spots(np.r_[spots, stray], (300, 500), pixel_size_um=1.0,
                                        min_area_um2=2000.0)
        assert mask[:, :230].mean() > 0.97 and not mask[:, 270:].any()
        # The border lies at the outermost transcripts (x ~ 250), within a cell or two.
        assert 0.25 < mask[:, 230:270].mean() < 0.75


def test_tissue_from_spots_is_in_micrometres() -> None:
    # The same tissue imaged at two pixel sizes: the same mask in µm.
    rng = np.random.default_rng(2)
    spots_um = _cells(rng, 8000, (0, 250, 0, 300))
    fine = tissue.tissue_from_spots(spots_um / 0.5, (600, 1000), pixel_size_um=0.5,
                                    min_area_um2=2000.0)
    coarse = tissue.tissue_from_spots(spots_um, (300, 500), pixel_size_um=1.0,
                                      min_area_um2=2000.0)
    assert abs(fine.mean() - coarse.mean()) < 0.02


def test_tissue_from_spots_without_spots_and_bad_settings() -> None:
    assert not tissue.tissue_from_spots(np.empty((0, 2)), (50, 60), 1.0).any()
    outside = np.array([[-5.0, 3.0], [700.0, 2.0]])
    assert not tissue.tissue_from_spots(outside, (50, 60), 1.0).any()
    with pytest.raises(InputError, match="gap_um"):
        tissue.tissue_from_spots(np.zeros((3, 2)), (50, 60), 1.0, gap_um=0)


def test_section_tissue_follows_the_source() -> None:
    # tissue_mask.source, as rules tissue_mask and gene_candidates apply it.
    rng = np.random.default_rng(3)
    spots = _cells(rng, 8000, (0, 250, 0, 300))  # tissue: x < 250
    dapi = np.zeros((300, 500), dtype=bool)
    dapi[:, 100:400] = True
    from_spots = tissue.tissue_from_spots(spots, dapi.shape, 1.0, min_area_um2=2000.0)
    lines: list[str] = []
    for source, expected in (("spots", from_spots), ("dapi", dapi),
                             ("spots_and_dapi", from_spots & dapi)):
        got = tissue.section_tissue(source, dapi, spots, 1.0, min_area_um2=2000.0,
                                    log=lines.append)
        assert got.dtype == bool and np.array_equal(got, expected), source
    # A section without spots takes DAPI whatever the source.
    assert tissue.section_tissue("spots", dapi, None, 1.0) is dapi
    assert lines[0].startswith("tissue from 8000 spots covers ") and "DAPI: 60.0%" in lines[0]
    assert lines[1] == "tissue from DAPI: 60.0% of the image"
    assert lines[-1].startswith("where DAPI agrees: ")
