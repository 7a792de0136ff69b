"""Patch classifier: a small, fully-convolutional CNN, and its on-disk format.

One network is trained per patch size (Andersson et al., ISBI 2020). Two design choices make
the same network serve both training (one label per S x S patch) and inference (a dense
probability map over a whole section):

* The first layer averages ``d x d`` blocks (``d = patch_size // network_input``), so every
  patch size is seen by the network as a ``network_input``-sized image. Large patches then
  cost the same as small ones, and training can pool each patch once up front.
* There is no padding anywhere, and the head is a 1x1 convolution, ReLU, then an average
  over the whole remaining extent (global average pooling written as a valid ``AvgPool``)
  and a 1x1 convolution to the classes. Run on a larger image, the network therefore
  evaluates exactly the patches on a grid with stride ``d * 2**len(widths)`` input pixels
  ("native" stride); ``txmorph.probmap.dense`` evaluates it at any finer stride down to 1 pixel by
  filter rarefaction. Dense inference is per-patch classification computed with shared
  work, not an approximation of it.
* The head works per position before it averages, so a dense pass costs one 1x1 conv per
  output pixel instead of a conv over the whole extent (a ``k x k`` head would be ~75 % of the
  stride-1 cost, the pooled head ~10 %).

Input standardisation (mean/std of the section-normalised, pooled training patches) is held
as buffers inside the model, so the state dict alone reproduces what training saw.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from txmorph.outputs import atomic_path
from txmorph.patches.intensity import HIGH_PERCENTILE, LOW_PERCENTILE
from txmorph.probmap.grid import native_stride

# Names the per-section intensity scaling a model was trained with; inference refuses a model
# whose method differs from the one the current code applies.
INTENSITY_METHOD = f"section_percentile_range:{LOW_PERCENTILE:g}-{HIGH_PERCENTILE:g}"
FORMAT_NAME = "txmorph.patch_classifier"
FORMAT_VERSION = 2  # 2: pooled head (global average over the extent)


def conv_blocks(widths: tuple[int, ...]) -> nn.Sequential:
    """The convolutional feature extractor: per width, two valid 3x3 conv+BN+ReLU and a 2x2 pool.

    Shared by the classifier and the self-supervised encoder (``txmorph.train.pretrain``), so
    pretrained weights load into a classifier's ``features`` one to one.

    Parameters
    ----------
    widths : tuple[int, ...]
        Channels of each conv block; the input has one channel.

    Returns
    -------
    nn.Sequential
        The blocks, freshly initialised (from torch's global generator).
    """
    layers: list[nn.Module] = []
    in_ch = 1
    for width in widths:
        for _ in range(2):
            layers += [
                nn.Conv2d(in_ch, int(width), 3, bias=False),
                nn.BatchNorm2d(int(width)),
                nn.ReLU(inplace=True),
            ]
            in_ch = int(width)
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class PatchClassifier(nn.Module):
    """CNN classifying an S x S patch; ``forward_dense`` evaluates it on a strided grid.

    Parameters
    ----------
    patch_size: side S of the patches, a multiple of ``network_input``.
    n_classes: number of classes C.
    network_input: side of the pooled patch that the convolutions see.
    widths: channels of each conv block (two valid 3x3 conv+BN+ReLU, then a 2x2 max-pool).
    hidden: channels of the head (1x1 conv + ReLU per position, then averaged over the extent).
    dropout: dropout probability after the head.
    """

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        network_input: int = 32,
        widths: tuple[int, ...] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        patch_size, network_input = int(patch_size), int(network_input)
        if network_input <= 0 or patch_size <= 0 or patch_size % network_input:
            raise ValueError(
                f"patch_size {patch_size} must be a positive multiple of network_input "
                f"{network_input}"
            )
        if n_classes < 2:
            raise ValueError(f"need at least 2 classes, got {n_classes}")
        widths = tuple(int(w) for w in widths)
        if not widths:
            raise ValueError("widths must name at least one conv block")
        # Two valid 3x3 convs shrink by 4; each pool must then see an even size so that the
        # patch grid of the dense output stays aligned with the pooling windows.
        size = network_input
        for _ in widths:
            if size - 4 < 2 or (size - 4) % 2:
                raise ValueError(
                    f"network_input {network_input} does not fit {len(widths)} conv blocks: "
                    f"a pool would see size {size - 4}; use e.g. network_input=32 with two blocks"
                )
            size = (size - 4) // 2
        extent = size  # what the head's kernel must cover
        self.patch_size = patch_size
        self.network_input = network_input
        self.n_classes = int(n_classes)
        self.widths = widths
        self.hidden = int(hidden)
        self.dropout = float(dropout)
        self.downsample = patch_size // network_input
        self.stride = native_stride(patch_size, network_input, len(widths))

        self.pool = nn.AvgPool2d(self.downsample) if self.downsample > 1 else nn.Identity()
        self.features = conv_blocks(widths)
        self.extent = extent
        self.head = nn.Sequential(
            nn.Conv2d(widths[-1], self.hidden, 1),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(extent, stride=1),
            nn.Dropout(self.dropout),
            nn.Conv2d(self.hidden, self.n_classes, 1),
        )
        self.register_buffer("input_mean", torch.tensor(0.0))
        self.register_buffer("input_std", torch.tensor(1.0))

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments (plain Python types), enough to rebuild the model.

        Returns
        -------
        dict[str, Any]
            ``patch_size``, ``n_classes``, ``network_input``, ``widths``, ``hidden``, ``dropout``.
        """
        return {
            "patch_size": self.patch_size,
            "n_classes": self.n_classes,
            "network_input": self.network_input,
            "widths": list(self.widths),
            "hidden": self.hidden,
            "dropout": self.dropout,
        }

    def set_standardisation(self, mean: float, std: float) -> None:
        """Fix the affine input standardisation ``(x - mean) / std`` applied after pooling.

        Parameters
        ----------
        mean : float
            Mean of the pooled, normalised training patches.
        std : float
            Their standard deviation, > 0.
        """
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.input_mean.fill_(float(mean))
        self.input_std.fill_(float(std))

    def forward_pooled(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H', W') for an already avg-pooled (N, 1, h, w) input.

        Training pools every patch once up front and calls this directly.

        Parameters
        ----------
        z : torch.Tensor
            (N, 1, h, w) pooled, normalised input.

        Returns
        -------
        torch.Tensor
            (N, C, H', W') logits.
        """
        z = (z - self.input_mean) / self.input_std
        return self.head(self.features(z))

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H', W') at the patches whose top-left corners are ``k * stride``.

        Output (i, j) is the classification of ``x[..., i*s:i*s+S, j*s:j*s+S]``; callers
        pad the input so that these windows are the patches they want.

        Parameters
        ----------
        x : torch.Tensor
            (N, 1, H, W) normalised input, H, W >= S.

        Returns
        -------
        torch.Tensor
            (N, C, H', W') logits.
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected input (N, 1, H, W), got {tuple(x.shape)}")
        if x.shape[-2] < self.patch_size or x.shape[-1] < self.patch_size:
            raise ValueError(f"input {tuple(x.shape)} smaller than patch size {self.patch_size}")
        return self.forward_pooled(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) for a batch of (N, 1, S, S) patches.

        Parameters
        ----------
        x : torch.Tensor
            (N, 1, S, S) normalised patches.

        Returns
        -------
        torch.Tensor
            (N, C) logits.
        """
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, self.patch_size, self.patch_size):
            raise ValueError(
                f"expected patches (N, 1, {self.patch_size}, {self.patch_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.forward_dense(x)[:, :, 0, 0]


def fused_for_inference(model: PatchClassifier) -> PatchClassifier:
    """An eval-mode copy with every BatchNorm folded into the conv before it.

    Same function up to float rounding (~1e-7), but dense inference skips one full pass over
    every feature map; with ``channels_last`` this makes CPU inference ~2-3x faster.

    Parameters
    ----------
    model : PatchClassifier
        The trained model (not changed).

    Returns
    -------
    PatchClassifier
        The fused copy, in eval mode.
    """
    fused = copy.deepcopy(model).eval()
    layers = list(fused.features)
    for k in range(len(layers) - 1):
        if isinstance(layers[k], nn.Conv2d) and isinstance(layers[k + 1], nn.BatchNorm2d):
            layers[k] = fuse_conv_bn_eval(layers[k], layers[k + 1])
            layers[k + 1] = nn.Identity()
    fused.features = nn.Sequential(*layers)
    return fused


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """A JSON round trip: proves the metadata is plain data that ``weights_only`` can load."""
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"model metadata must be JSON-serialisable: {error}") from error


