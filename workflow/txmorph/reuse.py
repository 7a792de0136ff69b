"""Trained models of another run, reused instead of training (config key ``models``).

``models: other-run/results/models`` points at the folder a finished run trained into:
``size{S}.pt`` per patch size (and ``baseline.npz``). Before any job, :func:`check_model_set`
compares what the models were trained for with what this config asks: every patch size of
``patches.sizes`` has its file, and each model's classes, patch size, network input and
input normalisation fit. A mismatch is one line: what differs, which file, what to do.

The checkpoints are read here without torch (:func:`read_checkpoint_metadata`): the workflow
is parsed by Snakemake's own Python, which may lack torch (``--sdm conda``), and parsing
should stay fast. A torch checkpoint is a zip file holding one pickle; its metadata are plain
Python values, its tensors are skipped unread.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from txmorph.errors import InputError
from txmorph.patches.intensity import HIGH_PERCENTILE, LOW_PERCENTILE
from txmorph.reference import REFERENCE_FILE, read_reference, reference_problem

# Must equal txmorph.train.model.INTENSITY_METHOD (a test checks it); not imported from there,
# since txmorph.train.model imports torch.
INTENSITY_METHOD = f"section_percentile_range:{LOW_PERCENTILE:g}-{HIGH_PERCENTILE:g}"
MODEL_FORMAT = "txmorph.patch_classifier"  # txmorph.train.model.FORMAT_NAME
MODEL_FORMAT_VERSION = 2  # txmorph.train.model.FORMAT_VERSION (a test checks both)
BASELINE_FILE = "baseline.npz"
NOT_LEARNED = "not learned by the reused models"
RETRAIN = "or remove `models:` from the config to train new models"
NOT_A_MODEL = (f"; point `models` at the results/models folder of a finished txmorph run, "
               f"{RETRAIN}")


class ModelSetError(InputError):
    """Models that cannot be used with this config; the message says what to do.

    Parameters
    ----------
    message : str
        One line: what differs, which file, what to do.
    """


def model_file(models_dir: str | os.PathLike, size: int) -> Path:
    """The CNN file of one patch size in a model folder.

    Parameters
    ----------
    models_dir : str or os.PathLike
        A ``results/models`` folder.
    size : int
        The patch size.

    Returns
    -------
    Path
        ``models_dir/size{S}.pt``.
    """
    return Path(models_dir) / f"size{int(size)}.pt"


class _MetadataUnpickler(pickle.Unpickler):
    """Rebuilds plain values; torch objects (tensors, storages) become None, unread."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _skipped
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a model file")

    def persistent_load(self, pid: Any) -> None:  # tensor storages: not needed
        return None


def _skipped(*args: Any, **kwargs: Any) -> None:
    return None


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``format`` and ``metadata`` of a model file written by ``txmorph.train.model.save_model``,
    read without torch.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.pt`` file; one that is not such a model raises ModelSetError.

    Returns
    -------
    dict[str, Any]
        ``format``, ``format_version`` and ``metadata`` (plain values).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ModelSetError(f"models: {path} is not a txmorph model file (no torch "
                                    f"checkpoint inside){NOT_A_MODEL}")
            payload = _MetadataUnpickler(archive.open(pickles[0])).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ModelSetError(f"models: {path} is not a txmorph model file ({error})"
                            f"{NOT_A_MODEL}") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelSetError(f"models: {path} is not a txmorph model file (format "
                            f"{payload.get('format') if isinstance(payload, dict) else None!r})"
                            f"{NOT_A_MODEL}")
    return {"format": payload["format"], "format_version": payload.get("format_version"),
            "metadata": dict(payload.get("metadata") or {})}


@dataclass(frozen=True)
class Expected:
    """What this config needs of the models.

    Parameters
    ----------
    classes : Sequence[str]
        Background, tissue, then the gene classes.
    sizes : Sequence[int]
        ``patches.sizes``.
    network_input : int
        ``training.network_input``.
    intensity_method : str
        The input normalisation this pipeline applies.
    groups : Mapping[str, Sequence[str]] or None
        The gene classes, ``{class: genes}``, that the reused class definitions must define.
    truth : Mapping[str, Any] or None
        The config's ``truth`` settings, which the reused definitions must share.
    """

    classes: Sequence[str]  # background, tissue, then the gene classes
    sizes: Sequence[int]
    network_input: int
    intensity_method: str = INTENSITY_METHOD
    groups: Mapping[str, Sequence[str]] | None = None  # {class: genes}; None: not checked
    truth: Mapping[str, Any] | None = None  # truth.quantity, sigma_um, rule, enrichment


