"""The summary figure (txmorph.evaluate.figures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from txmorph.evaluate.figures import GENE_COLOURS, class_colours, summary_figure

CLASSES = ["background", "tissue", "Prox1", "Mbp"]


def _labels(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.uint8)
    labels[(yy > shape[0] * 0.1) & (yy < shape[0] * 0.9)] = 1
    labels[(labels == 1) & (xx < shape[1] * 0.4)] = 2
    labels[(labels == 1) & (xx > shape[1] * 0.7)] = 3
    return labels


def test_class_colours_stable_and_distinct() -> None:
    colours = class_colours(CLASSES + [f"g{i}" for i in range(12)])
    assert colours[0] == pytest.approx((0.08, 0.08, 0.08))
    assert colours[:4] == class_colours(CLASSES)
    assert len(set(colours)) == len(colours)
    assert all(0 <= v <= 1 for colour in colours for v in colour)


def _red_pixels(path: Path) -> int:
    """Pixels of the first gene's colour in a PNG."""
    pixels = matplotlib.image.imread(path)[..., :3]
    return int((np.abs(pixels - np.asarray(GENE_COLOURS[0])).max(axis=-1) < 0.02).sum())


def test_summary_figure_draws_each_map_at_its_given_stride(tmp_path: Path) -> None:
    # A 4 x 3 grid fits a 100 x 90 image at stride 25 and at 30 alike (ceil(100/s) = 4,
    # ceil(90/s) = 3): only the given stride says where the map lies.
    image = np.zeros((100, 90), np.uint16)
    gene = np.full((4, 3), 2, np.uint8)
    sizes = {}
    for stride in (25, 30, 15):
        path = tmp_path / f"stride{stride}.png"
        summary_figure(image, None, {"size8": gene}, CLASSES, path, strides={"size8": stride})
        sizes[stride] = _red_pixels(path)
    # The drawn extent is (4 s) x (3 s) pixels, clipped to the image: areas 100x75, 100x90
    # and 60x45 image pixels.
    assert sizes[15] < sizes[25] < sizes[30]
    assert sizes[15] / sizes[30] == pytest.approx(60 * 45 / (100 * 90), rel=0.15)
    assert sizes[25] / sizes[30] == pytest.approx(100 * 75 / (100 * 90), rel=0.05)
    with pytest.raises(ValueError, match="no stride given"):
        summary_figure(image, None, {"size8": gene}, CLASSES, tmp_path / "f.png", strides={})


def test_summary_figure_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (120, 100)).astype(np.uint16)
    truth = _labels((120, 100))
    predictions = {
        "size32": _labels((-(-120 // 32), -(-100 // 32))),
        "size8": _labels((15, 13)),
        "ensemble": _labels((15, 13)),
    }
    path = tmp_path / "sub" / "figure.png"
    summary_figure(image, truth, predictions, CLASSES, path, max_pixels=64,
                   strides={"size32": 32, "size8": 8, "ensemble": 8},
                   notes={"size8": "mean Dice 0.500"})
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and 200 < pixels.shape[0] < 2000 and 300 < pixels.shape[1] < 3000
    assert [p.name for p in path.parent.iterdir()] == ["figure.png"]  # no temporaries left


def test_summary_figure_rejects_bad_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classes"):
        summary_figure(np.zeros((8, 8)), np.full((8, 8), 9), {}, CLASSES, tmp_path / "f.png",
                       strides={})
    assert not (tmp_path / "f.png").exists()
