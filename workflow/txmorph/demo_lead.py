"""Synthetic demo sections: a fair stand-in for a DAPI image of a brain section with spots.

The model of the data, in the order it is generated (everything from one seed):

1. *Tissue*: a deformed ellipse (random low-order harmonics on its radius), rotated at random,
   covering roughly half to two thirds of the frame, on a dark background.
2. *Regions* inside the tissue: region A, a curved band of densely packed, large, round, bright
   nuclei (think dentate-gyrus granule layer); region B, a straight tract of small elongated
   nuclei in rows along the tract (think interfascicular oligodendrocytes in white matter).
   Position, curvature and orientation differ between seeds, as between two brains.
3. *Nuclei*: general tissue holds medium-sized round-to-oval nuclei at medium density. Each
   nucleus is a soft-edged ellipse modulated by a chromatin texture.
4. *Optics*: tissue autofluorescence, Gaussian blur (the point-spread function), a smooth
   multiplicative illumination field, Poisson shot noise and Gaussian read noise, stored as
   uint16 with a camera offset.
5. *Spots*: transcripts scattered around their cell's nucleus. Most region-A cells express gene
   A and most region-B cells gene B; a fraction of both genes' spots is off-target, in random
   tissue cells; several other genes are expressed by all tissue cells.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

BACKGROUND, TISSUE, REGION_A, REGION_B = 0, 1, 2, 3


@dataclass(frozen=True)
class DemoParams:
    height: int = 2048
    width: int = 2048
    pixel_size_um: float = 1.0
    gene_a: str = "Prox1"
    gene_b: str = "Mbp"
    other_genes: tuple[str, ...] = ("Snap25", "Slc17a7", "Gad1", "Gfap", "Aqp4", "Olig2")
    # Nucleus radii and spacing in pixels: (general tissue, region A, region B).
    tissue_radius: float = 4.5
    tissue_spacing: float = 14.0
    a_radius: float = 5.5
    a_spacing: float = 10.5
    b_radii: tuple[float, float] = (5.5, 2.4)  # along, across the tract
    b_spacing: tuple[float, float] = (11.0, 16.0)  # along a row, between rows
    # Transcripts.
    expressing_fraction: float = 0.85  # of region cells that express the region's gene
    spots_per_expressing_cell: float = 6.0
    other_spots_per_cell: float = 0.6  # per other gene
    off_target_fraction: float = 0.08
    noise: float = 1.0  # scales read noise; photons scale with the seed's brightness


@dataclass
class DemoSection:
    image: np.ndarray  # uint16 (H, W)
    spots: pd.DataFrame  # gene, x, y (pixels)
    regions: np.ndarray  # uint8 (H, W): 0 background, 1 tissue, 2 region A, 3 region B


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma``."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (field - field.mean()) / (field.std() + 1e-12)


def _layout(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Region label image: tissue blob, region-A band and region-B tract."""
    height, width = shape
    size = min(height, width)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = np.array([height, width]) / 2 + rng.uniform(-0.04, 0.04, 2) * size
    dy, dx = rows - centre[0], cols - centre[1]
    angle = np.arctan2(dy, dx)
    theta = rng.uniform(0, np.pi)
    radius = np.ones_like(angle)
    for k in range(2, 6):
        radius += rng.uniform(0.02, 0.07) / k * np.cos(k * (angle - theta) + rng.uniform(0, 2 * np.pi))
    # An ellipse with random axes and orientation, deformed by the harmonics above.
    axes = np.array([rng.uniform(0.40, 0.46), rng.uniform(0.30, 0.40)]) * size
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    tissue = np.hypot(u / axes[0], v / axes[1]) <= radius
    inner = ndimage.binary_erosion(tissue, iterations=max(1, int(0.04 * size)))

    # Region A: an arc of a circle whose centre sits beside the tissue centre.
    arc_radius = rng.uniform(0.16, 0.24) * size
    arc_dir = rng.uniform(0, 2 * np.pi)
    arc_centre = centre + 0.18 * size * np.array([np.sin(arc_dir), np.cos(arc_dir)])
    distance = np.hypot(rows - arc_centre[0], cols - arc_centre[1])
    arc_angle = np.angle(np.exp(1j * (np.arctan2(rows - arc_centre[0], cols - arc_centre[1]) - arc_dir - np.pi)))
    half_thickness = rng.uniform(0.035, 0.055) * size
    band = (np.abs(distance - arc_radius) < half_thickness) & (np.abs(arc_angle) < rng.uniform(1.0, 1.5))

    # Region B: a straight tract through the tissue, on the far side from the band.
    tract_angle = rng.uniform(0, np.pi)
    offset = -0.26 * size * np.array([np.sin(arc_dir), np.cos(arc_dir)])
    across = -(cols - centre[1] - offset[1]) * np.sin(tract_angle) + (rows - centre[0] - offset[0]) * np.cos(tract_angle)
    tract = np.abs(across) < rng.uniform(0.05, 0.07) * size
    margin = ndimage.binary_dilation(band, iterations=max(1, int(0.03 * size)))

    labels = np.zeros(shape, dtype=np.uint8)
    labels[tissue] = TISSUE
    labels[band & inner] = REGION_A
    labels[tract & inner & ~margin] = REGION_B
    return labels, tract_angle


