"""Synthetic demo sections: a DAPI image of a mouse-brain-like section plus its mRNA spots.

Model of the data
-----------------
A section is a tissue-shaped blob (an ellipse deformed by random Fourier modes, ragged rim)
on a dark slide. Inside lies general tissue -- a medium density of mixed round neuron-like and
smaller oval glia-like nuclei -- and two morphologically distinct regions that never overlap:

* region A, think dentate-gyrus granule layer: a tapered C-shaped band of densely packed,
  large, round, bright nuclei (jittered hexagonal packing);
* region B, think a white-matter fibre tract: a gently curved ribbon of small elongated nuclei
  lying in rows along the tract (interfascicular oligodendrocyte chains, with gaps), with only
  a few small round nuclei between the rows.

The image is what a widefield microscope records: each nucleus is a soft-edged, slightly
irregular ellipse with a brighter rim, smoothed-noise chromatin texture and a few bright
chromocentres; faint tissue autofluorescence and a darker slide lie beneath. The scene is
blurred by a Gaussian PSF plus out-of-focus haze, multiplied by a smooth uneven illumination
field and recorded with Poisson shot noise, Gaussian read noise and a camera offset (uint16).
The image is rendered by ``txmorph.demo.image``; this module lays out the section, its cells
and spots.

Transcripts (spots) lie around their cell's nucleus, within ``spot_spread`` nucleus radii.
Most region-A cells express gene A and most region-B cells gene B, several spots each; a
fraction ``off_target_fraction`` of each of those genes' spots lies around random tissue cells
outside its region; the other genes are expressed by all tissue cells alike.

Two seeds give two different brains: rotation of the whole layout, tissue shape, band and
tract placement, curvature and orientation, brightness, illumination and noise all come from
``numpy.random.default_rng(seed)`` (through independent child generators for layout, image and
spots), so the same params and seed give bit-identical sections.

``regions`` follows the pipeline's class order: 0 background, 1 tissue, 2 gene A, 3 gene B.
Lengths in :class:`DemoParams` are in micrometres unless named otherwise; the layout (tissue,
band, tract) scales with the frame, so small frames give small but complete sections.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tifffile
from scipy.spatial import cKDTree

from txmorph.demo.image import Nuclei, render_image, smooth_field
from txmorph.errors import InputError
from txmorph.outputs import atomic_path

BACKGROUND, TISSUE, REGION_A, REGION_B = 0, 1, 2, 3
MIN_SIZE_PX = 128


@dataclass(frozen=True)
class DemoParams:
    """Knobs of a demo section (lengths in micrometres unless the name says otherwise).

    Parameters
    ----------
    height, width : int
        Image size in pixels (at least MIN_SIZE_PX).
    pixel_size_um : float
        µm per pixel.
    gene_a, gene_b, other_genes
        The marker genes of region A and B, and genes every tissue cell expresses.
    tissue_radius_um, tissue_spacing_um : float
        General tissue: nucleus radius; one candidate nucleus per square of this side.
    region_a_radius_um, region_a_packing : float
        Region A's large round nuclei and their spacing in nucleus radii.
    region_b_axes_um, region_b_row_spacing_um, region_b_occupancy
        Region B's elongated nuclei: semi-axes, row spacing, fraction of row positions filled.
    spots_per_cell_a, spots_per_cell_b, expressing_fraction, other_spots_per_cell : float
        Mean marker spots per expressing cell, the share of a region's cells expressing its
        marker, and mean spots of the other genes per tissue cell.
    off_target_fraction : float
        Share of a marker's spots around random cells outside its region.
    spot_spread : float
        Spots lie within this many nucleus radii of the centre.
    psf_sigma_um, haze_sigma_um : float
        Optics: PSF blur and out-of-focus light.
    photons_per_unit, read_noise, camera_offset : float
        Camera: photo-electrons at an average nucleus's centre, read noise and offset (counts).
    """

    height: int = 2048
    width: int = 2048
    pixel_size_um: float = 1.0
    gene_a: str = "Prox1"
    gene_b: str = "Mbp"
    other_genes: tuple[str, ...] = ("Snap25", "Slc17a7", "Gad1", "Gfap", "Aqp4", "Olig2")
    tissue_radius_um: float = 5.0  # general tissue: mixed round (larger) and oval (smaller)
    tissue_spacing_um: float = 17.0  # one candidate nucleus per square of this side
    region_a_radius_um: float = 6.0  # large round granule-like nuclei
    region_a_packing: float = 2.2  # centre-to-centre spacing in region A, in nucleus radii
    region_b_axes_um: tuple[float, float] = (6.0, 2.6)  # semi-axes of the elongated nuclei
    region_b_row_spacing_um: float = 16.0
    region_b_occupancy: float = 0.7  # fraction of row positions holding a nucleus
    spots_per_cell_a: float = 3.0  # mean spots of gene A per expressing region-A cell
    spots_per_cell_b: float = 3.0
    expressing_fraction: float = 0.85
    other_spots_per_cell: float = 3.5  # mean spots of other genes per tissue cell (all genes)
    off_target_fraction: float = 0.08
    spot_spread: float = 1.8  # spots lie within this many nucleus radii of the centre
    psf_sigma_um: float = 0.8
    haze_sigma_um: float = 8.0  # out-of-focus light
    photons_per_unit: float = 1500.0  # mean photo-electrons at an average nucleus's centre
    read_noise: float = 4.0  # camera counts
    camera_offset: float = 100.0

    def __post_init__(self) -> None:
        problems = [f"{name}={getattr(self, name)!r} must be positive" for name in (
            "pixel_size_um", "tissue_radius_um", "tissue_spacing_um", "region_a_radius_um",
            "region_a_packing", "region_b_row_spacing_um", "region_b_occupancy", "psf_sigma_um",
            "haze_sigma_um", "photons_per_unit") if not getattr(self, name) > 0]
        problems += [f"{name}={getattr(self, name)!r} must not be negative" for name in (
            "spots_per_cell_a", "spots_per_cell_b", "other_spots_per_cell", "spot_spread",
            "read_noise", "camera_offset") if not getattr(self, name) >= 0]
        if not all(isinstance(n, numbers.Integral) and n >= MIN_SIZE_PX for n in (self.height, self.width)):
            problems.append(f"height and width must be integers >= {MIN_SIZE_PX} px")
        if min(self.region_b_axes_um) <= 0:
            problems.append(f"region_b_axes_um={self.region_b_axes_um!r} must be positive")
        genes = [self.gene_a, self.gene_b, *self.other_genes]
        if not self.other_genes or len(set(genes)) != len(genes) or not all(genes):
            problems.append(f"genes {genes} must be distinct, non-empty, with other_genes")
        if not (0 <= self.off_target_fraction < 1 and 0 < self.expressing_fraction <= 1):
            problems.append("off_target_fraction must be in [0, 1), expressing_fraction in (0, 1]")
        if problems:
            raise InputError("demo parameters: " + "; ".join(problems) + ": fix them in the config")


@dataclass(frozen=True)
class DemoSection:
    """A synthetic section.

    Parameters
    ----------
    image : np.ndarray
        The DAPI image, uint16.
    spots : pd.DataFrame
        ``gene``, ``x``, ``y`` in pixels.
    regions : np.ndarray
        uint8 true regions: BACKGROUND, TISSUE, REGION_A, REGION_B.
    """

    image: np.ndarray
    spots: pd.DataFrame
    regions: np.ndarray


@dataclass(frozen=True)
class _Frame:
    """Layout coordinates (u, v): image pixels about a centre, rotated by ``theta``."""

    cx: float
    cy: float
    theta: float

    def to_uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s, dx, dy = np.cos(self.theta), np.sin(self.theta), x - self.cx, y - self.cy
        return c * dx + s * dy, -s * dx + c * dy

    def to_xy(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.cos(self.theta), np.sin(self.theta)
        return self.cx + c * u - s * v, self.cy + s * u + c * v


@dataclass(frozen=True)
class _Arc:
    """A band along an elliptical arc in layout coordinates, thinner towards its ends."""

    cu: float
    cv: float
    ru: float
    rv: float
    mid: float  # angle of the arc's middle
    half_span: float  # the arc covers mid +- half_span
    half_thick: float
    taper: float  # relative thinning at the ends

    def mask(self, u: np.ndarray, v: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Points of the band, or of the band grown by ``margin`` px."""
        du, dv = u - self.cu, v - self.cv
        rel = (np.arctan2(dv, du) - self.mid + np.pi) % (2 * np.pi) - np.pi  # from the middle
        rho = np.maximum(np.hypot(du / self.ru, dv / self.rv), 1e-6)
        dist = np.hypot(du, dv) * np.abs(1.0 - 1.0 / rho)  # ~distance to the arc itself
        ends = 1.0 - np.cos(0.5 * np.pi * np.clip(rel / self.half_span, -1.0, 1.0))
        half = self.half_thick * (1.0 - self.taper * ends)
        span = self.half_span + margin / (0.5 * (self.ru + self.rv))
        return (np.abs(rel) <= span) & (dist <= half + margin)


