"""Checks before any job runs: across config keys (what the JSON schema cannot express), and of
the reused models of ``models:`` against this config."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from txmorph.pipeline.settings import gene_groups, truth_settings
from txmorph.pipeline.targets import (is_training, mapped_sections, patch_sizes,
                                      sections_with_role)
from txmorph.roles import TEST, TRAIN, spots_problem

if TYPE_CHECKING:
    from txmorph.reuse import ModelSet

# Where this run keeps its models; reused ones are copied there (workflow/rules/models.smk).
OWN_MODELS = "results/models"


def _ensemble_weights_problem(config: Mapping[str, Any]) -> str | None:
    """Why weighted or best ensembles cannot reuse the models' fitted weights; None if they can."""
    if not config["models"] or config["probmap"]["ensemble"] == "mean":
        return None
    weights = Path(config["models"]) / "ensemble.json"
    method = json.loads(weights.read_text())["method"] if weights.is_file() else None
    if method == config["probmap"]["ensemble"]:
        return None
    return (f"probmap.ensemble: {config['probmap']['ensemble']} needs the weights fitted "
            f"where the models were trained, but {weights} "
            + ("does not exist" if method is None else f"was fitted as {method!r}")
            + "; set probmap.ensemble to what the models were run with, or mean")


def class_mode_problem(config: Mapping[str, Any], config_files: str) -> str | None:
    """Why the classes are ambiguous (`genes` and `niches` both written), else None.

    Parameters
    ----------
    config : Mapping
        The config as written, before the schema's defaults (``genes`` has one).
    config_files : str
        The files it comes from, named in the message.

    Returns
    -------
    str or None
    """
    if config.get("niches") is None or config.get("genes") is None:
        return None
    return (f"Config error in {config_files}: both `genes` ({config['genes']}) and "
            f"`niches` ({config['niches']}) are set; the classes are either genes or "
            "expression niches: remove one of the two keys")


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Mistakes across config keys, one line each with its fix.

    Parameters
    ----------
    config : Mapping
        The validated config.

    Returns
    -------
    list of str
        The problems, in a fixed order; empty when there are none.
    """
    problems = []
    training, sizes = is_training(config), patch_sizes(config)
    if training and not sections_with_role(config, TRAIN):
        problems.append("no section has role: train (at least one is needed to train models; "
                        "or set `models:` to the results/models folder of a finished run)")
    if not mapped_sections(config):
        problems.append("no section has role: test or predict (at least one is needed to "
                        "apply the models to)")
    problems += [problem for name, section in config["sections"].items()
                 if (problem := spots_problem(name, section))]
    network_input = config["training"]["network_input"]
    problems += [f"patches.sizes: {size} is not a multiple of training.network_input "
                 f"({network_input}); patches are average-pooled by an integer factor"
                 for size in sizes if size % network_input]
    genes = [gene for members in gene_groups(config).values() for gene in members]
    if repeated := sorted({gene for gene in genes if genes.count(gene) > 1}):
        problems.append(f"genes: {', '.join(repeated)} belong to more than one class; each gene "
                        "may mark one class only")
    if config.get("niches") is not None and config["models"] and (
            tests := sections_with_role(config, TEST)):
        problems.append(
            f"niches with `models:`: the niches are found by clustering the spots of the "
            f"training and test sections together, so the reused models' niches cannot be "
            f"found anew in the test section(s) {', '.join(tests)}; give them role: predict "
            f"(maps, no Dice), or train again with them as test sections")
    per_size = config["training"]["per_size"]
    problems += [f"training.per_size: {key!r} is not one of patches.sizes {sizes}"
                 for key in per_size if str(key) not in {str(size) for size in sizes}]
    if training and config["training"]["pretrain"]["method"] != "none":
        widths = list(config["training"]["widths"])
        problems += [
            f"training.per_size: {key}: widths {overrides['widths']} differ from "
            f"training.widths, but training.pretrain trains one encoder for every size; "
            f"drop the override or set training.pretrain.method: none"
            for key, overrides in per_size.items()
            if "widths" in overrides and list(overrides["widths"]) != widths]
    if problem := _ensemble_weights_problem(config):
        problems.append(problem)
    return problems


def config_error(problems: Sequence[str], config_files: str, kind: str = "Config") -> str | None:
    """The message of a list of problems: a heading naming the config files, one line each.

    Parameters
    ----------
    problems : Sequence[str]
        The problems (``config_problems``).
    config_files : str
        The config files in effect, e.g. ``config.yaml + my.yaml``.
    kind : str
        ``Config`` or ``Input``: what kind of error the heading names.

    Returns
    -------
    str or None
        The message; None without problems.
    """
    if not problems:
        return None
    return f"{kind} error in {config_files}:\n  - " + "\n  - ".join(problems)


def reused_model_set(config: Mapping[str, Any]) -> ModelSet:
    """The models of ``models:``, checked against this config (``txmorph.reuse``).

    Parameters
    ----------
    config : Mapping
        The validated config, ``models:`` set.

    Returns
    -------
    txmorph.reuse.ModelSet
        The files to copy in; its ``notes`` are for the log.

    Raises
    ------
    InputError
        One line naming what differs, the model file and what to do
        (``txmorph.reuse.ModelSetError``).
    """
    from txmorph.baseline import window_sizes
    from txmorph.classes import class_names
    from txmorph.reuse import Expected, check_model_set

    groups, sizes = gene_groups(config), patch_sizes(config)
    expected = Expected(class_names(groups), sizes, config["training"]["network_input"],
                        groups=groups, truth=truth_settings(config))
    return check_model_set(config["models"], expected, window_sizes(sizes), own_folder=OWN_MODELS)
