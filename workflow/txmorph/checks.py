"""Sanity checks of one imported section: do its image, tissue and spots belong together?

Each check compares two things that were measured independently (the DAPI tissue mask and
the spot cloud, a patch size and the section's size, a test gene's spots and the bandwidth
of the reference rule), so that a wrong scale, a blank image or a gene too sparse to define
a region is caught at import, named, and explained, instead of yielding a meaningless
Dice. Findings are data (:class:`Finding`); the rule decides what stops the run.

Severities:

- ``error``: the inputs do not fit together (spots at another scale than the image, a
  patch larger than the section, a training section without tissue). The run stops before
  any heavy work, unless ``checks.on_failure: warn`` says the user knows better.
- ``warning``: legitimate but worth knowing (little tissue, many spots dropped off the image,
  one gene mostly off the tissue, a class too sparse in one training section to learn from
  there). Logged and shown in the report.
- ``not_evaluable``: a test section without tissue, or a test gene too sparse for the
  reference rule. It runs; its Dice is reported as not evaluable, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from txmorph.blocks import blocks_problem

SEVERITIES = ("error", "warning", "not_evaluable")
#: Spots used as disk centres when counting a gene's densest kernel footprint (even stride).
MAX_DISK_CENTRES = 20_000
#: Percentiles of the spot cloud's extent (robust to a few stray spots).
EXTENT_PERCENTILES = (0.5, 99.5)
#: Below this tissue fraction of the image a warning says the tissue is tiny.
SMALL_TISSUE_FRACTION = 0.01
#: Above this fraction of spots dropped off the image, a warning suggests a scale problem.
DROPPED_FRACTION_WARNING = 0.1
#: Below this fraction of spots on the DAPI tissue (but above the error threshold) a warning.
IN_TISSUE_WARNING = 0.5
#: Checks whose error ``checks.on_failure: warn`` may turn into a warning: judgements about
#: scale. A training section without tissue or a patch larger than the section cannot run.
OVERRIDABLE = ("spots_in_tissue", "spot_extent", "saturation", "dark_image")
#: Shares of the DAPI tissue's pixels at the image's top grey level (saturated: their nuclei
#: have no texture left) above which a warning, and an error, is raised. A well-exposed
#: fluorescence image has next to none (0.0 % on both real crops and the demo).
SATURATION_WARNING, SATURATION_ERROR = 0.02, 0.20
#: Shares of the DAPI tissue's pixels in the lowest DARK_LEVELS grey levels above which the
#: image is too dark to show nuclear texture (a warning; an error). 12.6 % on the MERFISH
#: crop's left half, an 8-bit image with a dark background.
DARK_LEVELS = 4
DARK_WARNING, DARK_ERROR = 0.50, 0.90
#: Image rows read at once for the grey-level counts (bounds memory on large sections).
GREY_LEVEL_ROWS = 1024


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks (config ``checks:`` and ``truth.min_spots_per_region``)."""

    #: A section's spots must lie on its DAPI tissue at least this often. Low on purpose: on
    #: real crops inside tissue the DAPI mask misses nucleus-poor tissue, and 56-82 % of the
    #: spots of the two shared real crops lie on it; half-scale spots put 9-23 % there.
    min_fraction_in_tissue: float = 0.25
    #: The spot cloud's bounding box must cover at least this fraction of the tissue (real
    #: crops: 0.98-0.99; spots at half scale: 0.10-0.41).
    min_tissue_covered: float = 0.6
    #: A test gene is scored only if some disk of radius 2 sigma holds this many of its spots.
    min_spots_per_region: int = 10


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # one of SEVERITIES
    message: str
    gene: str | None = None


@dataclass
class SectionChecks:
    """What the checks measured on one section, and what they found."""

    section: str
    role: str
    image_shape: tuple[int, int]
    pixel_size_um: float
    tissue_fraction: float
    spots_total: int
    fraction_in_tissue: float | None
    tissue_covered_by_spots: float | None
    spot_extent_px: dict[str, list[float]] | None
    genes: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    grey_levels: dict[str, float] | None = None

    def of_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def evaluable(self) -> bool:
        """Whether Dice can be computed on this section at all (a test section with tissue)."""
        return not any(f.severity == "not_evaluable" and f.gene is None for f in self.findings)

    @property
    def evaluable_genes(self) -> list[str]:
        return [g for g, facts in self.genes.items() if facts.get("evaluable", True)]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_shape"] = list(self.image_shape)
        data["evaluable"] = self.evaluable
        data["evaluable_genes"] = self.evaluable_genes
        return data