def _lattice(rng, shape, spacing_along, spacing_across, angle, jitter):
    """Jittered lattice points (row, col) over the frame, rows of the lattice along ``angle``."""
    height, width = shape
    extent = np.hypot(height, width)
    u = np.arange(-extent / 2, extent / 2, spacing_along)
    v = np.arange(-extent / 2, extent / 2, spacing_across)
    uu, vv = np.meshgrid(u, v)
    uu = uu + rng.uniform(-jitter, jitter, uu.shape) * spacing_along
    vv = vv + rng.uniform(-jitter, jitter, vv.shape) * spacing_across
    rows = height / 2 + uu * np.sin(angle) + vv * np.cos(angle)
    cols = width / 2 + uu * np.cos(angle) - vv * np.sin(angle)
    keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return np.stack([rows[keep], cols[keep]], axis=1)


def _nuclei(rng, params: DemoParams, labels, tract_angle):
    """Nucleus table: centre (row, col), semi-axes (a, b), orientation, brightness, region."""
    shape = labels.shape
    groups = []
    specs = [
        (TISSUE, params.tissue_spacing, params.tissue_spacing, rng.uniform(0, np.pi), 0.35, 0.8),
        (REGION_A, params.a_spacing, params.a_spacing, rng.uniform(0, np.pi), 0.2, 0.97),
        (REGION_B, params.b_spacing[0], params.b_spacing[1], tract_angle, 0.15, 0.9),
    ]
    for region, along, across, angle, jitter, keep in specs:
        points = _lattice(rng, shape, along, across, angle, jitter)
        inside = labels[points[:, 0].astype(int), points[:, 1].astype(int)] == region
        points = points[inside & (rng.random(len(points)) < keep)]
        n = len(points)
        if region == TISSUE:
            a = params.tissue_radius * rng.uniform(0.85, 1.3, n)
            b = a * rng.uniform(0.65, 1.0, n)
            orientation = rng.uniform(0, np.pi, n)
            brightness = rng.uniform(0.55, 0.85, n)
        elif region == REGION_A:
            a = params.a_radius * rng.uniform(0.9, 1.12, n)
            b = a * rng.uniform(0.9, 1.0, n)
            orientation = rng.uniform(0, np.pi, n)
            brightness = rng.uniform(0.85, 1.0, n)
        else:
            a = params.b_radii[0] * rng.uniform(0.85, 1.15, n)
            b = params.b_radii[1] * rng.uniform(0.85, 1.15, n)
            orientation = tract_angle + rng.normal(0, 0.15, n)
            brightness = rng.uniform(0.7, 0.95, n)
        groups.append(pd.DataFrame({
            "row": points[:, 0], "col": points[:, 1], "a": a, "b": b,
            "orientation": orientation, "brightness": brightness, "region": region,
        }))
    return pd.concat(groups, ignore_index=True)


def _render(nuclei: pd.DataFrame, shape, texture: np.ndarray) -> np.ndarray:
    """Nuclei as soft-edged textured ellipses (maximum where two overlap)."""
    image = np.zeros(shape, dtype=np.float32)
    height, width = shape
    for row, col, a, b, orientation, brightness in nuclei[
        ["row", "col", "a", "b", "orientation", "brightness"]
    ].itertuples(index=False):
        reach = int(np.ceil(a + 2))
        r0, r1 = max(0, int(row) - reach), min(height, int(row) + reach + 1)
        c0, c1 = max(0, int(col) - reach), min(width, int(col) + reach + 1)
        dy = np.arange(r0, r1, dtype=np.float32)[:, None] - row
        dx = np.arange(c0, c1, dtype=np.float32)[None, :] - col
        cos, sin = np.cos(orientation), np.sin(orientation)
        rho = np.hypot((dx * cos + dy * sin) / a, (-dx * sin + dy * cos) / b)
        stamp = brightness / (1 + np.exp((rho - 1) * 8)) * (1 + 0.35 * texture[r0:r1, c0:c1])
        np.maximum(image[r0:r1, c0:c1], stamp, out=image[r0:r1, c0:c1])
    return image


