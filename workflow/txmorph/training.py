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
(``txmorph.splits``), and ``txmorph.augment`` varies intensity, blur and noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from txmorph.augment import Augmentation, augment, dihedral_permutations
from txmorph.errors import InputError
from txmorph.intensity import normalise
from txmorph.model import INTENSITY_METHOD, PatchClassifier
from txmorph.splits import (  # noqa: F401 (stratified_split: re-exported)
    Split,
    balanced_order,
    class_weights,
    spatial_split,
    stratified_split,
)

BALANCE_MODES = ("sampler", "loss", "none")
VALIDATION_MODES = ("spatial", "random")
# Side of the spatially held-out validation blocks, in multiples of the largest patch size,
# when training.validation_block_px is not set.
BLOCK_FACTOR = 2

# Patches are normalised and pooled in chunks so that a large patch size never needs
# the full float32 copy of all patches at once.
_CHUNK = 512
_EVAL_BATCH = 512


@dataclass(frozen=True)
class TrainingParams:
    """Optimisation settings of one classifier, plus its (rarely changed) conv/head widths."""

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
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError(f"learning_rate must be > 0 and weight_decay >= 0: {self}")


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` means the GPU when one is usable, else the CPU; other names are checked."""
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {name!r} was requested but no CUDA GPU is available to torch; "
            f"set the device to 'auto' or 'cpu'"
        )
    return device


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def prepare_patches(
    images: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    downsample: int,
) -> torch.Tensor:
    """Section-normalised, ``downsample``-avg-pooled patches as a float32 (N, 1, n, n) tensor."""
    n, size = images.shape[0], images.shape[1]
    out = torch.empty((n, 1, size // downsample, size // downsample), dtype=torch.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        chunk = np.empty((stop - start, size, size), dtype=np.float32)
        sections = section_ids[start:stop]
        for section in np.unique(sections):
            low, high = section_ranges[int(section)]
            mask = sections == section
            chunk[mask] = normalise(images[start:stop][mask], low, high)
        block = torch.from_numpy(chunk)[:, None]
        out[start:stop] = F.avg_pool2d(block, downsample) if downsample > 1 else block
    return out


_dihedral_permutations = dihedral_permutations  # the name the tests knew


def _evaluate(
    model: PatchClassifier, x: torch.Tensor, y: torch.Tensor, device: torch.device,
    n_classes: int,
) -> tuple[float, float]:
    """Class-balanced cross-entropy and accuracy (recall) in eval mode: the mean over the
    classes present of each class's mean loss and accuracy."""
    model.eval()
    loss_sum = torch.zeros(n_classes, dtype=torch.float64)
    correct = torch.zeros(n_classes, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, x.shape[0], _EVAL_BATCH):
            xb = x[start : start + _EVAL_BATCH].to(device)
            yb = y[start : start + _EVAL_BATCH].to(device)
            logits = model.forward_pooled(xb)[:, :, 0, 0]
            losses = F.cross_entropy(logits, yb, reduction="none").double().cpu()
            hits = (logits.argmax(1) == yb).double().cpu()
            loss_sum.index_add_(0, yb.cpu(), losses)
            correct.index_add_(0, yb.cpu(), hits)
    counts = torch.bincount(y.cpu(), minlength=n_classes).double()
    present = counts > 0
    if not bool(present.any()):
        return float("nan"), float("nan")
    loss = float((loss_sum[present] / counts[present]).mean())
    accuracy = float((correct[present] / counts[present]).mean())
    return loss, accuracy


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


def _check_inputs(
    images: np.ndarray,
    labels: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    classes: list[str],
    patch_size: int,
) -> None:
    if images.ndim != 3 or images.shape[1:] != (patch_size, patch_size):
        raise ValueError(f"images must be (N, {patch_size}, {patch_size}), got {images.shape}")
    n = images.shape[0]
    if labels.shape != (n,) or section_ids.shape != (n,):
        raise ValueError(
            f"labels {labels.shape} and section_ids {section_ids.shape} must be ({n},)"
        )
    if n and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(
            f"labels must lie in [0, {len(classes)}), got {labels.min()}..{labels.max()}"
        )
    missing = sorted(set(np.unique(section_ids).tolist()) - set(section_ranges))
    if missing:
        raise ValueError(f"no intensity range for sections {missing}")
    if np.unique(labels).size < 2:
        raise InputError(
            f"the {n} training patches of size {patch_size} cover "
            f"{np.unique(labels).size} class(es); need at least 2 to train a classifier: "
            f"check the spot tables and the sampling settings"
        )


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
) -> tuple[PatchClassifier, list[dict[str, Any]], dict[str, Any]]:
    """Train a ``PatchClassifier`` on (N, S, S) raw patches with integer labels.

    ``patch_size`` must be a multiple of ``network_input`` (the pooled side the convs see).
    ``centres`` (N, 2) (row, col) in section pixels allow the spatial validation split, whose
    blocks are ``BLOCK_FACTOR`` x ``largest_patch_size`` (of all sizes trained) unless
    ``params.validation_block_px`` is set.

    Returns the model (weights of the epoch with the lowest validation loss, eval mode, on
    ``device``), one metrics row per epoch (``epoch, train_loss, train_accuracy, val_loss,
    val_accuracy``) and metadata (``classes``, ``patch_size``, ``network_input``, ``stride``,
    ``normalisation``, ``training``) ready to pass to ``txmorph.model.save_model``.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    section_ids = np.asarray(section_ids).astype(np.int64)
    _check_inputs(images, labels, section_ids, section_ranges, classes, patch_size)
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

    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fork_devices: list[int] = []
    if dev.type == "cuda":
        fork_devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    try:
        if threads:
            torch.set_num_threads(int(threads))
        # Some CUDA kernels have no deterministic variant: warn there instead of failing.
        torch.use_deterministic_algorithms(True, warn_only=dev.type == "cuda")
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(params.seed)
            return _train(
                images, labels, section_ids, section_ranges, classes, patch_size, params,
                network_input, dev, split, say,
            )
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)


def _train(
    images: np.ndarray,
    labels: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    classes: list[str],
    patch_size: int,
    params: TrainingParams,
    network_input: int,
    dev: torch.device,
    split: Split,
    say: Callable[[str], None],
) -> tuple[PatchClassifier, list[dict[str, Any]], dict[str, Any]]:
    """The training loop proper; runs inside the seeded, deterministic context."""
    train_idx, val_idx = split.train, split.val
    model = PatchClassifier(
        patch_size, len(classes), network_input, params.widths, params.hidden,
        params.dropout,
    )
    pooled = prepare_patches(images, section_ids, section_ranges, model.downsample)
    x_train, x_val = pooled[train_idx], pooled[val_idx]
    y_all = torch.from_numpy(labels)
    y_train, y_val = y_all[train_idx], y_all[val_idx]
    mean = float(x_train.double().mean())
    std = float(x_train.double().std())
    model.set_standardisation(mean, std if std > 1e-6 else 1.0)
    model.to(dev)
    # Everything the loop indexes lives on the training device; the shuffling generator
    # stays on the CPU so the sample order does not depend on the device.
    x_train, y_train, x_val, y_val = (t.to(dev) for t in (x_train, y_train, x_val, y_val))
    generator = torch.Generator().manual_seed(params.seed)
    side = x_train.shape[-1]
    perms = dihedral_permutations(side).to(dev)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    n_train = x_train.shape[0]
    n_classes = len(classes)
    y_train_cpu = y_all[train_idx]
    loss_weight = (class_weights(y_train_cpu, n_classes).to(dev)
                   if params.balance == "loss" else None)
    train_counts = np.bincount(labels[train_idx], minlength=n_classes).tolist()
    val_counts = np.bincount(labels[val_idx], minlength=n_classes).tolist()
    say(
        f"patch {patch_size}: {n_train} training / {x_val.shape[0]} validation patches "
        f"({split.info.get('split')} split; per class {dict(zip(classes, train_counts))} / "
        f"{dict(zip(classes, val_counts))}), balance {params.balance}, augment "
        f"{asdict(params.augment) if params.augment.enabled else 'off'}, pooled to "
        f"{side}x{side}, stride {model.stride}, device {dev}"
    )

    rows: list[dict[str, Any]] = []
    best_loss, best_epoch, best_state = float("inf"), 0, None
    start = time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        model.train()
        if params.balance == "sampler":
            order = balanced_order(y_train_cpu, n_train, generator).to(dev)
        else:
            order = torch.randperm(n_train, generator=generator).to(dev)
        transforms = torch.randint(0, 8, (n_train,), generator=generator).to(dev)
        loss_sum, correct = 0.0, 0
        for first in range(0, n_train, params.batch_size):
            batch = order[first : first + params.batch_size]
            # One random dihedral transform per draw: exact on the pooled patch, as d | S.
            flat = x_train[batch].reshape(batch.numel(), -1)
            xb = torch.gather(flat, 1, perms[transforms[first : first + batch.numel()]])
            xb = augment(xb.reshape(-1, 1, side, side), params.augment, generator,
                         model.downsample)
            yb = y_train[batch]
            logits = model.forward_pooled(xb)[:, :, 0, 0]
            loss = F.cross_entropy(logits, yb, weight=loss_weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            loss_sum += float(loss.detach()) * batch.numel()
            correct += int((logits.detach().argmax(1) == yb).sum())
        val_loss, val_accuracy = _evaluate(model, x_val, y_val, dev, n_classes)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / n_train,
            "train_accuracy": correct / n_train,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        rows.append(row)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elapsed = time.perf_counter() - start
        left = elapsed / epoch * (params.epochs - epoch)
        say(
            f"patch {patch_size} epoch {epoch}/{params.epochs}: "
            f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f}, "
            f"val loss {val_loss:.4f} acc {val_accuracy:.3f}"
            f"{' (best)' if best_epoch == epoch else ''}; elapsed {_format_seconds(elapsed)}, "
            f"at most {_format_seconds(left)} left"
        )
        if epoch - best_epoch >= params.patience:
            say(
                f"patch {patch_size}: early stop after epoch {epoch}, no better validation "
                f"loss than epoch {best_epoch} ({best_loss:.4f}) for {params.patience} epochs"
            )
            break

    if best_state is None:
        raise RuntimeError(f"patch {patch_size}: training diverged (validation loss is NaN)")
    model.load_state_dict(best_state)
    model.eval()
    params_dict = asdict(params)
    params_dict["widths"] = list(params.widths)
    metadata = {
        "classes": list(classes),
        "patch_size": model.patch_size,
        "network_input": model.network_input,
        "stride": model.stride,
        "normalisation": {
            "intensity_method": INTENSITY_METHOD,
            "mean": float(model.input_mean),
            "std": float(model.input_std),
            "applied_in_model": True,
        },
        "training": {
            "params": params_dict,
            "n_train": int(n_train),
            "n_val": int(x_val.shape[0]),
            "class_counts": np.bincount(labels, minlength=len(classes)).tolist(),
            "train_class_counts": train_counts,
            "val_class_counts": val_counts,
            "validation": split.info,
            "best_epoch": best_epoch,
            "best_val_loss": best_loss,
            "epochs_run": len(rows),
            "stopped_early": len(rows) < params.epochs,
            "device": str(dev),
        },
    }
    return model, rows, metadata