def spots_in_mask(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bool per spot: does its pixel ``(floor(y), floor(x))`` lie inside ``mask``?"""
    rows = np.floor(np.asarray(y, dtype=np.float64))
    cols = np.floor(np.asarray(x, dtype=np.float64))
    ok = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    inside = np.zeros(len(rows), dtype=bool)
    inside[ok] = mask[rows[ok].astype(np.int64), cols[ok].astype(np.int64)]
    return inside


def tissue_covered_by_box(mask: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Fraction of the tissue's pixels inside ``box = (x0, x1, y0, y1)`` (pixels)."""
    total = int(np.count_nonzero(mask))
    if total == 0:
        return float("nan")
    x0, x1, y0, y1 = box
    r0, r1 = max(0, math.floor(y0)), min(mask.shape[0], math.ceil(y1) + 1)
    c0, c1 = max(0, math.floor(x0)), min(mask.shape[1], math.ceil(x1) + 1)
    if r0 >= r1 or c0 >= c1:
        return 0.0
    return int(np.count_nonzero(mask[r0:r1, c0:c1])) / total


def densest_disk_count(xy: np.ndarray, radius_px: float) -> int:
    """The most spots of ``xy`` within ``radius_px`` of any one of them (itself included).

    At most ``MAX_DISK_CENTRES`` spots (an even stride) serve as centres; every spot counts.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return 0
    centres = xy[:: max(1, -(-len(xy) // MAX_DISK_CENTRES))]
    counts = cKDTree(xy).query_ball_point(centres, r=radius_px, return_length=True)
    return int(np.max(counts))


def grey_levels(image: Any, tissue_mask: np.ndarray) -> dict[str, float]:
    """How the image's grey levels sit on the DAPI tissue: the shares of its pixels at the
    top level (``saturated``) and in the lowest ``DARK_LEVELS`` levels (``dark``).

    Levels are the data's own: the top is the largest value on the tissue (the dtype's
    ceiling when the camera clipped there, or e.g. 4095 for 12-bit data in uint16), the
    bottom the smallest. Float images count 256 equal levels between the two. Read in strips
    of ``GREY_LEVEL_ROWS`` rows (``image`` may be memory-mapped).

    Parameters
    ----------
    image : array-like
        2-D image of the shape of ``tissue_mask`` (supports row slicing).
    tissue_mask : np.ndarray
        Boolean DAPI tissue mask.

    Returns
    -------
    dict[str, float]
        ``saturated``, ``dark`` (shares of the tissue pixels, 0 without tissue), ``top``,
        ``bottom`` (the levels).
    """
    mask = np.asarray(tissue_mask, dtype=bool)
    strips = [(r, min(r + GREY_LEVEL_ROWS, mask.shape[0]))
              for r in range(0, mask.shape[0], GREY_LEVEL_ROWS)]
    low, high, count = math.inf, -math.inf, 0
    for r0, r1 in strips:
        values = np.asarray(image[r0:r1, :])[mask[r0:r1]]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            count += values.size
    if not count:
        return {"saturated": 0.0, "dark": 0.0, "top": float("nan"), "bottom": float("nan")}
    integer = np.issubdtype(np.dtype(image.dtype), np.integer)
    dark_below = low + DARK_LEVELS if integer else low + DARK_LEVELS * (high - low) / 256
    at_top = in_dark = 0
    for r0, r1 in strips:
        values = np.asarray(image[r0:r1, :])[mask[r0:r1]]
        at_top += int(np.count_nonzero(values >= high))
        in_dark += int(np.count_nonzero(values < dark_below))
    if high <= low:  # one level only: no contrast at all (the tissue check speaks to that)
        at_top = in_dark = 0
    return {"saturated": round(at_top / count, 4), "dark": round(in_dark / count, 4),
            "top": high, "bottom": low}


def grey_level_findings(levels: Mapping[str, float], where: str, image_file: str
                        ) -> list[Finding]:
    """Warnings and errors for a saturated or too dark image (:func:`grey_levels`).

    Parameters
    ----------
    levels : Mapping[str, float]
        :func:`grey_levels` of the section.
    where : str
        The section, as named in messages.
    image_file : str
        The image, as named in messages.

    Returns
    -------
    list[Finding]
        At most one finding for saturation and one for darkness.
    """
    findings = []
    fix = ("the models learn nuclear texture, which this hides; re-export or re-acquire the "
           "image with a lower (or higher) exposure or gain, check 'channel' and 'level', or "
           "set checks.on_failure: warn to run anyway")
    saturated, dark = levels.get("saturated", 0.0), levels.get("dark", 0.0)
    if saturated > SATURATION_WARNING:
        severity = "error" if saturated > SATURATION_ERROR else "warning"
        findings.append(Finding("saturation", severity, (
            f"{where}: {100 * saturated:.1f}% of the tissue's pixels in {image_file} are at the "
            f"image's top grey level ({levels['top']:g}): the image is saturated (a warning "
            f"above {100 * SATURATION_WARNING:g}%, an error above {100 * SATURATION_ERROR:g}%); "
            + fix)))
    if dark > DARK_WARNING:
        severity = "error" if dark > DARK_ERROR else "warning"
        findings.append(Finding("dark_image", severity, (
            f"{where}: {100 * dark:.1f}% of the tissue's pixels in {image_file} lie in its "
            f"lowest {DARK_LEVELS} grey levels (from {levels['bottom']:g}): the image is too "
            f"dark to show nuclei (a warning above {100 * DARK_WARNING:g}%, an error above "
            f"{100 * DARK_ERROR:g}%); " + fix)))
    return findings


def check_section(
    *,
    section: str,
    role: str,
    tissue_mask: np.ndarray,
    spots: pd.DataFrame,
    genes: Sequence[str],
    pixel_size_um: float,
    patch_sizes: Sequence[int],
    sigma_um: float,
    spots_dropped_off_image: int = 0,
    spots_read: int | None = None,
    settings: CheckSettings = CheckSettings(),
    files: Mapping[str, str] | None = None,
    levels: Mapping[str, float] | None = None,
    blocks: Mapping[str, Any] | None = None,
) -> SectionChecks:
    """Measure and judge one section: its tissue, its spot cloud against the tissue, patch
    sizes against its size and, for test sections, each gene against the reference rule.

    ``spots`` has columns gene, x, y in pixels of the section's canonical image (the shape of
    ``tissue_mask``); ``spots_dropped_off_image`` of the ``spots_read`` spots of the table lay
    off the image. ``files`` (``image``, ``spots``) only serve to name the files in messages.
    ``levels`` (:func:`grey_levels`) adds the saturation and darkness checks; ``blocks`` (the
    section's setting) is checked against the image and, on a training section, the patches.
    """
    files = dict(files or {})
    image_file, spots_file = files.get("image", "the image"), files.get("spots", "the spot table")
    mask = np.asarray(tissue_mask).astype(bool, copy=False)
    height, width = mask.shape
    findings: list[Finding] = []
    where = f"section '{section}'"
    tissue_fraction = float(np.count_nonzero(mask)) / mask.size

    # Tissue.
    if tissue_fraction == 0:
        if role == "train":
            findings.append(Finding("tissue", "error", (
                f"{where}: no tissue found in {image_file} (the DAPI tissue mask is empty: the "
                "image is dark or nearly uniform). A training section needs tissue to cut patches "
                "from. Check that 'image', 'channel', 'level' and 'region' select the nuclei "
                "stain of this section.")))
        else:
            findings.append(Finding("tissue", "not_evaluable", (
                f"{where}: no tissue found in {image_file} (the DAPI tissue mask is empty), so "
                "there is nothing to score: its Dice is reported as not evaluable. Check that "
                "'image', 'channel', 'level' and 'region' select the nuclei stain.")))
    elif tissue_fraction < SMALL_TISSUE_FRACTION:
        findings.append(Finding("tissue", "warning", (
            f"{where}: tissue covers only {100 * tissue_fraction:.2f}% of {image_file}; check "
            "the image and the tissue_mask settings if the section is larger.")))

    if levels is not None and tissue_fraction > 0:
        findings += grey_level_findings(levels, where, image_file)

    # Patch sizes against the section.
    short_side = min(height, width)
    too_large = [s for s in patch_sizes if s > short_side]
    if too_large:
        findings.append(Finding("patch_size", "error", (
            f"{where}: patch size(s) {too_large} px (up to {max(too_large) * pixel_size_um:.0f} µm) "
            f"exceed the section's shorter side of {short_side} px ({short_side * pixel_size_um:.0f}"
            f" µm; the section is {height} x {width} px). Lower patches.sizes, use a larger "
            "'region', or a smaller 'downsample' for this section.")))
    elif role == "train" and max(patch_sizes, default=0) > short_side / 2:
        findings.append(Finding("patch_size", "warning", (
            f"{where}: the largest patch ({max(patch_sizes)} px) is more than half the "
            f"section's shorter side ({short_side} px): its patches overlap heavily.")))

    problem = blocks_problem((height, width), blocks,
                             max(patch_sizes, default=0) if role == "train" else None)
    if problem:
        findings.append(Finding("blocks", "error", f"{where}: {problem}."))

    # The spot cloud against the tissue.
    x = spots["x"].to_numpy(np.float64)
    y = spots["y"].to_numpy(np.float64)
    fraction_in_tissue = covered = extent = None
    n_total = int(spots_read) if spots_read else len(spots) + int(spots_dropped_off_image)
    if n_total and spots_dropped_off_image / n_total > DROPPED_FRACTION_WARNING:
        findings.append(Finding("spots_off_image", "warning", (
            f"{where}: {spots_dropped_off_image} of {n_total} spots "
            f"({100 * spots_dropped_off_image / n_total:.0f}%) in {spots_file} lay outside the "
            "image and were dropped; if the section does not extend past the image, the spot "
            "coordinates are at another scale or origin (pixel_size_um, units, origin_um).")))
    in_tissue = spots_in_mask(x, y, mask)
    scale_hint = (
        "Are the spots and the image at the same scale and origin? Check pixel_size_um, "
        "units, origin_um, downsample and level for this section; if this is intended, "
        "set checks.on_failure: warn.")
    if len(spots) and tissue_fraction > 0:
        fraction_in_tissue = float(in_tissue.mean())
        lo, hi = EXTENT_PERCENTILES
        x0, x1 = np.percentile(x, [lo, hi])
        y0, y1 = np.percentile(y, [lo, hi])
        extent = {"x": [round(float(x0), 1), round(float(x1), 1)],
                  "y": [round(float(y0), 1), round(float(y1), 1)]}
        covered = tissue_covered_by_box(mask, (x0, x1, y0, y1))
        # Read the other way round, (y, x), would the spots fit the tissue? Then say so first.
        if (fraction_in_tissue < settings.min_fraction_in_tissue
                or covered < settings.min_tissue_covered):
            swapped_in = float(spots_in_mask(y, x, mask).mean())
            swapped_covered = tissue_covered_by_box(mask, (y0, y1, x0, x1))
            if (swapped_in >= settings.min_fraction_in_tissue
                    and swapped_covered >= settings.min_tissue_covered
                    and swapped_covered > covered):
                scale_hint = (
                    f"The x and y columns may be swapped: read as (y, x), {100 * swapped_in:.0f}% "
                    f"of the spots lie on the tissue and their extent holds "
                    f"{100 * swapped_covered:.0f}% of it; swap the names of x and y in "
                    "'columns' for this section (x = column, y = row). Otherwise: " + scale_hint)
        if fraction_in_tissue < settings.min_fraction_in_tissue:
            findings.append(Finding("spots_in_tissue", "error", (
                f"{where}: only {100 * fraction_in_tissue:.0f}% of the spots in {spots_file} lie "
                f"on the tissue of {image_file} (at least "
                f"{100 * settings.min_fraction_in_tissue:.0f}% expected, checks."
                f"min_fraction_in_tissue). {scale_hint}")))
        elif fraction_in_tissue < IN_TISSUE_WARNING:
            findings.append(Finding("spots_in_tissue", "warning", (
                f"{where}: only {100 * fraction_in_tissue:.0f}% of the spots lie on the DAPI "
                "tissue mask; the mask may miss nucleus-poor tissue.")))
        if covered < settings.min_tissue_covered:
            findings.append(Finding("spot_extent", "error", (
                f"{where}: the spots in {spots_file} cover only a corner of the tissue of "
                f"{image_file}: their extent (x "
                f"{x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px) holds {100 * covered:.0f}% of the "
                f"tissue of the {height} x {width} px image (at least "
                f"{100 * settings.min_tissue_covered:.0f}% expected, checks.min_tissue_covered). "
                f"{scale_hint}")))

    # Genes.
    radius_um = 2 * sigma_um
    radius_px = radius_um / pixel_size_um
    gene_facts: dict[str, dict[str, Any]] = {}
    names = spots["gene"].to_numpy()
    for gene in genes:
        of_gene = names == gene
        n = int(of_gene.sum())
        facts: dict[str, Any] = {"spots": n}
        if n and tissue_fraction > 0:
            facts["fraction_in_tissue"] = round(float(in_tissue[of_gene].mean()), 4)
            if (facts["fraction_in_tissue"] < settings.min_fraction_in_tissue
                    and (fraction_in_tissue or 0) >= settings.min_fraction_in_tissue):
                findings.append(Finding("gene_in_tissue", "warning", (
                    f"{where}: only {100 * facts['fraction_in_tissue']:.0f}% of {gene}'s {n} "
                    "spots lie on the DAPI tissue."), gene))
        if role in ("test", "train"):
            # The evidence rule of the reference regions: a class needs some 2-sigma disk of
            # the tissue to hold min_spots_per_region of its spots. A test class without it
            # is not scored; a training class is not learnt from this section (rule
            # reference stops the run when no training section supports it).
            xy = np.column_stack([x[of_gene & in_tissue], y[of_gene & in_tissue]])
            densest = densest_disk_count(xy, radius_px)
            facts["densest_disk_spots"] = densest
            facts["evaluable"] = densest >= settings.min_spots_per_region and tissue_fraction > 0
            if tissue_fraction > 0 and not facts["evaluable"]:
                evidence = (f"{where}: {gene} has {n} spots, at most {densest} of them on tissue "
                            f"within any {radius_um:.0f} µm radius disk (2 x truth.sigma_um); a "
                            f"reference region needs at least {settings.min_spots_per_region} "
                            "(truth.min_spots_per_region), so ")
                if role == "test":
                    findings.append(Finding("gene_spots", "not_evaluable", evidence + (
                        f"{gene} is not evaluable on this section and its Dice is not "
                        "reported."), gene))
                else:
                    findings.append(Finding("gene_spots", "warning", evidence + (
                        f"{gene} is not learnt from this training section (no region, no "
                        "patches)."), gene))
        gene_facts[gene] = facts

    return SectionChecks(
        section=section,
        role=role,
        image_shape=(height, width),
        pixel_size_um=float(pixel_size_um),
        tissue_fraction=round(tissue_fraction, 6),
        spots_total=int(len(spots)),
        fraction_in_tissue=None if fraction_in_tissue is None else round(fraction_in_tissue, 4),
        tissue_covered_by_spots=None if covered is None else round(covered, 4),
        spot_extent_px=extent,
        genes=gene_facts,
        findings=findings,
        grey_levels=None if levels is None else dict(levels),
    )


def apply_policy(checks: SectionChecks, on_failure: str) -> SectionChecks:
    """With ``on_failure == "warn"``, the ``OVERRIDABLE`` errors become warnings (in place)."""
    if on_failure not in ("error", "warn"):
        raise ValueError(f"on_failure must be 'error' or 'warn', got {on_failure!r}")
    if on_failure == "warn":
        checks.findings = [
            Finding(f.check, "warning", f.message, f.gene)
            if f.severity == "error" and f.check in OVERRIDABLE else f
            for f in checks.findings
        ]
    return checks


def failure_message(checks: Sequence[SectionChecks] | SectionChecks) -> str | None:
    """One message listing every ``error`` finding, or None when there is none."""
    if isinstance(checks, SectionChecks):
        checks = [checks]
    errors = [f.message for c in checks for f in c.of_severity("error")]
    if not errors:
        return None
    return "input checks failed:\n  - " + "\n  - ".join(errors)