def _spots(rng, params: DemoParams, nuclei: pd.DataFrame) -> pd.DataFrame:
    """Transcripts around their cell's nucleus: region genes, off-target, other genes."""
    cell_ids: list[np.ndarray] = []
    genes: list[np.ndarray] = []
    for gene, region in ((params.gene_a, REGION_A), (params.gene_b, REGION_B)):
        cells = np.flatnonzero(nuclei["region"].to_numpy() == region)
        cells = cells[rng.random(len(cells)) < params.expressing_fraction]
        counts = rng.poisson(params.spots_per_expressing_cell, len(cells))
        on_target = np.repeat(cells, counts)
        n_off = int(round(len(on_target) * params.off_target_fraction / (1 - params.off_target_fraction)))
        off_target = rng.integers(0, len(nuclei), n_off)
        cell_ids += [on_target, off_target]
        genes.append(np.full(len(on_target) + n_off, gene, dtype=object))
    for gene in params.other_genes:
        counts = rng.poisson(params.other_spots_per_cell * rng.uniform(0.5, 1.5), len(nuclei))
        cell_ids.append(np.repeat(np.arange(len(nuclei)), counts))
        genes.append(np.full(counts.sum(), gene, dtype=object))
    cells = np.concatenate(cell_ids).astype(np.int64)
    radius = nuclei["a"].to_numpy()[cells] * 1.8 * np.sqrt(rng.random(len(cells)))
    direction = rng.uniform(0, 2 * np.pi, len(cells))
    spots = pd.DataFrame({
        "gene": np.concatenate(genes).astype(str),
        "x": nuclei["col"].to_numpy()[cells] + radius * np.cos(direction),
        "y": nuclei["row"].to_numpy()[cells] + radius * np.sin(direction),
    })
    return spots


def generate_section(params: DemoParams, seed: int) -> DemoSection:
    """One synthetic section; the same ``params`` and ``seed`` give bit-identical output."""
    rng = np.random.default_rng(seed)
    shape = (params.height, params.width)
    labels, tract_angle = _layout(rng, shape)
    nuclei = _nuclei(rng, params, labels, tract_angle)
    texture = _smooth_noise(rng, shape, 1.2)
    signal = _render(nuclei, shape, texture)
    tissue = labels > BACKGROUND
    autofluorescence = np.where(ndimage.gaussian_filter(tissue.astype(np.float32), 6) > 0.5, 0.12, 0.03)
    signal = ndimage.gaussian_filter(signal + autofluorescence.astype(np.float32), 1.0)
    illumination = 1 + 0.25 * _smooth_noise(rng, shape, min(shape) / 6)
    photons = rng.uniform(250, 500)  # brightness differs between sections
    counts = rng.poisson(np.clip(signal * illumination, 0, None) * photons)
    read_noise = rng.normal(0, 3.0 * params.noise, shape)
    image = np.clip(counts + read_noise + 100, 0, 65535).astype(np.uint16)

    spots = _spots(rng, params, nuclei)
    inside = (spots["x"] >= 0) & (spots["x"] < params.width) & (spots["y"] >= 0) & (spots["y"] < params.height)
    spots = spots[inside].reset_index(drop=True)
    return DemoSection(image=image, spots=spots, regions=labels)


def _atomic_write(path: str | os.PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_section(section: DemoSection, image_path, spots_path, regions_path=None) -> None:
    """Write the image (uint16 TIFF), spots (CSV gene,x,y) and regions (uint8 TIFF) atomically."""
    _atomic_write(image_path, lambda p: tifffile.imwrite(p, section.image, compression="zlib"))
    _atomic_write(spots_path, lambda p: section.spots.to_csv(p, index=False, float_format="%.2f", mode="w"))
    if regions_path is not None:
        _atomic_write(regions_path, lambda p: tifffile.imwrite(p, section.regions, compression="zlib"))
