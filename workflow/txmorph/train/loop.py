"""The parts of one training run: the prepared tensors, one epoch, evaluation, early stopping.

``txmorph.train.training`` strings these together inside a seeded, deterministic context. Every
random number of an epoch comes from the CPU generator passed in, in a fixed order (sample
order, dihedral transforms, then the augmentation of each batch), so a seed fixes the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from txmorph.errors import InputError
from txmorph.patches.intensity import normalise
from txmorph.train.augment import Augmentation, augment
from txmorph.train.model import PatchClassifier
from txmorph.train.splits import Split, balanced_order

# Patches are normalised and pooled in chunks so that a large patch size never needs
# the full float32 copy of all patches at once.
_CHUNK = 512
_EVAL_BATCH = 512


def check_inputs(
    images: np.ndarray,
    labels: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    classes: list[str],
    patch_size: int,
) -> None:
    """Check the shapes, label range, intensity ranges and class count of a run's inputs.

    Parameters
    ----------
    images : np.ndarray
        (N, S, S) raw patches.
    labels : np.ndarray
        (N,) integer labels.
    section_ids : np.ndarray
        (N,) section of each patch.
    section_ranges : dict[int, tuple[float, float]]
        Per section, the (low, high) intensities that map to 0 and 1.
    classes : list[str]
        Class names, in label order.
    patch_size : int
        Expected side S of the patches.

    Raises
    ------
    ValueError
        When a shape, a label or a section's range is wrong.
    InputError
        When the labels cover fewer than 2 classes.
    """
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


def prepare_patches(
    images: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    downsample: int,
) -> torch.Tensor:
    """Section-normalise and average-pool raw patches.

    Parameters
    ----------
    images : np.ndarray
        (N, S, S) raw patches.
    section_ids : np.ndarray
        (N,) section of each patch; each must have an entry in ``section_ranges``.
    section_ranges : dict[int, tuple[float, float]]
        Per section, the (low, high) intensities that map to 0 and 1.
    downsample : int
        Average-pooling factor; 1 keeps the patches at full resolution.

    Returns
    -------
    torch.Tensor
        float32 (N, 1, S // downsample, S // downsample) patches.
    """
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


@dataclass(frozen=True)
class PreparedData:
    """The pooled training and validation tensors of one run.

    Parameters
    ----------
    x_train, y_train, x_val, y_val : torch.Tensor
        Pooled patches (N, 1, n, n) and integer labels (N,), on the training device.
    y_train_cpu : torch.Tensor
        The training labels on the CPU, for the class-balanced sampler and loss weights.
    train_counts, val_counts : list[int]
        Number of patches per class in each part.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    y_train_cpu: torch.Tensor
    train_counts: list[int]
    val_counts: list[int]

    @property
    def n_train(self) -> int:
        """Number of training patches."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation patches."""
        return int(self.x_val.shape[0])

    @property
    def side(self) -> int:
        """Side of the pooled patches, in pixels."""
        return int(self.x_train.shape[-1])


def prepare_data(
    model: PatchClassifier,
    images: np.ndarray,
    labels: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    split: Split,
    n_classes: int,
    device: torch.device,
    standardisation: tuple[float, float] | None = None,
) -> PreparedData:
    """Pool the patches, set the model's input standardisation and move both to ``device``.

    Parameters
    ----------
    model : PatchClassifier
        The untrained model: its ``downsample`` sets the pooling; its standardisation is set
        here from the training patches, and it is moved to ``device`` (modified in place).
    images, labels, section_ids : np.ndarray
        (N, S, S) raw patches, (N,) int64 labels and (N,) int64 section ids.
    section_ranges : dict[int, tuple[float, float]]
        Per section, the (low, high) intensities that map to 0 and 1.
    split : Split
        Training and validation indices into the patches.
    n_classes : int
        Number of classes.
    device : torch.device
        Training device.
    standardisation : tuple[float, float] or None
        (mean, std) to standardise the input with (a pretrained encoder's); None: those of
        the pooled training patches.

    Returns
    -------
    PreparedData
        The tensors the epochs index.
    """
    train_idx, val_idx = split.train, split.val
    pooled = prepare_patches(images, section_ids, section_ranges, model.downsample)
    x_train, x_val = pooled[train_idx], pooled[val_idx]
    y_all = torch.from_numpy(labels)
    y_train, y_val = y_all[train_idx], y_all[val_idx]
    if standardisation is None:
        mean, std = float(x_train.double().mean()), float(x_train.double().std())
        standardisation = (mean, std if std > 1e-6 else 1.0)
    model.set_standardisation(*standardisation)
    model.to(device)
    # Everything the loop indexes lives on the training device; the shuffling generator
    # stays on the CPU so the sample order does not depend on the device.
    x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))
    return PreparedData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        y_train_cpu=y_all[train_idx],
        train_counts=np.bincount(labels[train_idx], minlength=n_classes).tolist(),
        val_counts=np.bincount(labels[val_idx], minlength=n_classes).tolist(),
    )


