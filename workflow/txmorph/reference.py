"""The fitted class definitions (``results/models/reference.json``): read, write, check.

Rule ``reference`` fits each class's threshold on the share of local transcripts once, on the
pooled training sections (:func:`txmorph.truth.fit_thresholds`), and writes them here with the
settings they hold for. Every section's reference regions (rule ``truth``, training and test
alike) apply these thresholds unchanged; the file lives with the models, so a run that reuses
them (``models:``) applies the same definitions to its own sections. It also records the
training sections' pixels per class, whose most frequent class is the image-blind *chance*
prediction that every Dice table is read against.

Plain JSON and no numpy, so that the workflow can check a reused file while it is parsed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from txmorph.errors import InputError

FORMAT_NAME = "txmorph.reference"
FORMAT_VERSION = 1
REFERENCE_FILE = "reference.json"
#: The settings a reused definition must share with the config that applies it.
SETTING_KEYS = ("quantity", "sigma_um", "rule", "enrichment")


def without_sparse_classes(spots_by_class: Mapping[str, Any], checks: Mapping[str, Any]
                           ) -> tuple[dict[str, Any], list[str]]:
    """A section's class spots with those of every class its input checks found too sparse for
    a region (not in ``evaluable_genes``) emptied: such a class gets no region there, is not
    scored on a test section and adds no evidence to a fit on a training one.

    Parameters
    ----------
    spots_by_class : Mapping[str, Any]
        Per class, its (N, 2) spot array.
    checks : Mapping[str, Any]
        The section's ``checks.json`` record.

    Returns
    -------
    tuple[dict[str, Any], list[str]]
        The spots (sparse classes with an empty (0, 2) array), and the sparse classes.
    """
    # Only classes checked at import can be too sparse there (niches are checked by rule niches).
    sparse = [name for name in spots_by_class
              if name in checks["genes"] and name not in checks["evaluable_genes"]]
    kept = {name: xy[:0] if name in sparse else xy for name, xy in spots_by_class.items()}
    return kept, sparse


def make_reference(
    groups: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, float],
    training_shares: Mapping[str, float],
    settings: Mapping[str, Any],
    class_pixels: Mapping[str, int],
    training_sections: Sequence[str],
    niches: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The content of ``reference.json``.

    With ``niches: K`` the classes are niches: no thresholds (null; the niche map partitions
    the tissue, ``txmorph.niches.niche_labels``) and each niche's name and top genes.

    Parameters
    ----------
    groups : Mapping[str, Sequence[str]]
        Gene classes, ``{class: genes}``.
    thresholds : Mapping[str, float]
        Per class, its fitted threshold (``inf``: no region anywhere).
    training_shares : Mapping[str, float]
        Per class, its share of all transcripts in the pooled training tissue.
    settings : Mapping[str, Any]
        ``truth.quantity``, ``truth.sigma_um``, ``truth.rule``, ``truth.enrichment``.
    class_pixels : Mapping[str, int]
        Pixels per class (background, tissue, the classes) of the training sections' labels.
    training_sections : Sequence[str]
        The sections the thresholds were fitted on.
    niches : Mapping or None
        Per niche class, ``{"name": "niche1 (Mbp, ...)", "top_genes": [...]}``
        (``results/niches/niches.json``); None for gene classes.

    Returns
    -------
    dict[str, Any]
        JSON-serialisable; an infinite threshold is written as null.
    """
    data = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "settings": {key: settings[key] for key in SETTING_KEYS},
        "classes": {
            name: {
                "genes": list(genes),
                "threshold": (float(thresholds[name]) if math.isfinite(thresholds[name])
                              else None),
                "training_share": float(training_shares.get(name, 0.0)),
            }
            for name, genes in groups.items()
        },
        "class_pixels": {name: int(n) for name, n in class_pixels.items()},
        "training_sections": list(training_sections),
    }
    if niches is not None:
        data["niches"] = {name: dict(entry) for name, entry in niches.items()}
    return data