@dataclass(frozen=True)
class ModelSet:
    """Models found fit for the config: their files, the classes they learned, and whether
    the folder's baseline can be scored with them.

    Parameters
    ----------
    files : dict[int, Path]
        The model file of each patch size.
    classes : list[str]
        The classes the models learned.
    baseline : Path or None
        The folder's ``baseline.npz`` when it fits, else None.
    notes : list[str]
        Warnings for the user (e.g. why the baseline is not scored).
    reference : Path or None
        The folder's class definitions (``reference.json``); None when not asked for.
    """

    files: dict[int, Path]
    classes: list[str]
    baseline: Path | None
    notes: list[str]
    reference: Path | None = None


def check_model_set(models_dir: str | os.PathLike, expected: Expected,
                    baseline_windows: Sequence[int] = (),
                    own_folder: str | os.PathLike | None = None) -> ModelSet:
    """The models of ``models_dir`` for ``expected``; ModelSetError (one line) on a mismatch.

    Classes: a model may lack background or general tissue (left out when the training
    sections had none), but its gene classes must be the config's, in order. Patch sizes:
    each of ``expected.sizes`` needs its file; the folder may hold more. The baseline
    (``baseline.npz``) is used when present and made for the same classes and
    ``baseline_windows``; else it is not scored (said in ``notes``).

    Parameters
    ----------
    models_dir : str or os.PathLike
        The ``results/models`` folder of another run (config ``models``).
    expected : Expected
        What the config needs.
    baseline_windows : Sequence[int]
        The baseline's window sizes for this config (``baseline.window_sizes``).
    own_folder : str or os.PathLike or None
        This run's results/models, where the models are copied to: refused as ``models_dir``.

    Returns
    -------
    ModelSet
        The files, the learned classes, the usable baseline and notes.
    """
    folder = Path(models_dir)
    retrain = RETRAIN
    if own_folder is not None and folder.resolve() == Path(own_folder).resolve():
        raise ModelSetError(f"models: {folder} is this run's own model folder, where the reused "
                            "models are copied to; point `models` at the results/models of "
                            f"another run (another working directory), {retrain}")
    if folder.is_file():
        raise ModelSetError(f"models: {folder} is a file; `models` names the folder that holds "
                            f"the model files (size<S>.pt, reference.json), e.g. "
                            f"{folder.parent}, {retrain}")
    if not folder.is_dir():
        raise ModelSetError(f"models: folder {folder} not found; point `models` at the "
                            f"results/models folder of a finished run, {retrain}")
    found = sorted(int(p.stem[4:]) for p in folder.glob("size*.pt") if p.stem[4:].isdigit())
    sizes = sorted(int(s) for s in expected.sizes)
    missing = [size for size in sizes if not model_file(folder, size).is_file()]
    if missing:
        have = ", ".join(map(str, found)) or "none"
        raise ModelSetError(f"models: no model for patch size {missing[0]} in {folder} (it has "
                            f"sizes: {have}); set patches.sizes to sizes it has, {retrain}")
    files, learned = {}, None
    for size in sizes:
        path = model_file(folder, size)
        checkpoint = read_checkpoint_metadata(path)
        meta = checkpoint["metadata"]
        fix = f"use models trained with this config's settings, {retrain}"
        if checkpoint["format_version"] != MODEL_FORMAT_VERSION:
            raise ModelSetError(f"models: {path} has model file format version "
                                f"{checkpoint['format_version']}, this pipeline reads version "
                                f"{MODEL_FORMAT_VERSION}; {retrain}")
        if meta.get("patch_size") != size:
            raise ModelSetError(f"models: {path} was trained for patch size "
                                f"{meta.get('patch_size')}, not {size}; {fix}")
        if meta.get("network_input") != expected.network_input:
            raise ModelSetError(f"models: {path} was trained with training.network_input "
                                f"{meta.get('network_input')}, this config has "
                                f"{expected.network_input}; set training.network_input: "
                                f"{meta.get('network_input')}, {retrain}")
        method = (meta.get("normalisation") or {}).get("intensity_method")
        if method != expected.intensity_method:
            raise ModelSetError(f"models: {path} was trained with intensity normalisation "
                                f"{method!r}, this pipeline applies "
                                f"{expected.intensity_method!r}; {retrain}")
        classes = [str(c) for c in meta.get("classes") or []]
        _check_classes(path, classes, list(expected.classes), retrain)
        if learned is not None and classes != learned:
            raise ModelSetError(f"models: {path} learned classes {', '.join(classes)}, the other "
                                f"models {', '.join(learned)}; the folder mixes runs, {retrain}")
        learned = classes
        files[size] = path
    baseline, notes = _usable_baseline(folder, learned or [], baseline_windows)
    reference = _usable_reference(folder, expected) if expected.groups is not None else None
    return ModelSet(files=files, classes=learned or [], baseline=baseline, notes=notes,
                    reference=reference)


