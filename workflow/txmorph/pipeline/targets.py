"""The run's sections, models and targets, from the config (``common.smk``'s constants).

Every function takes the validated config (schema defaults filled in), so the constants of the
rule files and the targets of rule ``all`` are derived in one place each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from txmorph.roles import PREDICT, TEST, TRAIN

# The non-CNN baseline (workflow/rules/baseline.smk): scored like the CNNs, not in the ensemble.
BASELINE = "baseline"
ENSEMBLE = "ensemble"
# Where the embedded demo's generated sections live (rule demo_data).
DEMO_FOLDER = Path("resources/demo")


def sections_with_role(config: Mapping[str, Any], role: str) -> list[str]:
    """The names of the sections of one role, in config order.

    Parameters
    ----------
    config : Mapping
        The validated config.
    role : str
        ``train``, ``test`` or ``predict``.

    Returns
    -------
    list of str
        Section names.
    """
    return [name for name, section in config["sections"].items() if section["role"] == role]


def patch_sizes(config: Mapping[str, Any]) -> list[int]:
    """The patch sizes, ascending (one CNN each)."""
    return sorted(config["patches"]["sizes"])


def model_names(config: Mapping[str, Any]) -> list[str]:
    """The maps every mapped section gets: one per patch size, then the ensemble."""
    return [f"size{size}" for size in patch_sizes(config)] + [ENSEMBLE]


def is_training(config: Mapping[str, Any]) -> bool:
    """Whether this run trains its models (no ``models:`` folder to reuse)."""
    return not config["models"]


def mapped_sections(config: Mapping[str, Any]) -> list[str]:
    """Sections that get probability maps, arg-max labels, figures and exports."""
    return sections_with_role(config, TEST) + sections_with_role(config, PREDICT)


def checked_sections(config: Mapping[str, Any]) -> list[str]:
    """Sections whose spots are imported and checked: train ones only when this run trains."""
    train = sections_with_role(config, TRAIN) if is_training(config) else []
    return train + sections_with_role(config, TEST)


def is_demo_section(name: str, section: Mapping[str, Any]) -> bool:
    """Whether a section's image and spots are the demo's (``resources/demo/<name>/``).

    Parameters
    ----------
    name : str
        The section's name.
    section : Mapping
        Its config entry.

    Returns
    -------
    bool
        True when every one of its ``image`` and ``spots`` lies in the demo folder.
    """
    return all(
        Path(section[key]).parent == DEMO_FOLDER / name
        for key in ("image", "spots") if key in section
    )


def spatialdata_export_sections(config: Mapping[str, Any]) -> list[str]:
    """Sections with probability maps (not the training ones): one SpatialData store each."""
    return [name for name, section in config["sections"].items() if section["role"] != TRAIN]


def spatialdata_outputs(config: Mapping[str, Any]) -> list[str]:
    """The SpatialData stores, default targets when ``export.spatialdata`` is true."""
    if not config["export"]["spatialdata"]:
        return []
    return [f"results/spatialdata/{name}.zarr" for name in spatialdata_export_sections(config)]


def final_outputs(config: Mapping[str, Any]) -> list[str]:
    """The targets of rule ``all``.

    Parameters
    ----------
    config : Mapping
        The validated config.

    Returns
    -------
    list of str
        Report tables and figures, labels, masks of prediction-only sections and, with
        ``export.spatialdata``, the SpatialData stores.
    """
    test, predict = sections_with_role(config, TEST), sections_with_role(config, PREDICT)
    outputs = ["results/report/dice.csv", "results/report/summary.md"]
    # On demo sections the reference regions can also be checked against the true regions.
    outputs += [f"results/report/demo_truth/{name}.csv" for name in test
                if is_demo_section(name, config["sections"][name])]
    # Figures and tables of the HTML report (workflow/rules/report.smk). Patches and training
    # curves belong to the run that trains; reused models come without them.
    if is_training(config):
        outputs += ["results/report/patch_counts.csv", "results/report/training_curves.png"]
        outputs += [f"results/report/patches/size{size}.png" for size in patch_sizes(config)]
    outputs += ["results/report/dice_chart.png"] if test else []
    outputs += [f"results/report/probmaps/{name}/{model}.png"
                for name in mapped_sections(config) for model in model_names(config)]
    # Arg-max labels of every mapped section; prediction-only sections' tissue (from DAPI).
    outputs += [f"results/labels/{name}.tif" for name in mapped_sections(config)]
    outputs += [f"results/masks/{name}.tif" for name in predict]
    outputs += spatialdata_outputs(config)  # workflow/rules/spatialdata.smk
    return outputs
