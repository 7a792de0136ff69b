"""The microscope of the demo sections (``txmorph.demo.layout``): nuclei in, a DAPI image out.

Each nucleus is a soft-edged, slightly irregular ellipse with a brighter rim, smoothed-noise
chromatin texture and a few bright chromocentres; faint tissue autofluorescence and a darker
slide lie beneath. The scene is blurred by a Gaussian PSF plus out-of-focus haze, multiplied by
a smooth uneven illumination field and recorded with Poisson shot noise, Gaussian read noise
and a camera offset (uint16). Apart from the layout of ``txmorph.demo.layout``, so that each module
is one model: where cells are (and what they express) there, how they look here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:  # only a type here; txmorph.demo.layout imports this module
    from txmorph.demo.layout import DemoParams

_STAMP_CHUNK = 1024  # nuclei rendered per batch: bounds the memory of the stamp arrays


@dataclass(frozen=True)
class Nuclei:
    """Nuclei as parallel arrays: centre, semi-axes, orientation, brightness, region.

    Parameters
    ----------
    x, y : np.ndarray
        Centres in pixels (x = column, y = row).
    a, b : np.ndarray
        Semi-axes in pixels, ``a`` along ``angle``.
    angle : np.ndarray
        Orientation in radians from the x axis towards the y axis.
    brightness : np.ndarray
        Peak brightness in scene units.
    chromocentres : np.ndarray
        Mean number of chromocentres per nucleus.
    region : np.ndarray
        uint8 region label of each nucleus (``txmorph.demo.layout``'s BACKGROUND ... REGION_B).
    """

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray  # semi-axis along ``angle`` (px)
    b: np.ndarray
    angle: np.ndarray  # radians from the x axis towards the y axis
    brightness: np.ndarray
    chromocentres: np.ndarray  # mean number of chromocentres
    region: np.ndarray

    @staticmethod
    def concat(parts: list[Nuclei]) -> Nuclei:
        """The nuclei of every part, in order, as one set."""
        return Nuclei(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in fields(Nuclei)))


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, wavelength_px: float,
                  waves: int = 6) -> np.ndarray:
    """A smooth random field (sum of plane waves), float32, mean ~0, standard deviation ~1.

    Parameters
    ----------
    shape : tuple[int, int]
        (rows, cols).
    rng : np.random.Generator
        The source of the waves' directions, phases and wavelengths.
    wavelength_px : float
        Typical wavelength in pixels (each wave's is 0.7 to 1.4 times it).
    waves : int
        Number of plane waves summed.

    Returns
    -------
    np.ndarray
        The field, float32, of ``shape``.
    """
    y, x = np.arange(shape[0], dtype=np.float32), np.arange(shape[1], dtype=np.float32)
    field = np.zeros(shape, np.float32)
    for _ in range(waves):
        k = 2 * np.pi / (wavelength_px * rng.uniform(0.7, 1.4))
        direction, phase = rng.uniform(0, 2 * np.pi, 2)
        ax, ay = k * np.cos(direction) * x + phase, k * np.sin(direction) * y
        field += np.outer(np.cos(ay), np.cos(ax)) - np.outer(np.sin(ay), np.sin(ax))
    return field * np.float32(np.sqrt(2.0 / waves))


def _splat(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
           shape: tuple[int, int]) -> np.ndarray:
    """Sum values into an image at integer (row, col) positions, ignoring those outside it."""
    ok = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    flat = np.bincount(rows[ok] * shape[1] + cols[ok], values[ok], minlength=shape[0] * shape[1])
    return flat.reshape(shape)


def _stamp_nuclei(nuclei: Nuclei, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sum of soft-edged, slightly irregular elliptical nuclei with a brighter rim (float64)."""
    n = nuclei.x.size
    wobble, phase = rng.normal(0.0, 0.04, (n, 2, 1, 1)), rng.uniform(0, 2 * np.pi, (n, 2, 1, 1))
    rim = rng.uniform(0.15, 0.35, (n, 1, 1))
    out = np.zeros(shape)
    for i in (slice(j, j + _STAMP_CHUNK) for j in range(0, n, _STAMP_CHUNK)):
        a, b, angle, brightness = (arr[i][:, None, None] for arr in (
            nuclei.a, nuclei.b, nuclei.angle, nuclei.brightness))
        half = int(np.ceil(1.3 * max(a.max(), b.max()) + 1.5))
        grid = np.arange(-half, half + 1)
        row0, col0 = np.rint(nuclei.y[i]).astype(np.int64), np.rint(nuclei.x[i]).astype(np.int64)
        dy = grid[None, :, None] - (nuclei.y[i] - row0)[:, None, None]
        dx = grid[None, None, :] - (nuclei.x[i] - col0)[:, None, None]
        pu = (np.cos(angle) * dx + np.sin(angle) * dy) / a
        pv = (np.cos(angle) * dy - np.sin(angle) * dx) / b
        psi = np.arctan2(pv, pu)
        rho = np.hypot(pu, pv) / (1.0 + wobble[i, 0] * np.cos(2 * psi + phase[i, 0])
                                  + wobble[i, 1] * np.cos(3 * psi + phase[i, 1]))
        edge = 0.7 / np.sqrt(a * b)  # about one pixel wide
        value = brightness / (1.0 + np.exp(np.clip((rho - 1.0) / edge, -50, 50)))
        value *= 1.0 + rim[i] * np.exp(-(((rho - 0.85) / 0.12) ** 2))
        rows = np.broadcast_to(row0[:, None, None] + grid[None, :, None], value.shape)
        cols = np.broadcast_to(col0[:, None, None] + grid[None, None, :], value.shape)
        out += _splat(rows.ravel(), cols.ravel(), value.ravel(), shape)
    return out


def _chromocentres(nuclei: Nuclei, shape: tuple[int, int], sigma_px: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Small bright heterochromatin foci inside each nucleus (peak ~0.8x its brightness)."""
    owner = np.repeat(np.arange(nuclei.x.size), rng.poisson(nuclei.chromocentres))
    r, t = 0.7 * np.sqrt(rng.random(owner.size)), rng.uniform(0, 2 * np.pi, owner.size)
    lu, lv = nuclei.a[owner] * r * np.cos(t), nuclei.b[owner] * r * np.sin(t)
    cos, sin = np.cos(nuclei.angle[owner]), np.sin(nuclei.angle[owner])
    rows = np.rint(nuclei.y[owner] + sin * lu + cos * lv).astype(np.int64)
    cols = np.rint(nuclei.x[owner] + cos * lu - sin * lv).astype(np.int64)
    peak = 0.8 * nuclei.brightness[owner] * rng.uniform(0.5, 1.0, owner.size)
    impulses = _splat(rows, cols, 2 * np.pi * sigma_px**2 * peak, shape).astype(np.float32)
    return ndimage.gaussian_filter(impulses, sigma_px)


def render_image(nuclei: Nuclei, tissue: np.ndarray, params: DemoParams,
                 rng: np.random.Generator) -> np.ndarray:
    """Optics and camera: nuclei + autofluorescence, PSF, haze, illumination, noise -> uint16.

    Parameters
    ----------
    nuclei : Nuclei
        Every nucleus of the section.
    tissue : np.ndarray
        bool (rows, cols): where tissue autofluorescence lies.
    params : DemoParams
        Pixel size, PSF and haze widths, photon and camera settings.
    rng : np.random.Generator
        The image's own generator (texture, illumination, noise).

    Returns
    -------
    np.ndarray
        The DAPI image, uint16.
    """
    (h, w), px = tissue.shape, params.pixel_size_um
    nuclear = _stamp_nuclei(nuclei, (h, w), rng).astype(np.float32)
    nuclear += _chromocentres(nuclei, (h, w), max(0.5, 0.6 / px), rng)
    chromatin = ndimage.gaussian_filter(rng.standard_normal((h, w), np.float32), max(0.7, 0.8 / px))
    nuclear *= np.clip(1.0 + 0.3 / max(float(chromatin.std()), 1e-6) * chromatin, 0.3, None)
    neuropil = np.clip(1.0 + 0.3 * smooth_field((h, w), rng, 200.0 / px), 0.3, None)
    soft_tissue = ndimage.gaussian_filter(tissue.astype(np.float32), max(1.0, 4.0 / px))
    scene = nuclear + rng.uniform(0.05, 0.1) * soft_tissue * neuropil + rng.uniform(0.015, 0.035)
    scene = ndimage.gaussian_filter(scene, params.psf_sigma_um / px)
    scene += rng.uniform(0.1, 0.2) * ndimage.gaussian_filter(nuclear, params.haze_sigma_um / px)
    yy, xx = np.ogrid[:h, :w]
    cy, cx = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65)
    vignette = rng.uniform(0.1, 0.25) * ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.25 * (h * h + w * w))
    field = 1.0 + rng.uniform(0.05, 0.15) * smooth_field((h, w), rng, 1.5 * max(h, w), waves=3)
    scene *= np.clip(field - vignette, 0.3, None)
    photons = rng.poisson(scene * (params.photons_per_unit * rng.uniform(0.6, 1.4)))
    read = rng.normal(params.camera_offset, params.read_noise * rng.uniform(0.8, 1.25), (h, w))
    return np.clip(np.rint(photons + read), 0, np.iinfo(np.uint16).max).astype(np.uint16)