def generate_section(params: DemoParams, seed: int) -> DemoSection:
    """Generate one synthetic section; the same params and seed give identical outputs.

    Parameters
    ----------
    params : DemoParams
        The section's knobs.
    seed : int
        Seed (or seed sequence) of the layout, image and spot generators.

    Returns
    -------
    DemoSection
        Image, spots and true regions.
    """
    layout_rng, image_rng, spot_rng = np.random.default_rng(seed).spawn(3)
    frame, arc_b, regions = _layout(params, layout_rng)
    nuclei = Nuclei.concat([_tissue_nuclei(regions, params, layout_rng),
                             _region_a_nuclei(regions, params, layout_rng),
                             _region_b_nuclei(regions, frame, arc_b, params, layout_rng)])
    image = render_image(nuclei, regions > BACKGROUND, params, image_rng)
    spots = _make_spots(nuclei, params, regions.shape, spot_rng)
    return DemoSection(image=image, spots=spots, regions=regions)


def _layout(params: DemoParams, rng: np.random.Generator) -> tuple[_Frame, _Arc, np.ndarray]:
    """Random frame and region B tract, and the region label image."""
    h, w, px = params.height, params.width, params.pixel_size_um
    s = 0.5 * min(h, w)
    frame = _Frame(cx=w * rng.uniform(0.46, 0.54), cy=h * rng.uniform(0.46, 0.54),
                   theta=rng.uniform(0, 2 * np.pi))
    radius_a, stretch = rng.uniform(0.26, 0.34) * s, rng.uniform(1.0, 1.3)
    arc_a = _Arc(cu=rng.uniform(-0.2, 0.2) * s, cv=rng.uniform(0.18, 0.28) * s,
                 ru=radius_a * stretch, rv=radius_a / stretch, mid=rng.uniform(0, 2 * np.pi),
                 half_span=np.radians(rng.uniform(100, 140)),
                 half_thick=max(rng.uniform(0.06, 0.1) * s, 3 * params.region_a_radius_um / px),
                 taper=rng.uniform(0.35, 0.55))
    # The tract runs below the band, arched so that its ends bend away from the band.
    bend, normal = rng.uniform(1.2, 2.4) * s, np.pi / 2 + rng.uniform(-0.25, 0.25)
    mid_u, mid_v = rng.uniform(-0.15, 0.15) * s, rng.uniform(-0.5, -0.42) * s
    arc_b = _Arc(cu=mid_u - bend * np.cos(normal), cv=mid_v - bend * np.sin(normal),
                 ru=bend, rv=bend, mid=normal, half_span=rng.uniform(0.5, 0.65) * s / bend,
                 half_thick=max(rng.uniform(0.065, 0.09) * s,
                                1.25 * params.region_b_row_spacing_um / px), taper=0.0)
    u, v = frame.to_uv(*np.meshgrid(np.arange(w, dtype=np.float32),
                                    np.arange(h, dtype=np.float32)))
    tissue, inner = _tissue_mask(u, v, s, margin=max(2.0, 0.02 * s), rng=rng)
    regions = tissue.astype(np.uint8)
    regions[arc_a.mask(u, v) & inner] = REGION_A
    regions[arc_b.mask(u, v) & inner & ~arc_a.mask(u, v, margin=0.05 * s)] = REGION_B
    return frame, arc_b, regions