def class_labels(reference: Mapping[str, Any], classes: Sequence[str]) -> dict[str, str]:
    """What to call each class in tables, figures and exports: a niche's name with its genes
    (``niche1 (Mbp, Plp1, Mobp)``), every other class its own name.

    Parameters
    ----------
    reference : Mapping[str, Any]
        From :func:`read_reference`.
    classes : Sequence[str]
        Class names.

    Returns
    -------
    dict[str, str]
        ``{class: label}``.
    """
    niches = reference.get("niches") or {}
    return {name: niches.get(name, {}).get("name", name) for name in classes}


def write_reference(path: str | os.PathLike, reference: Mapping[str, Any]) -> None:
    """Write ``reference`` as indented JSON (the caller makes the write atomic).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    reference : Mapping[str, Any]
        From :func:`make_reference`.
    """
    Path(path).write_text(json.dumps(reference, indent=2) + "\n")


def read_reference(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a ``reference.json``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict[str, Any]
        Its content.

    Raises
    ------
    InputError
        When the file cannot be read or is not a txmorph class definition of this version.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the class definitions ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError(f"{path} is not a txmorph class definition (format {FORMAT_NAME!r})")
    if data.get("version") != FORMAT_VERSION:
        raise InputError(f"{path} has class definition version {data.get('version')}, this "
                         f"pipeline reads version {FORMAT_VERSION}")
    return data


def thresholds_of(reference: Mapping[str, Any]) -> dict[str, float]:
    """Per class, its threshold (``inf`` where the file has null).

    Parameters
    ----------
    reference : Mapping[str, Any]
        From :func:`read_reference`.

    Returns
    -------
    dict[str, float]
        ``{class: threshold}``.
    """
    return {name: math.inf if entry["threshold"] is None else float(entry["threshold"])
            for name, entry in reference["classes"].items()}


def chance_class(reference: Mapping[str, Any], learned: Sequence[str]) -> str:
    """The image-blind prediction: the learned class with the most training pixels.

    Parameters
    ----------
    reference : Mapping[str, Any]
        From :func:`read_reference`.
    learned : Sequence[str]
        The classes the models learned (ties: the earlier one).

    Returns
    -------
    str
        A class of ``learned``.
    """
    pixels = reference.get("class_pixels", {})
    return max(learned, key=lambda name: (pixels.get(name, 0), -list(learned).index(name)))


def reference_problem(reference: Mapping[str, Any], groups: Mapping[str, Sequence[str]],
                      settings: Mapping[str, Any], path: str | os.PathLike) -> str | None:
    """Why a reused definition does not fit this config (one line), else None.

    Parameters
    ----------
    reference : Mapping[str, Any]
        From :func:`read_reference`.
    groups : Mapping[str, Sequence[str]]
        This config's gene classes.
    settings : Mapping[str, Any]
        This config's ``truth`` block.
    path : str or os.PathLike
        The file, named in the message.

    Returns
    -------
    str or None
        What differs and what to set.
    """
    theirs = {name: entry["genes"] for name, entry in reference["classes"].items()}
    ours = {name: list(genes) for name, genes in groups.items()}
    if theirs != ours and reference.get("niches"):
        return (f"{path} defines {len(reference['niches'])} expression niches "
                f"({', '.join(entry['name'] for entry in reference['niches'].values())}), this "
                f"config the classes {ours}; set `niches: {len(reference['niches'])}` in place "
                "of `genes:`")
    if theirs != ours:
        return (f"{path} defines the classes {theirs}, this config's genes: give {ours}; set "
                "`genes:` to the reused models' classes")
    for key in SETTING_KEYS:
        if key == "enrichment" and reference["settings"].get("rule") != "enrichment":
            continue
        if reference["settings"].get(key) != settings.get(key):
            return (f"{path}: the classes were defined with truth.{key} = "
                    f"{reference['settings'].get(key)!r}, this config has {settings.get(key)!r}; "
                    f"set truth.{key}: {reference['settings'].get(key)!r}")
    return None
