"""Train one patch classifier (one per patch size) on labelled patches.

Every patch is scaled by its section's intensity range and avg-pooled to the network input
size once, up front: the pooled patches are small (32 x 32), so even large patch sizes train
fast and fit in memory. Training is deterministic on CPU for a given seed (seeded generators,
deterministic algorithms, a fixed thread count), so a rerun of the pipeline reproduces the
same weights bit for bit.

Patch sets may be imbalanced (each class keeps up to ``per_class`` patches): ``balance``
draws every epoch class-balanced (``sampler``, the default), weights the loss by inverse
class frequency (``loss``) or does neither (``none``). Validation loss and accuracy are
class-balanced (the mean over classes of each class's loss / recall), so early stopping does
not favour the common classes. Validation is spatially held out by default
(``txmorph.train.splits``), and ``txmorph.train.augment`` varies intensity, blur and noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from txmorph.device import resolve_device
from txmorph.errors import InputError
from txmorph.train.augment import Augmentation, dihedral_permutations
from txmorph.train.averaging import WeightAverage, step_decay, steps_per_epoch
from txmorph.train.determinism import deterministic_torch
from txmorph.train.model import PatchClassifier
from txmorph.train.pretrain import PretrainedEncoder
from txmorph.train.splits import (  # noqa: F401 (stratified_split: re-exported)
    Split,
    class_weights,
    spatial_split,
    stratified_split,
)
from txmorph.train.loop import (  # noqa: F401 (prepare_patches: re-exported)
    EarlyStopping,
    check_inputs,
    evaluate,
    prepare_data,
    prepare_patches,
    train_epoch,
)
from txmorph.train.report import epoch_message, setup_message, training_metadata

BALANCE_MODES = ("sampler", "loss", "none")
VALIDATION_MODES = ("spatial", "random")
# Side of the spatially held-out validation blocks, in multiples of the largest patch size,
# when training.validation_block_px is not set.
BLOCK_FACTOR = 2

@dataclass(frozen=True)
class TrainingParams:
    """Optimisation settings of one classifier, plus its (rarely changed) conv/head widths.

    Parameters
    ----------
    epochs : int
        Most epochs to train; early stopping usually ends sooner.
    patience : int
        Epochs without a new best validation loss before stopping.
    batch_size : int
        Patches per optimiser step.
    learning_rate, weight_decay : float
        Adam settings.
    validation_fraction : float
        Share of the patches held out for validation, in (0, 1).
    seed : int
        Seed of the model initialisation, the split, the sample order and the augmentation.
    widths : tuple[int, ...]
        Channels of the conv layers.
    hidden : int
        Width of the hidden layer of the head.
    dropout : float
        Dropout rate of the head.
    balance : str
        ``sampler`` (class-balanced draws), ``loss`` (inverse-frequency loss weights) or
        ``none``.
    validation : str
        ``spatial`` (held-out blocks) or ``random`` (stratified) validation split.
    validation_block_px : int or None
        Side of the spatial validation blocks; None: ``BLOCK_FACTOR`` x the largest patch size.
    augment : Augmentation
        Intensity, blur and noise augmentation (a dict of its fields is accepted).
    average_epochs : float
        Time constant, in epochs, of the moving average of the weights that validation, early
        stopping and the saved model use (``txmorph.train.averaging``); 0: the raw weights.

    Raises
    ------
    ValueError
        When a setting is out of range.
    """

    epochs: int = 30  # maximum; early stopping usually ends sooner
    patience: int = 5  # epochs without a new best validation loss before stopping
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.2
    seed: int = 0
    widths: tuple[int, ...] = (16, 32)
    hidden: int = 64
    dropout: float = 0.3
    balance: str = "sampler"  # sampler | loss | none
    validation: str = "spatial"  # spatial | random
    validation_block_px: int | None = None  # None: BLOCK_FACTOR x the largest patch size
    augment: Augmentation = Augmentation()  # also accepts a dict of its fields
    average_epochs: float = 0.0  # 0: no weight averaging

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", Augmentation(**self.augment))
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        if self.validation not in VALIDATION_MODES:
            raise ValueError(
                f"validation must be one of {VALIDATION_MODES}, got {self.validation!r}"
            )
        if self.validation_block_px is not None and self.validation_block_px < 1:
            raise ValueError(f"validation_block_px must be >= 1, got {self.validation_block_px}")
        if self.epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError(f"epochs, patience and batch_size must be >= 1: {self}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.average_epochs < 0:
            raise ValueError(f"average_epochs must be >= 0, got {self.average_epochs}")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError(f"learning_rate must be > 0 and weight_decay >= 0: {self}")


_dihedral_permutations = dihedral_permutations  # the names the tests knew
_evaluate = evaluate


def validation_split(
    labels: np.ndarray,
    section_ids: np.ndarray,
    centres: np.ndarray | None,
    patch_size: int,
    params: TrainingParams,
    largest_patch_size: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Split:
    """The training/validation split that ``params.validation`` asks for.

    ``spatial`` needs the patch ``centres``; without them it falls back to ``random`` (logged).

    Parameters
    ----------
    labels : np.ndarray
        (N,) class label of each patch.
    section_ids : np.ndarray
        (N,) section of each patch.
    centres : np.ndarray or None
        (N, 2) (row, col) patch centres in section pixels, or None.
    patch_size : int
        Side of the patches, in pixels.
    params : TrainingParams
        Training settings (``validation``, ``validation_fraction``, ``validation_block_px``,
        ``seed``).
    largest_patch_size : int or None
        Largest patch size trained, which sets the default block side; None: ``patch_size``.
    log : Callable[[str], None] or None
        Receives a line on the split and any fallback.

    Returns
    -------
    Split
        Training and validation indices and how they were chosen.
    """
    say = log or (lambda message: None)
    if params.validation == "spatial" and centres is not None:
        block = params.validation_block_px or BLOCK_FACTOR * (largest_patch_size or patch_size)
        return spatial_split(labels, centres, section_ids, patch_size, block,
                             params.validation_fraction, params.seed, log=say)
    if params.validation == "spatial":
        say("spatial validation split asked for without patch centres: random split instead")
    train, val = stratified_split(labels, params.validation_fraction, params.seed)
    return Split(train, val, {"split": "random", "fallback": None})


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    classes: list[str],
    patch_size: int,
    params: TrainingParams,
    network_input: int = 32,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    centres: np.ndarray | None = None,
    largest_patch_size: int | None = None,
    encoder: PretrainedEncoder | None = None,
    freeze_encoder: bool = False,
) -> tuple[PatchClassifier, list[dict[str, Any]], dict[str, Any]]:
    """Train a ``PatchClassifier`` on (N, S, S) raw patches with integer labels.

    Runs seeded and deterministic (``torch.manual_seed(params.seed)`` inside a forked RNG),
    restoring torch's thread count and determinism settings afterwards.

    Parameters
    ----------
    images : np.ndarray
        (N, S, S) raw patches.
    labels : np.ndarray
        (N,) integer labels in ``[0, len(classes))``, covering at least 2 classes.
    section_ids : np.ndarray
        (N,) section of each patch.
    section_ranges : dict[int, tuple[float, float]]
        Per section, the (low, high) intensities that map to 0 and 1.
    classes : list[str]
        Class names, in label order.
    patch_size : int
        S; a multiple of ``network_input``.
    params : TrainingParams
        Training settings.
    network_input : int
        Pooled side the convs see.
    device : str or torch.device
        Training device (see ``txmorph.device.resolve_device``).
    threads : int or None
        Torch CPU threads while training; None keeps the current count.
    log : Callable[[str], None] or None
        Receives progress lines.
    centres : np.ndarray or None
        (N, 2) (row, col) patch centres in section pixels; needed by the spatial split.
    largest_patch_size : int or None
        Largest patch size trained: the spatial blocks are ``BLOCK_FACTOR`` x it unless
        ``params.validation_block_px`` is set.
    encoder : PretrainedEncoder or None
        Self-supervised conv blocks (``txmorph.train.pretrain``) to start from, with their
        input standardisation; None: a fresh initialisation.
    freeze_encoder : bool
        Keep the encoder's conv blocks as they are (weights and BatchNorm statistics): only
        the head learns from the labels.

    Returns
    -------
    tuple[PatchClassifier, list[dict[str, Any]], dict[str, Any]]
        The model (weights of the epoch with the lowest validation loss, eval mode, on
        ``device``), one metrics row per epoch (``epoch, train_loss, train_accuracy,
        val_loss, val_accuracy``) and metadata (``classes``, ``patch_size``,
        ``network_input``, ``stride``, ``normalisation``, ``training``) ready to pass to
        ``txmorph.train.model.save_model``.

    Raises
    ------
    InputError
        When the patches cover fewer than 2 classes or are too few to hold out validation.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    section_ids = np.asarray(section_ids).astype(np.int64)
    check_inputs(images, labels, section_ids, section_ranges, classes, patch_size)
    dev = resolve_device(device)
    say = log or (lambda message: None)

    split = validation_split(labels, section_ids, centres, patch_size, params,
                             largest_patch_size, say)
    train_idx, val_idx = split.train, split.val
    if val_idx.size == 0:
        raise InputError(
            f"only {labels.size} training patches of size {patch_size}: too few to hold out a "
            f"validation split; sample more patches per class"
        )

    with deterministic_torch(params.seed, dev, threads):
        patches = _Patches(images, labels, section_ids, section_ranges, classes, patch_size)
        return _train(patches, params, network_input, dev, split, say, encoder,
                      freeze_encoder and encoder is not None)


