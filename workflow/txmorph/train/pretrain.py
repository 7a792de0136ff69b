"""Self-supervised pretraining of the conv features on unlabelled DAPI (SimCLR).

Each CNN is otherwise trained from scratch on a few hundred labelled patches of the training
sections, while the DAPI pixels of every section in the run, test and predict sections
included, go unused. Contrastive learning (SimCLR: Chen, Kornblith, Norouzi & Hinton, "A simple
framework for contrastive learning of visual representations", 2020; on DAPI: Chelebian et
al., SEFI, arXiv 2502.13974) learns features from them without any label: two views of the
same spot of tissue (shifted crops, each with its own dihedral transform, intensity, blur and
noise) must map close together and away from the views of other spots. No spot table and no
class region is read, so pretraining on a section the models will later paint is legitimate.

One encoder serves every patch size: each size's network sees its patch pooled to
``network_input`` pixels, so the encoder is trained on views of every size in the run, pooled
the same way (a mix of scales, as the classifiers see them). Its conv blocks then initialise
each size's classifier, which is trained as before; the classifier keeps the encoder's input
standardisation so the pretrained features see what they were trained on.

Deterministic for a seed on the CPU: the views come from a NumPy generator, the transforms
from a torch CPU generator, the weights from a forked, seeded torch RNG with deterministic
algorithms and a fixed thread count.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from txmorph.outputs import atomic_path
from txmorph.patches.intensity import normalise
from txmorph.probmap.grid import reflected_window
from txmorph.train.augment import Augmentation, augment, dihedral_permutations
from txmorph.train.determinism import deterministic_torch
from txmorph.train.model import conv_blocks

METHODS = ("none", "simclr")
FORMAT_NAME = "txmorph.pretrained_encoder"
FORMAT_VERSION = 1
#: Views drawn once, before training, to fix the input standardisation.
STANDARDISATION_VIEWS = 2048
#: Tissue pixels are looked up on a grid of this step: bounds memory on large sections.
CENTRE_GRID_PX = 4


@dataclass(frozen=True)
class PretrainParams:
    """Settings of the self-supervised step (``training.pretrain``).

    Parameters
    ----------
    method : str
        ``none`` (no pretraining) or ``simclr``.
    steps : int
        Optimiser steps.
    batch_size : int
        Tissue spots per step (each gives two views).
    learning_rate : float
        Adam learning rate.
    temperature : float
        Temperature of the contrastive (NT-Xent) loss.
    shift : float
        The two views of a spot are offset by up to this share of the patch side, each way.
    """

    method: str = "none"
    steps: int = 300
    batch_size: int = 256
    learning_rate: float = 1e-3
    temperature: float = 0.2
    shift: float = 0.25

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"pretrain method must be one of {METHODS}, got {self.method!r}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"pretrain steps must be >= 1 and batch_size >= 2: {self}")
        if not (self.learning_rate > 0 and self.temperature > 0 and 0 <= self.shift < 1):
            raise ValueError(f"pretrain learning_rate, temperature > 0, 0 <= shift < 1: {self}")

    @property
    def enabled(self) -> bool:
        """Whether a pretraining step runs."""
        return self.method != "none"


@dataclass(frozen=True)
class UnlabelledSection:
    """One section's DAPI image and where views may be centred (its DAPI tissue).

    Parameters
    ----------
    image : array-like
        (H, W) image, read window by window.
    tissue : np.ndarray
        (H, W) bool; an all-False mask means the whole image may be used.
    low, high : float
        The section's intensity range (``txmorph.patches.intensity.intensity_range``).
    """

    image: Any
    tissue: np.ndarray
    low: float
    high: float


@dataclass(frozen=True)
class PretrainedEncoder:
    """Pretrained conv blocks and the input standardisation they were trained with.

    Parameters
    ----------
    features : dict[str, torch.Tensor]
        State dict of ``txmorph.train.model.conv_blocks(widths)``.
    widths : tuple[int, ...]
        Channels of the conv blocks.
    network_input : int
        Side of the pooled views.
    input_mean, input_std : float
        Standardisation of the pooled, normalised views.
    info : dict[str, Any]
        How it was trained (settings, loss curve), plain data.
    """

    features: dict[str, torch.Tensor]
    widths: tuple[int, ...]
    network_input: int
    input_mean: float
    input_std: float
    info: dict[str, Any]


class _Contrastive(nn.Module):
    """Conv blocks, a global average and a two-layer projection (dropped after training)."""

    def __init__(self, widths: tuple[int, ...], projection: int = 64) -> None:
        super().__init__()
        self.features = conv_blocks(widths)
        self.projection = nn.Sequential(
            nn.Linear(widths[-1], projection), nn.ReLU(inplace=True),
            nn.Linear(projection, projection),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.features(x).mean((2, 3))), dim=1)


def nt_xent(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy of two batches of paired embeddings.

    Parameters
    ----------
    za, zb : torch.Tensor
        (N, D) unit-norm embeddings; row i of each is a view of the same spot.
    temperature : float
        Softmax temperature.

    Returns
    -------
    torch.Tensor
        Scalar loss: every view must pick its partner among the other 2N - 1 views.
    """
    n = za.shape[0]
    z = torch.cat([za, zb])
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def _centre_candidates(section: UnlabelledSection) -> np.ndarray:
    """(M, 2) tissue pixels on a coarse grid (all of the image when the mask is empty)."""
    grid = section.tissue[::CENTRE_GRID_PX, ::CENTRE_GRID_PX]
    if not grid.any():
        grid = np.ones_like(grid, dtype=bool)
    return np.argwhere(grid).astype(np.int64) * CENTRE_GRID_PX


