"""What a training run reports: its log lines and the metadata saved with the model."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from txmorph.train.loop import EarlyStopping, PreparedData
from txmorph.train.model import INTENSITY_METHOD, PatchClassifier
from txmorph.train.splits import Split

if TYPE_CHECKING:  # only a type here; training imports this module
    from txmorph.train.training import TrainingParams


def _format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``: a duration short enough for a log line."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def setup_message(
    patch_size: int, classes: list[str], params: TrainingParams, model: PatchClassifier,
    data: PreparedData, split: Split, dev: torch.device,
) -> str:
    """The log line that describes a run before its first epoch.

    Parameters
    ----------
    patch_size : int
        Side of the raw patches, in pixels.
    classes : list[str]
        Class names, in label order.
    params : TrainingParams
        Training settings (balance and augmentation are reported).
    model : PatchClassifier
        The model (its stride is reported).
    data : PreparedData
        The run's tensors (patch counts and pooled side).
    split : Split
        The training/validation split (its kind is reported).
    dev : torch.device
        Training device.

    Returns
    -------
    str
        One line, without a newline.
    """
    return (
        f"patch {patch_size}: {data.n_train} training / {data.n_val} validation "
        f"patches ({split.info.get('split')} split; per class "
        f"{dict(zip(classes, data.train_counts))} / {dict(zip(classes, data.val_counts))}), "
        f"balance {params.balance}, augment "
        f"{asdict(params.augment) if params.augment.enabled else 'off'}, pooled to "
        f"{data.side}x{data.side}, stride {model.stride}, device {dev}"
    )


def epoch_message(
    patch_size: int, epochs: int, row: dict[str, Any], stopping: EarlyStopping,
    elapsed: float,
) -> str:
    """The log line of one epoch: its losses, whether it is the best, the time left.

    Parameters
    ----------
    patch_size : int
        Side of the raw patches, in pixels.
    epochs : int
        Most epochs of the run (for the time left, an upper bound).
    row : dict[str, Any]
        The epoch's metrics row (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy``).
    stopping : EarlyStopping
        Early-stopping state after this epoch (marks a new best).
    elapsed : float
        Seconds since the first epoch started.

    Returns
    -------
    str
        One line, without a newline.
    """
    epoch = row["epoch"]
    left = elapsed / epoch * (epochs - epoch)
    return (
        f"patch {patch_size} epoch {epoch}/{epochs}: "
        f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f}, "
        f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.3f}"
        f"{' (best)' if stopping.best_epoch == epoch else ''}; "
        f"elapsed {_format_seconds(elapsed)}, at most {_format_seconds(left)} left"
    )


def training_metadata(
    model: PatchClassifier,
    classes: list[str],
    labels: np.ndarray,
    params: TrainingParams,
    data: PreparedData,
    split: Split,
    stopping: EarlyStopping,
    epochs_run: int,
    device: torch.device,
) -> dict[str, Any]:
    """The metadata saved with a trained model.

    Parameters
    ----------
    model : PatchClassifier
        The trained model (its sizes and input standardisation are recorded).
    classes : list[str]
        Class names, in label order.
    labels : np.ndarray
        (N,) labels of all patches, training and validation.
    params : TrainingParams
        The training settings.
    data : PreparedData
        The run's tensors (patch counts per part and class).
    split : Split
        The training/validation split (its ``info`` is recorded).
    stopping : EarlyStopping
        The early-stopping state after the last epoch (best epoch and loss).
    epochs_run : int
        Number of epochs trained.
    device : torch.device
        Training device.

    Returns
    -------
    dict[str, Any]
        ``classes``, ``patch_size``, ``network_input``, ``stride``, ``normalisation`` and
        ``training``, ready to pass to ``txmorph.train.model.save_model``.
    """
    params_dict = asdict(params)
    params_dict["widths"] = list(params.widths)
    return {
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
            "n_train": int(data.n_train),
            "n_val": int(data.n_val),
            "class_counts": np.bincount(labels, minlength=len(classes)).tolist(),
            "train_class_counts": data.train_counts,
            "val_class_counts": data.val_counts,
            "validation": split.info,
            "best_epoch": stopping.best_epoch,
            "best_val_loss": stopping.best_loss,
            "epochs_run": epochs_run,
            "stopped_early": epochs_run < params.epochs,
            "device": str(device),
        },
    }