def _tissue_mask(u: np.ndarray, v: np.ndarray, s: float, margin: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tissue (a deformed ellipse with a ragged rim) and its part ``margin`` px inside the rim."""
    semi_u, semi_v = rng.uniform(0.88, 0.97), rng.uniform(0.74, 0.86)
    phi = np.linspace(-np.pi, np.pi, 4096, endpoint=False)
    k = np.arange(2, 25)[:, None]
    modes = rng.normal(0.0, 0.06, k.shape) / k**1.1 * np.cos(k * phi + rng.uniform(0, 7, k.shape))
    ellipse = s * semi_u * semi_v / np.hypot(semi_v * np.cos(phi), semi_u * np.sin(phi))
    rim = (ellipse * (1.0 + modes.sum(0)))[
        ((np.arctan2(v, u) + np.pi) * (phi.size / (2 * np.pi))).astype(np.int64) % phi.size]
    distance = np.hypot(u, v)
    return distance < rim, distance < rim - margin


def _label_at(regions: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Region label under each point; background for points outside the image."""
    r, c = np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)
    inside = (r >= 0) & (r < regions.shape[0]) & (c >= 0) & (c < regions.shape[1])
    labels = np.zeros(x.shape, np.uint8)
    labels[inside] = regions[r[inside], c[inside]]
    return labels