def cut_pooled(section: UnlabelledSection, centre: tuple[int, int], size: int,
               network_input: int) -> np.ndarray:
    """The ``size`` x ``size`` window centred at ``centre``, normalised and average-pooled.

    Windows past the border are reflected, as the probability maps pad a section.

    Parameters
    ----------
    section : UnlabelledSection
        The section.
    centre : tuple[int, int]
        (row, col).
    size : int
        Window side, a multiple of ``network_input``.
    network_input : int
        Side after pooling.

    Returns
    -------
    np.ndarray
        float32 (network_input, network_input).
    """
    block = reflected_window(section.image, centre[0], centre[1], size)
    pooled = normalise(block, section.low, section.high)
    d = size // network_input
    return pooled.reshape(network_input, d, network_input, d).mean((1, 3), dtype=np.float32)


def draw_view_pairs(
    sections: Sequence[UnlabelledSection], candidates: Sequence[np.ndarray],
    sizes: Sequence[int], n: int, shift: float, network_input: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two shifted, pooled views of ``n`` random tissue spots of random sections and sizes.

    Parameters
    ----------
    sections : Sequence[UnlabelledSection]
        The sections (drawn uniformly, so a small section counts as much as a large one).
    candidates : Sequence[np.ndarray]
        Per section, its (M, 2) possible centres.
    sizes : Sequence[int]
        Patch sizes (drawn uniformly).
    n : int
        Spots.
    shift : float
        Each view is offset from the spot by up to ``shift`` x size, each way.
    network_input : int
        Side after pooling.
    rng : np.random.Generator
        Every draw.

    Returns
    -------
    tuple[np.ndarray, np.ndarray, np.ndarray]
        Views a and b, float32 (n, network_input, network_input), and (n,) the size of each.
    """
    which = rng.integers(0, len(sections), n)
    size_of = np.asarray(sizes, dtype=np.int64)[rng.integers(0, len(sizes), n)]
    views = np.empty((2, n, network_input, network_input), np.float32)
    for k in range(n):
        section, size = sections[which[k]], int(size_of[k])
        pool = candidates[which[k]]
        centre = pool[rng.integers(0, len(pool))]
        reach = int(shift * size)
        for v in range(2):
            offset = rng.integers(-reach, reach + 1, 2) if reach else np.zeros(2, np.int64)
            views[v, k] = cut_pooled(section, (int(centre[0] + offset[0]),
                                               int(centre[1] + offset[1])), size, network_input)
    return views[0], views[1], size_of


def _transformed(x: np.ndarray, size_of: np.ndarray, network_input: int,
                 augmentation: Augmentation, permutations: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
    """Each view with its own dihedral transform, then intensity, blur and noise per size."""
    t = torch.from_numpy(x).reshape(len(x), -1)
    which = torch.randint(0, 8, (len(x),), generator=generator)
    t = torch.gather(t, 1, permutations[which]).reshape(-1, 1, network_input, network_input)
    out = torch.empty_like(t)
    for size in np.unique(size_of):
        # Blur is in image pixels: each size is pooled by its own factor.
        index = torch.from_numpy(np.flatnonzero(size_of == size))
        out[index] = augment(t[index], augmentation, generator, int(size) // network_input)
    return out


def pretrain_encoder(
    sections: Sequence[UnlabelledSection],
    sizes: Sequence[int],
    network_input: int,
    widths: tuple[int, ...],
    params: PretrainParams,
    augmentation: Augmentation,
    seed: int,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> PretrainedEncoder:
    """Train conv blocks by SimCLR on views of the sections' DAPI tissue; no label is read.

    Parameters
    ----------
    sections : Sequence[UnlabelledSection]
        Every section of the run (images and DAPI tissue only).
    sizes : Sequence[int]
        The patch sizes; each a multiple of ``network_input``.
    network_input : int
        Pooled side the convs see.
    widths : tuple[int, ...]
        Channels of the conv blocks (the classifiers' ``training.widths``).
    params : PretrainParams
        Steps, batch, learning rate, temperature, shift; ``method`` must not be ``none``.
    augmentation : Augmentation
        Intensity, blur and noise strengths of the views (the training ones).
    seed : int
        Fixes the views, the transforms and the initial weights.
    threads : int or None
        Torch CPU threads; None keeps the current count.
    device : str or torch.device
        Where to train.
    log : Callable[[str], None] or None
        Receives progress lines.

    Returns
    -------
    PretrainedEncoder
        The trained conv blocks and their standardisation.
    """
    if not params.enabled:
        raise ValueError("pretraining asked for with method 'none'")
    if not sections:
        raise ValueError("no section to pretrain on")
    for size in sizes:
        if int(size) % network_input:
            raise ValueError(f"patch size {size} is not a multiple of network_input {network_input}")
    say = log or (lambda message: None)
    dev = torch.device(device)
    widths = tuple(int(w) for w in widths)
    with deterministic_torch(seed, dev, threads):
        return _pretrain(sections, [int(s) for s in sizes], network_input, widths, params,
                         augmentation, seed, dev, say)


def _pretrain(sections: Sequence[UnlabelledSection], sizes: list[int], network_input: int,
              widths: tuple[int, ...], params: PretrainParams, augmentation: Augmentation,
              seed: int, dev: torch.device, say: Callable[[str], None]) -> PretrainedEncoder:
    model = _Contrastive(widths)  # first draw of the seeded global generator
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    candidates = [_centre_candidates(section) for section in sections]
    first, _, _ = draw_view_pairs(sections, candidates, sizes, STANDARDISATION_VIEWS, 0.0,
                                  network_input, rng)
    mean, std = float(first.astype(np.float64).mean()), float(first.astype(np.float64).std())
    std = std if std > 1e-6 else 1.0
    permutations = dihedral_permutations(network_input)
    model.to(dev).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate, weight_decay=1e-6)
    # Cosine decay: the contrastive loss is noisy; a falling rate settles the weights.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / params.steps)))
    say(f"pretraining (SimCLR) on {len(sections)} section(s), sizes {sizes}: {params.steps} "
        f"steps of {params.batch_size} spots x 2 views, temperature {params.temperature}")
    curve: list[float] = []
    start, running = time.perf_counter(), 0.0
    every = max(1, params.steps // 10)
    for step in range(1, params.steps + 1):
        a, b, size_of = draw_view_pairs(sections, candidates, sizes, params.batch_size,
                                        params.shift, network_input, rng)
        xa = _transformed(a, size_of, network_input, augmentation, permutations, generator)
        xb = _transformed(b, size_of, network_input, augmentation, permutations, generator)
        xa, xb = ((x - mean) / std for x in (xa.to(dev), xb.to(dev)))
        loss = nt_xent(model(xa), model(xb), params.temperature)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running += float(loss.detach())
        if step % every == 0 or step == params.steps:
            done = step - (len(curve) * every)
            curve.append(running / max(1, done))
            running = 0.0
            say(f"pretrain step {step}/{params.steps}: contrastive loss {curve[-1]:.4f} "
                f"(chance {math.log(2 * params.batch_size - 1):.4f}), "
                f"{time.perf_counter() - start:.0f} s")
    model.eval()
    features = {k: v.detach().cpu().clone() for k, v in model.features.state_dict().items()}
    info = {"method": params.method, "steps": params.steps, "batch_size": params.batch_size,
            "learning_rate": params.learning_rate, "temperature": params.temperature,
            "shift": params.shift, "sizes": sizes, "seed": int(seed), "loss_curve": curve,
            "sections": len(sections)}
    return PretrainedEncoder(features, widths, network_input, mean, std, info)


def save_encoder(path: str | os.PathLike[str], encoder: PretrainedEncoder) -> None:
    """Write a pretrained encoder to one torch file, atomically (tensors and plain data only).

    Parameters
    ----------
    path : str or os.PathLike[str]
        The ``.pt`` file to write.
    encoder : PretrainedEncoder
        What to write.
    """
    payload = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "features": encoder.features, "widths": list(encoder.widths),
        "network_input": encoder.network_input, "input_mean": encoder.input_mean,
        "input_std": encoder.input_std, "info": encoder.info,
    }
    with atomic_path(path, durable=True) as tmp:
        torch.save(payload, tmp)


def load_encoder(path: str | os.PathLike[str]) -> PretrainedEncoder:
    """Read a file written by ``save_encoder``.

    Parameters
    ----------
    path : str or os.PathLike[str]
        The ``.pt`` file.

    Returns
    -------
    PretrainedEncoder
        The encoder.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a txmorph pretrained encoder file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: encoder format version {payload.get('format_version')}, "
                         f"this code reads {FORMAT_VERSION}; rerun the pretrain rule")
    return PretrainedEncoder(
        payload["features"], tuple(payload["widths"]), int(payload["network_input"]),
        float(payload["input_mean"]), float(payload["input_std"]), dict(payload["info"]))