def _usable_reference(folder: Path, expected: Expected) -> Path:
    """The folder's class definitions, checked against the config (ModelSetError if not)."""
    path = folder / REFERENCE_FILE
    if not path.is_file():
        raise ModelSetError(f"models: {folder} has no {REFERENCE_FILE} (the class thresholds the "
                            "models were trained with; runs before class definitions were "
                            f"fitted once do not write it), so its classes cannot be drawn the "
                            f"same way here; {RETRAIN}")
    try:
        reference = read_reference(path)
    except InputError as error:
        raise ModelSetError(f"models: {error}; {RETRAIN}") from None
    problem = reference_problem(reference, expected.groups or {}, expected.truth or {}, path)
    if problem:
        raise ModelSetError(f"models: {problem}, {RETRAIN}")
    return path


def _check_classes(path: Path, classes: list[str], wanted: list[str], retrain: str) -> None:
    """The models' gene classes must be the config's, in order; background or general tissue
    may be missing (a run whose training sections had none leaves them out)."""
    genes = [c for c in classes if c not in wanted[:2]]
    if genes != wanted[2:] or [c for c in wanted if c in classes] != classes:
        raise ModelSetError(
            f"models: {path} was trained for the gene classes {', '.join(genes) or 'none'}, "
            f"this config's `genes` give {', '.join(wanted[2:])}; set `genes` to the models' "
            f"classes (same names, same order), {retrain}")


def _usable_baseline(folder: Path, classes: list[str],
                     windows: Sequence[int]) -> tuple[Path | None, list[str]]:
    path = folder / BASELINE_FILE
    if not path.is_file():
        return None, [f"models: {folder} has no {BASELINE_FILE}; the baseline is not scored"]
    try:
        with np.load(path) as stored:
            header = json.loads(str(stored["header"]))
    except (OSError, ValueError, KeyError) as error:
        return None, [f"models: {path} cannot be read ({error}); the baseline is not scored"]
    if list(header.get("classes", [])) != classes or \
            [int(w) for w in header.get("windows", [])] != [int(w) for w in windows]:
        return None, [f"models: {path} was made for other classes or patch sizes (windows "
                      f"{header.get('windows')}, here {list(windows)}); the baseline is not "
                      "scored"]
    return path, []


def learned_classes_summary(all_classes: Sequence[str], metadata: dict[str, Any],
                            models_dir: str) -> dict[str, Any]:
    """What the reused models learned, in the form of ``results/patches/classes.json`` (rule
    centres) that the Dice and summary rules read: classes, those left out and why, how the
    patch centres were placed and how many there were per class (from a model's metadata).

    Parameters
    ----------
    all_classes : Sequence[str]
        The config's classes.
    metadata : dict[str, Any]
        One reused model's metadata.
    models_dir : str
        The reused folder, named in the summary.

    Returns
    -------
    dict[str, Any]
        ``classes``, ``dropped``, ``labels``, ``centres_per_class`` and ``models``.
    """
    learned = [str(name) for name in metadata.get("classes") or []]
    counts = (metadata.get("training") or {}).get("class_counts") or []
    patches = ((metadata.get("config") or {}).get("patches") or {})
    return {
        "classes": learned,
        "dropped": {name: f"{NOT_LEARNED} ({models_dir})" for name in all_classes
                    if name not in learned},
        "labels": patches.get("labels", "as in the run that trained them"),
        "centres_per_class": {name: int(n) for name, n in zip(learned, counts)},
        "models": str(models_dir),
    }