def _stratified_points(regions: np.ndarray, label: int, cell: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One uniform random point per square of side ``cell``, kept where the label matches."""
    gy, gx = np.mgrid[0 : regions.shape[0] : cell, 0 : regions.shape[1] : cell]
    x, y = (gx + cell * rng.random(gx.shape)).ravel(), (gy + cell * rng.random(gy.shape)).ravel()
    keep = _label_at(regions, x, y) == label
    return x[keep], y[keep]


def _nuclei(x, y, size, aspect, angle, brightness, chromocentres, label: int) -> Nuclei:
    """Nuclei of one region; ``size`` is the geometric-mean radius, ``aspect`` the axis ratio."""
    n, stretch = x.size, np.sqrt(aspect)
    return Nuclei(x, y, size * stretch, size / stretch, angle, brightness,
                   np.broadcast_to(chromocentres, n).astype(float), np.full(n, label, np.uint8))


def _tissue_nuclei(regions: np.ndarray, params: DemoParams, rng: np.random.Generator) -> Nuclei:
    """Mixed round and oval nuclei at medium, smoothly varying density (general tissue)."""
    px, radius = params.pixel_size_um, params.tissue_radius_um / params.pixel_size_um
    x, y = _stratified_points(regions, TISSUE, params.tissue_spacing_um / px, rng)
    keep = np.ones(x.size, bool)
    keep[cKDTree(np.c_[x, y]).query_pairs(1.4 * radius, output_type="ndarray")[:, 1]] = False
    density = smooth_field(regions.shape, rng, wavelength_px=0.3 * min(regions.shape))
    local = density[np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)]
    keep &= rng.random(x.size) < np.clip(0.8 + 0.25 * local, 0.3, 1.0)
    x, y, n = x[keep], y[keep], int(keep.sum())
    neuron = rng.random(n) < 0.55  # round, larger, paler, more chromocentres; else oval glia
    size = radius * np.where(neuron, rng.uniform(1.0, 1.25, n), rng.uniform(0.65, 0.85, n))
    aspect = np.where(neuron, rng.uniform(1.0, 1.25, n), rng.uniform(1.25, 1.8, n))
    return _nuclei(x, y, size, aspect, rng.uniform(0, np.pi, n),
                   np.where(neuron, 0.75, 1.05) * rng.lognormal(0.0, 0.18, n),
                   np.where(neuron, 4.0, 2.0), TISSUE)


def _region_a_nuclei(regions: np.ndarray, params: DemoParams, rng: np.random.Generator) -> Nuclei:
    """Densely packed large round bright nuclei on a jittered hexagonal lattice."""
    (h, w), radius = regions.shape, params.region_a_radius_um / params.pixel_size_um
    step, half = params.region_a_packing * radius, 0.75 * np.hypot(h, w)
    q, p = np.mgrid[-half : half : step * 0.866, -half:half:step]
    p = (p + 0.5 * step * (np.rint(q / (step * 0.866)) % 2)).ravel()  # shift every other row
    q, turn = q.ravel(), rng.uniform(0, np.pi)
    x = w / 2 + np.cos(turn) * p - np.sin(turn) * q + rng.normal(0, 0.07 * step, p.size)
    y = h / 2 + np.sin(turn) * p + np.cos(turn) * q + rng.normal(0, 0.07 * step, p.size)
    keep = (_label_at(regions, x, y) == REGION_A) & (rng.random(x.size) < 0.95)
    x, y, n = x[keep], y[keep], int(keep.sum())
    return _nuclei(x, y, radius * rng.uniform(0.88, 1.02, n), rng.uniform(1.0, 1.15, n),
                   rng.uniform(0, np.pi, n), 1.15 * rng.lognormal(0.0, 0.12, n), 5.0, REGION_A)


def _region_b_nuclei(regions: np.ndarray, frame: _Frame, arc: _Arc, params: DemoParams,
                     rng: np.random.Generator) -> Nuclei:
    """Small elongated nuclei in chains along the tract, plus a few round ones between rows."""
    px = params.pixel_size_um
    major, minor = (axis / px for axis in params.region_b_axes_um)
    spacing, step = params.region_b_row_spacing_um / px, 2.3 * major
    radii = np.arange(arc.ru - arc.half_thick, arc.ru + arc.half_thick + spacing, spacing)
    radii = radii + rng.normal(0, 0.15 * spacing, radii.size)
    along = np.arange(-arc.half_span * arc.ru, arc.half_span * arc.ru, step)
    t = np.tile(along, radii.size) + rng.normal(0, 0.15 * step, radii.size * along.size)
    meander = 0.2 * spacing * np.sin(2 * np.pi * t / (10 * spacing) + np.repeat(
        rng.uniform(0, 2 * np.pi, radii.size), along.size))  # rows wander a little
    r = np.repeat(radii, along.size) + meander + rng.normal(0, 0.8, t.size)
    theta = arc.mid + t / r
    x, y = frame.to_xy(arc.cu + r * np.cos(theta), arc.cv + r * np.sin(theta))
    keep = _label_at(regions, x, y) == REGION_B
    keep &= rng.random(x.size) < params.region_b_occupancy  # gaps split rows into chains
    x, y, theta, n = x[keep], y[keep], theta[keep], int(keep.sum())
    chains = _nuclei(x, y, np.sqrt(major * minor) * rng.uniform(0.85, 1.15, n),
                     major / minor * rng.uniform(0.8, 1.25, n),
                     theta + np.pi / 2 + frame.theta + rng.normal(0, 0.08, n),
                     1.1 * rng.lognormal(0.0, 0.15, n), 1.0, REGION_B)
    x, y = _stratified_points(regions, REGION_B, 2.5 * params.tissue_spacing_um / px, rng)
    n = x.size
    between = _nuclei(x, y, 0.7 * params.tissue_radius_um / px * rng.uniform(0.9, 1.1, n),
                      1.2, rng.uniform(0, np.pi, n), 0.9 * rng.lognormal(0.0, 0.15, n),
                      2.0, REGION_B)
    return Nuclei.concat([chains, between])


def _make_spots(nuclei: Nuclei, params: DemoParams, shape: tuple[int, int],
                rng: np.random.Generator) -> pd.DataFrame:
    """Transcripts around their cells' nuclei: marker genes by region, others everywhere."""
    cells, genes = [], []
    for gene, label, rate in ((params.gene_a, REGION_A, params.spots_per_cell_a),
                              (params.gene_b, REGION_B, params.spots_per_cell_b)):
        own = np.flatnonzero(nuclei.region == label)
        expressing = own[rng.random(own.size) < params.expressing_fraction]
        on_target = np.repeat(expressing, rng.poisson(rate, expressing.size))
        elsewhere = np.flatnonzero(nuclei.region != label)
        fraction = params.off_target_fraction
        n_off = int(round(on_target.size * fraction / (1 - fraction))) if elsewhere.size else 0
        cells += [on_target, rng.choice(elsewhere, n_off) if n_off else np.zeros(0, np.int64)]
        genes.append(np.full(on_target.size + n_off, gene, dtype=object))
    other = np.repeat(np.arange(nuclei.x.size),
                      rng.poisson(params.other_spots_per_cell, nuclei.x.size))
    cells.append(other)
    names = np.asarray(params.other_genes, dtype=object)
    genes.append(names[rng.integers(names.size, size=other.size)])
    cell, gene = np.concatenate(cells).astype(np.int64), np.concatenate(genes)
    reach = params.spot_spread * np.sqrt(nuclei.a[cell] * nuclei.b[cell] * rng.random(cell.size))
    turn = rng.uniform(0, 2 * np.pi, cell.size)
    x = np.clip(nuclei.x[cell] + reach * np.cos(turn), 0, shape[1] - 1).round(2)
    y = np.clip(nuclei.y[cell] + reach * np.sin(turn), 0, shape[0] - 1).round(2)
    order = rng.permutation(cell.size)
    return pd.DataFrame({"gene": gene[order].astype(str), "x": x[order], "y": y[order]})


def write_section(section: DemoSection, image_path: str | os.PathLike,
                  spots_path: str | os.PathLike,
                  regions_path: str | os.PathLike | None = None) -> None:
    """Write image (uint16 TIFF), spots (CSV ``gene,x,y``) and optionally regions (uint8 TIFF).

    Each file is written under a temporary name in its directory and then renamed, so a file
    with the final name is always complete.

    Parameters
    ----------
    section : DemoSection
        What to write.
    image_path, spots_path : str or os.PathLike
        The image TIFF and the spot CSV.
    regions_path : str or os.PathLike or None
        The regions TIFF, or None to skip it.
    """
    with atomic_path(image_path) as tmp:
        tifffile.imwrite(tmp, section.image, photometric="minisblack")
    with atomic_path(spots_path) as tmp:
        section.spots[["gene", "x", "y"]].to_csv(tmp, index=False)
    if regions_path is not None:
        with atomic_path(regions_path) as tmp:
            tifffile.imwrite(tmp, section.regions, photometric="minisblack")