def save_model(
    path: str | os.PathLike[str], model: PatchClassifier, metadata: dict[str, Any]
) -> None:
    """Write model weights, architecture and metadata to one torch file, atomically.

    ``patch_size``, ``network_input``, ``stride`` and ``architecture`` are filled in from the
    model. Only tensors and plain Python types are stored, so ``load_model`` can use
    ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or os.PathLike[str]
        The ``.pt`` file to write.
    model : PatchClassifier
        The trained model.
    metadata : dict[str, Any]
        Any JSON-serialisable dict; by convention ``classes``, ``normalisation`` (as returned
        by ``txmorph.train.training.train_classifier``), ``training`` and ``config`` (the producing
        config).
    """
    meta = _plain(dict(metadata))
    classes = meta.get("classes")
    if classes is not None and len(classes) != model.n_classes:
        raise ValueError(f"{len(classes)} class names for a model with {model.n_classes} outputs")
    meta.update(
        patch_size=model.patch_size,
        network_input=model.network_input,
        stride=model.stride,
        architecture=model.architecture(),
    )
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    with atomic_path(path, durable=True) as tmp:
        torch.save(payload, tmp)


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[PatchClassifier, dict[str, Any]]:
    """Load a model written by ``save_model``.

    Parameters
    ----------
    path : str or os.PathLike[str]
        The ``.pt`` file; another format or ``FORMAT_VERSION`` raises ``ValueError``.
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    tuple[PatchClassifier, dict[str, Any]]
        The model in eval mode, and its metadata.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a txmorph patch classifier file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: model file format version {payload.get('format_version')}, this code "
            f"reads version {FORMAT_VERSION}; retrain the model"
        )
    arch = dict(payload["architecture"])
    arch["widths"] = tuple(arch["widths"])
    model = PatchClassifier(**arch)
    model.load_state_dict(payload["state_dict"])
    model.to(device)
    model.eval()
    return model, payload["metadata"]