def train_epoch(
    model: PatchClassifier,
    data: PreparedData,
    optimiser: torch.optim.Optimizer,
    permutations: torch.Tensor,
    loss_weight: torch.Tensor | None,
    class_balanced: bool,
    augmentation: Augmentation,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    frozen_features: bool = False,
    after_step: Callable[[PatchClassifier], None] | None = None,
) -> tuple[float, float]:
    """Train ``model`` for one epoch over the training patches.

    Parameters
    ----------
    model : PatchClassifier
        The model, updated in place (left in train mode).
    data : PreparedData
        The training tensors.
    optimiser : torch.optim.Optimizer
        Optimiser over the model's parameters.
    permutations : torch.Tensor
        (8, n*n) dihedral pixel permutations of the pooled patches, on ``device``.
    loss_weight : torch.Tensor or None
        Per-class cross-entropy weights, or None for an unweighted loss.
    class_balanced : bool
        Draw the epoch's samples class-balanced (``balance: sampler``) instead of a permutation.
    augmentation : Augmentation
        Strengths of the intensity, blur and noise augmentation.
    batch_size : int
        Patches per optimiser step.
    generator : torch.Generator
        CPU generator of every random draw: sample order, transforms, then augmentation.
    device : torch.device
        Training device.
    frozen_features : bool
        The conv blocks are frozen (a pretrained encoder): their BatchNorm statistics stay too.
    after_step : Callable[[PatchClassifier], None] or None
        Called with the model after every optimiser step (the weight average's update).

    Returns
    -------
    tuple[float, float]
        Mean training loss and accuracy over the epoch's draws.
    """
    model.train()
    if frozen_features:
        model.features.eval()
    n_train = data.n_train
    side = data.side
    if class_balanced:
        order = balanced_order(data.y_train_cpu, n_train, generator).to(device)
    else:
        order = torch.randperm(n_train, generator=generator).to(device)
    transforms = torch.randint(0, 8, (n_train,), generator=generator).to(device)
    loss_sum, correct = 0.0, 0
    for first in range(0, n_train, batch_size):
        batch = order[first : first + batch_size]
        # One random dihedral transform per draw: exact on the pooled patch, as d | S.
        flat = data.x_train[batch].reshape(batch.numel(), -1)
        xb = torch.gather(flat, 1, permutations[transforms[first : first + batch.numel()]])
        xb = augment(xb.reshape(-1, 1, side, side), augmentation, generator, model.downsample)
        yb = data.y_train[batch]
        logits = model.forward_pooled(xb)[:, :, 0, 0]
        loss = F.cross_entropy(logits, yb, weight=loss_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if after_step is not None:
            after_step(model)
        loss_sum += float(loss.detach()) * batch.numel()
        correct += int((logits.detach().argmax(1) == yb).sum())
    return loss_sum / n_train, correct / n_train


def evaluate(
    model: PatchClassifier, x: torch.Tensor, y: torch.Tensor, device: torch.device,
    n_classes: int,
) -> tuple[float, float]:
    """Class-balanced cross-entropy and accuracy (recall) of ``model`` in eval mode.

    Parameters
    ----------
    model : PatchClassifier
        The model; switched to eval mode.
    x : torch.Tensor
        (N, 1, n, n) pooled patches.
    y : torch.Tensor
        (N,) integer labels.
    device : torch.device
        Device the batches are moved to.
    n_classes : int
        Number of classes.

    Returns
    -------
    tuple[float, float]
        The mean over the classes present of each class's mean loss, and of its accuracy;
        both NaN when ``y`` is empty.
    """
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


def predict_patches(
    model: PatchClassifier,
    images: np.ndarray,
    section_ids: np.ndarray,
    section_ranges: dict[int, tuple[float, float]],
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Class probabilities of raw patches, normalised and pooled as in training.

    Parameters
    ----------
    model : PatchClassifier
        The trained model (switched to eval mode).
    images : np.ndarray
        (N, S, S) raw patches of the model's size.
    section_ids : np.ndarray
        (N,) section of each patch.
    section_ranges : dict[int, tuple[float, float]]
        Per section, the (low, high) intensities that map to 0 and 1.
    device : torch.device or str
        Where to run.

    Returns
    -------
    np.ndarray
        float64 (N, C) probabilities.
    """
    model.eval()
    pooled = prepare_patches(np.asarray(images), np.asarray(section_ids), section_ranges,
                             model.downsample)
    out = []
    with torch.no_grad():
        for start in range(0, pooled.shape[0], _EVAL_BATCH):
            logits = model.forward_pooled(pooled[start:start + _EVAL_BATCH].to(device))
            out.append(torch.softmax(logits[:, :, 0, 0].double(), 1).cpu())
    if not out:
        return np.zeros((0, model.n_classes))
    return torch.cat(out).numpy()


@dataclass
class EarlyStopping:
    """The best validation loss so far, its epoch and weights, and when to stop.

    Parameters
    ----------
    patience : int
        Epochs without a new best validation loss before stopping.
    best_loss : float
        Lowest validation loss so far (``inf`` before the first epoch).
    best_epoch : int
        Epoch of ``best_loss`` (0 before the first improvement).
    best_state : dict[str, torch.Tensor] or None
        Copy of the model's weights at ``best_epoch``; None while no loss was finite.
    """

    patience: int
    best_loss: float = float("inf")
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_loss: float, model: PatchClassifier) -> bool:
        """Record an epoch's validation loss, keeping the weights if it is a new best.

        Parameters
        ----------
        epoch : int
            The epoch just evaluated (1-based).
        val_loss : float
            Its validation loss; NaN is never a new best.
        model : PatchClassifier
            The model, whose weights are copied on a new best.

        Returns
        -------
        bool
            Whether ``val_loss`` is a new best.
        """
        if not val_loss < self.best_loss:
            return False
        self.best_loss, self.best_epoch = val_loss, epoch
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    def should_stop(self, epoch: int) -> bool:
        """Whether ``patience`` epochs up to ``epoch`` brought no new best.

        Parameters
        ----------
        epoch : int
            The epoch just evaluated (1-based).

        Returns
        -------
        bool
            True when training should stop after ``epoch``.
        """
        return epoch - self.best_epoch >= self.patience