@dataclass(frozen=True)
class _Patches:
    """The checked inputs of one run: raw patches, labels, sections and classes."""

    images: np.ndarray
    labels: np.ndarray
    section_ids: np.ndarray
    section_ranges: dict[int, tuple[float, float]]
    classes: list[str]
    patch_size: int


def _train(
    patches: _Patches,
    params: TrainingParams,
    network_input: int,
    dev: torch.device,
    split: Split,
    say: Callable[[str], None],
    encoder: PretrainedEncoder | None = None,
    frozen: bool = False,
) -> tuple[PatchClassifier, list[dict[str, Any]], dict[str, Any]]:
    """The training run proper; runs inside the seeded, deterministic context.

    The order of the random draws is what fixes the weights for a seed: the model's
    initialisation (global generator) first, then every epoch's draws from ``generator``.
    """
    n_classes = len(patches.classes)
    model = PatchClassifier(
        patches.patch_size, n_classes, network_input, params.widths, params.hidden,
        params.dropout,
    )
    standardisation = None
    if encoder is not None:
        if tuple(encoder.widths) != tuple(model.widths) or encoder.network_input != network_input:
            raise ValueError(
                f"the pretrained encoder has widths {list(encoder.widths)} and network input "
                f"{encoder.network_input}; this model {list(model.widths)} and {network_input}: "
                f"rerun the pretrain rule with the same training settings")
        model.features.load_state_dict(encoder.features)
        standardisation = (encoder.input_mean, encoder.input_std)
        say(f"patch {patches.patch_size}: conv blocks start from the self-supervised encoder")
    data = prepare_data(model, patches.images, patches.labels, patches.section_ids,
                        patches.section_ranges, split, n_classes, dev, standardisation)
    generator = torch.Generator().manual_seed(params.seed)
    permutations = dihedral_permutations(data.side).to(dev)
    if frozen:
        model.features.requires_grad_(False)
        say(f"patch {patches.patch_size}: the encoder's conv blocks are frozen; the head learns")
    optimiser = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=params.learning_rate,
        weight_decay=params.weight_decay,
    )
    loss_weight = (class_weights(data.y_train_cpu, n_classes).to(dev)
                   if params.balance == "loss" else None)
    say(setup_message(patches.patch_size, patches.classes, params, model, data, split,
                      dev))

    # The model that is validated and kept: the weights themselves, or their running average.
    average = (WeightAverage(model, step_decay(params.average_epochs,
                                               steps_per_epoch(data.n_train, params.batch_size)))
               if params.average_epochs > 0 else None)
    kept = average.model if average is not None else model
    rows: list[dict[str, Any]] = []
    stopping = EarlyStopping(params.patience)
    start = time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        train_loss, train_accuracy = train_epoch(
            model, data, optimiser, permutations, loss_weight, params.balance == "sampler",
            params.augment, params.batch_size, generator, dev, frozen,
            average.update if average is not None else None,
        )
        val_loss, val_accuracy = evaluate(kept, data.x_val, data.y_val, dev, n_classes)
        rows.append({
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        })
        stopping.update(epoch, val_loss, kept)
        say(epoch_message(patches.patch_size, params.epochs, rows[-1], stopping,
                          time.perf_counter() - start))
        if stopping.should_stop(epoch):
            say(
                f"patch {patches.patch_size}: early stop after epoch {epoch}, no better "
                f"validation loss than epoch {stopping.best_epoch} ({stopping.best_loss:.4f}) "
                f"for {params.patience} epochs"
            )
            break

    if stopping.best_state is None:
        raise RuntimeError(
            f"patch {patches.patch_size}: training diverged (validation loss is NaN)"
        )
    model.load_state_dict(stopping.best_state)
    model.eval()
    metadata = training_metadata(
        model, patches.classes, patches.labels, params, data, split, stopping, len(rows), dev
    )
    # Which patches were held out: the validated ensemble (rule ensemble_weights) scores
    # every size on them.
    metadata["validation_patches"] = split.val.tolist()
    return model, rows, metadata
