"""Per-rule look-ups in the config: what a rule's params and resources hold.

Params are cache keys and rerun triggers (Snakemake compares their ``repr``), so these functions
keep their values and the order of their keys stable.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from txmorph.classes import niche_classes
from txmorph.pipeline.targets import patch_sizes
from txmorph.roles import uses_spots

# Section keys that the import rules do not take from IMPORT_KEYS: the role, the raw files
# (each rule's inputs, and their fingerprints) and the SpatialData element names, which the
# SpatialData import rules pass on their own.
NOT_IMPORT_KEYS = frozenset(
    {"role", "image", "spots", "image_element", "points_element", "coordinate_system",
     "blocks"})  # blocks: which pixels are the section's, read after import (txmorph.blocks)
# Keys of `training` that are not hyper-parameters: per-size overrides, where it runs, the
# model's input shape (passed to rule train on its own) and the pretraining (rule pretrain).
NOT_TRAINING_PARAMS = ("per_size", "device", "threads", "network_input", "pretrain")


def gene_groups(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Gene classes ``{class name: its genes}``; a plain list of genes is one class per gene.

    With ``niches: K`` the classes are ``niche1`` ... ``nicheK``, and a niche's "gene" is its
    own name: rule ``niches`` writes each section's spots with their niche in the gene column
    (``results/niches/<section>.parquet``), which the reference, truth and centres rules read.
    """
    if config.get("niches") is not None:
        return {name: [name] for name in niche_classes(config["niches"])}
    genes = config["genes"]
    if isinstance(genes, dict):
        return {name: list(members) for name, members in genes.items()}
    return {gene: [gene] for gene in genes}


def class_spots(config: Mapping[str, Any], name: str) -> str:
    """The spot table whose gene column names each spot's class: with ``niches: K`` the niche
    spots of rule niches, else the section's imported spots."""
    if config.get("niches") is not None:
        return f"results/niches/{name}.parquet"
    return f"results/sections/{name}/spots.parquet"


def import_keys(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The section keys the import rules read (``import_params``), in the schema's order.

    The schema's section entry is the one list of import keys: a key added there reaches
    import_image/import_spots without another list to edit (``io.spots.VENDOR_KEYS`` names
    those of them that the spot readers take).

    Parameters
    ----------
    schema : Mapping
        The config schema (``workflow/schemas/config.schema.yaml``).

    Returns
    -------
    tuple of str
        Every section property except ``NOT_IMPORT_KEYS``.
    """
    from txmorph.samplesheet import section_schema

    return tuple(key for key in section_schema(schema)["properties"]
                 if key not in NOT_IMPORT_KEYS)


def import_params(name: str, section: Mapping[str, Any], keys: Sequence[str],
                  pixel_size_um: float) -> dict[str, Any]:
    """Everything import_image/import_spots read about one section.

    Parameters
    ----------
    name : str
        The section's name.
    section : Mapping
        Its config entry, with the schema's defaults filled in by validation.
    keys : Sequence[str]
        The import keys (``import_keys``); None for those the section lacks.
    pixel_size_um : float
        µm per pixel of the image as read (config, else the image's metadata).

    Returns
    -------
    dict
        ``keys`` in order, then ``name``; ``pixel_size_um`` replaced by the one given.
    """
    params = {key: section.get(key) for key in keys}
    params.update(name=name, pixel_size_um=pixel_size_um)
    return params


def section_params(name: str, section: Mapping[str, Any], pixel_size_um: float) -> dict[str, Any]:
    """What later rules read about one section, JSON-serialisable (complete cache keys).

    They read the canonical image and spot table written by import_image/import_spots
    (through txmorph.io.canonical), whose pixels are ``downsample`` times larger than the
    original ones.

    Parameters
    ----------
    name : str
        The section's name.
    section : Mapping
        Its config entry.
    pixel_size_um : float
        µm per pixel of the image as read.

    Returns
    -------
    dict
        ``name`` and ``pixel_size_um`` of the canonical image; ``blocks`` where the section
        is made of blocks of it (``txmorph.blocks``).
    """
    params = {"name": name, "pixel_size_um": pixel_size_um * section.get("downsample", 1)}
    if section.get("blocks"):  # a section of blocks of its image (txmorph.blocks)
        params["blocks"] = {"grid": [int(n) for n in section["blocks"]["grid"]],
                            "keep": str(section["blocks"]["keep"])}
    return params


def side_files(section: Mapping[str, Any]) -> list[str]:
    """Files besides the spot table that a section's spots need (FOV positions, transform)."""
    files = [section["fov_positions"]] if section.get("fov_positions") else []
    if isinstance(section.get("transform"), str):
        files.append(section["transform"])
    return files


def tissue_spots_input(config: Mapping[str, Any], name: str) -> list[str] | str:
    """The spots the tissue mask of a section is made from.

    Parameters
    ----------
    config : Mapping
        The validated config.
    name : str
        The section's name.

    Returns
    -------
    list or str
        Its canonical spot table; none (``[]``) where the mask comes from DAPI alone, also
        for prediction-only sections, whose spots are never read.
    """
    if config["tissue_mask"]["source"] == "dapi" or not uses_spots(config["sections"][name]):
        return []
    return f"results/sections/{name}/spots.parquet"


def check_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Thresholds of the input checks (``txmorph.checks.CheckSettings``), from the config."""
    checks = config["checks"]
    return {
        "min_fraction_in_tissue": checks["min_fraction_in_tissue"],
        "min_tissue_covered": checks["min_tissue_covered"],
        "min_spots_per_region": config["truth"]["min_spots_per_region"],
    }


def truth_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a class definition is fitted with, and a reused one must share."""
    from txmorph.reference import SETTING_KEYS

    return {key: config["truth"][key] for key in SETTING_KEYS}


def training_params(config: Mapping[str, Any], size: int | str) -> dict[str, Any]:
    """Training hyper-parameters for one patch size: the defaults, then its overrides.

    Parameters
    ----------
    config : Mapping
        The validated config.
    size : int or str
        The patch size (a wildcard is a string); overrides may be keyed either way.

    Returns
    -------
    dict
        ``training`` without ``NOT_TRAINING_PARAMS``, updated by ``per_size[size]``.
    """
    base = {key: value for key, value in config["training"].items()
            if key not in NOT_TRAINING_PARAMS}
    overrides = config["training"]["per_size"]
    base.update(overrides.get(str(size), overrides.get(int(size), {})))
    return base


def native_stride(config: Mapping[str, Any], size: int | str) -> int:
    """Output stride of the CNN of one patch size at its native resolution.

    Parameters
    ----------
    config : Mapping
        The validated config.
    size : int or str
        The patch size.

    Returns
    -------
    int
        Pixels between map cells (``txmorph.probmap.grid.native_stride``).
    """
    from txmorph.probmap.grid import native_stride as stride_of

    blocks = len(training_params(config, size)["widths"])
    return stride_of(int(size), config["training"]["network_input"], blocks)


def probmap_mem_mb(config: Mapping[str, Any], size: int | str, attempt: int) -> int:
    """Memory (MB) of one probmap job: it grows with the tile, not with the section.

    The section is read window by window and the map written tile by tile, so a job holds
    torch (~350 MB) plus one (tile_size + patch_size)^2 window: its input copies and feature
    maps. Measured peaks (1024-px tiles, 2 threads): 500 MB (size 32) and 334 MB (size 160)
    at the native stride, 773 and 871 MB at output stride 1, whose feature maps are at full
    resolution; hence ~192 bytes per window pixel at the native stride, 512 at finer ones,
    plus 384 MB. Doubled on each retry (`retries` in the SLURM profile).

    Parameters
    ----------
    config : Mapping
        The validated config.
    size : int or str
        The patch size.
    attempt : int
        Snakemake's attempt number, from 1.

    Returns
    -------
    int
        Megabytes.
    """
    window = config["probmap"]["tile_size"] + int(size)
    per_pixel = 192 if config["probmap"]["output_stride"] == "native" else 512
    return (384 + math.ceil(per_pixel * window**2 / 2**20)) * attempt


def section_seed(seed: int, name: str) -> list[int]:
    """A seed per section: ``seed`` mixed with the section's name (stable across runs)."""
    return [seed, zlib.crc32(name.encode())]


def demo_seed(config: Mapping[str, Any], name: str) -> list[int]:
    """The seed of a demo section (rule demo_data): the demo seed mixed with its name."""
    return section_seed(config["demo"]["seed"], name)


def probmap_seed(config: Mapping[str, Any], name: str, size: int | str) -> list[int] | None:
    """The seed of the patches a map adapts its batch norm to (``probmap.adapt_batchnorm``).

    Parameters
    ----------
    config : Mapping
        The validated config.
    name : str
        The section's name.
    size : int or str
        The patch size.

    Returns
    -------
    list of int or None
        Run seed, section and size; None without adaptation (the seed does not touch the map).
    """
    if not config["probmap"]["adapt_batchnorm"]:
        return None
    return [*section_seed(config["seed"], name), int(size)]


def baseline_windows(config: Mapping[str, Any]) -> list[int]:
    """The baseline's window sides (pixels): the smallest, middle and largest patch size."""
    from txmorph.baseline import window_sizes

    return list(window_sizes(patch_sizes(config)))


def baseline_stride(config: Mapping[str, Any]) -> int:
    """The baseline's grid: that of the finest CNN map (the smallest patch size's native
    stride), or ``probmap.output_stride``."""
    stride = config["probmap"]["output_stride"]
    if stride != "native":
        return int(stride)
    return native_stride(config, patch_sizes(config)[0])
