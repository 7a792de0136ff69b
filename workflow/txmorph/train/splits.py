"""How training patches are split and drawn: validation splits (random, stratified, or
spatially held out) and class-balanced draws.

Neighbouring patches overlap, so a random split validates on patches whose pixels the model
has largely seen in training: it measures memory, and early stopping on it stops late. The
spatial split holds out whole square blocks of each training section and drops every training
patch that overlaps a validation patch, so validation measures how the model does on tissue
it has not seen, as the test section will.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), holding out ``fraction`` of every class.

    Every class keeps at least one training sample; a class with one sample is not validated.

    Parameters
    ----------
    labels : np.ndarray
        (N,) class label of each sample.
    fraction : float
        Share of each class to validate on (rounded per class).
    seed : int
        Seed of the NumPy generator that picks the validation samples.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        Sorted training and validation indices, disjoint.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = min(int(round(fraction * idx.size)), idx.size - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@dataclass
class Split:
    """Indices into the patches: training and validation (disjoint, sorted) and how.

    Parameters
    ----------
    train, val : np.ndarray
        Training and validation indices.
    info : dict[str, Any]
        How the split was made: ``split`` (``spatial`` or ``random``), ``fallback`` (None or
        what was done instead) and, for a spatial split, its block counts and gap.
    """

    train: np.ndarray
    val: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def overlapping(
    centres: np.ndarray, section_ids: np.ndarray, candidates: np.ndarray,
    held_out: np.ndarray, patch_size: int,
) -> np.ndarray:
    """Boolean mask over ``candidates``: the patch overlaps some ``held_out`` patch.

    Two S x S patches of one section overlap when their centres are less than S apart in
    both rows and columns (Chebyshev distance < S).

    Parameters
    ----------
    centres : np.ndarray
        (N, 2) (row, col) patch centres in section pixels.
    section_ids : np.ndarray
        (N,) section of each patch.
    candidates : np.ndarray
        Indices of the patches to test.
    held_out : np.ndarray
        Indices of the patches they must not overlap.
    patch_size : int
        Side S of the patches, in pixels.

    Returns
    -------
    np.ndarray
        Boolean mask, one entry per candidate.
    """
    hit = np.zeros(candidates.size, dtype=bool)
    for section in np.unique(section_ids[held_out]):
        ref = held_out[section_ids[held_out] == section]
        mine = np.flatnonzero(section_ids[candidates] == section)
        if mine.size == 0:
            continue
        tree = cKDTree(centres[ref].astype(np.float64))
        dist, _ = tree.query(centres[candidates[mine]].astype(np.float64), k=1, p=np.inf,
                             distance_upper_bound=patch_size + 1)
        hit[mine] = dist < patch_size
    return hit


def spatial_split(
    labels: np.ndarray,
    centres: np.ndarray,
    section_ids: np.ndarray,
    patch_size: int,
    block_px: int,
    fraction: float,
    seed: int,
    log: Callable[[str], None] | None = None,
) -> Split:
    """Hold out whole ``block_px`` square blocks of every section for validation.

    Blocks (a grid from each section's corner) are taken in a seeded random order until they
    hold ``fraction`` of the patches; a block is passed over if it would overshoot that by
    more than half, take more than ``2 * fraction`` (at most half) of any class, or leave a
    class without training patches. A class missing from the blocks taken gets the next block
    that holds it (taking at most half of any class). Training then drops every patch that
    overlaps a validation patch (a gap of one patch size), so no pixel is shared between the
    two.

    Fallbacks (logged, and recorded in ``info["fallback"]``): a class that no block can hold
    out is validated on a random ``fraction`` of its patches, which measures memory for that
    class; if the gap would take a class out of training entirely, the whole split falls
    back to ``stratified_split``.

    Parameters
    ----------
    labels : np.ndarray
        (N,) class label of each patch.
    centres : np.ndarray
        (N, 2) (row, col) patch centres in section pixels.
    section_ids : np.ndarray
        (N,) section of each patch.
    patch_size : int
        Side of the patches, in pixels: the gap left around validation patches.
    block_px : int
        Side of the held-out square blocks, in pixels.
    fraction : float
        Share of the patches to validate on.
    seed : int
        Seed of the NumPy generator that orders the blocks.
    log : Callable[[str], None] or None
        Receives a line on the outcome and on any fallback.

    Returns
    -------
    Split
        The split, with ``info`` saying how it was made.
    """
    say = log or (lambda message: None)
    labels = np.asarray(labels)
    centres = np.asarray(centres).reshape(-1, 2)
    section_ids = np.asarray(section_ids)
    n = labels.size
    block_px = max(1, int(block_px))
    keys = np.stack([section_ids, centres[:, 0] // block_px, centres[:, 1] // block_px], axis=1)
    _, block_of = np.unique(keys, axis=0, return_inverse=True)
    block_of = block_of.reshape(-1)
    n_blocks = int(block_of.max()) + 1 if n else 0
    block_size = np.bincount(block_of, minlength=n_blocks)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_blocks)
    target = fraction * n
    all_classes = np.unique(labels)
    per_block = np.zeros((n_blocks, int(labels.max()) + 1 if n else 0))
    np.add.at(per_block, (block_of, labels), 1)
    class_total = per_block.sum(0)

    def train_after_gap(val_blocks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        val = np.flatnonzero(np.isin(block_of, val_blocks))
        rest = np.flatnonzero(~np.isin(block_of, val_blocks))
        return rest[~overlapping(centres, section_ids, rest, val, patch_size)], val

    def keeps_every_class(val_blocks: list[int]) -> bool:
        return bool(np.isin(all_classes, labels[train_after_gap(val_blocks)[0]]).all())

    def fits(val_blocks: list[int], block: int, share: float) -> bool:
        taken = per_block[val_blocks].sum(0) + per_block[block]
        return bool((taken <= share * class_total).all()) and keeps_every_class(
            val_blocks + [block]
        )

    chosen: list[int] = []
    count = 0
    for block in order:
        if count >= target:
            break
        block = int(block)
        if count + block_size[block] <= 1.5 * target and fits(
            chosen, block, min(2 * fraction, 0.5)
        ):
            chosen.append(block)
            count += int(block_size[block])

    random_classes: list[int] = []
    for label in all_classes:
        # Only whether a chosen block holds the class matters here, not the gap.
        if np.any(labels[np.isin(block_of, chosen)] == label):
            continue
        added = False
        for block in order:
            block = int(block)
            if block in chosen or not np.any(labels[block_of == block] == label):
                continue
            if fits(chosen, block, 0.5):
                chosen.append(block)
                added = True
                break
        if not added:
            random_classes.append(int(label))

    train, val = train_after_gap(chosen)
    info: dict[str, Any] = {
        "split": "spatial",
        "block_px": block_px,
        "n_blocks": n_blocks,
        "n_val_blocks": len(chosen),
        "gap_dropped": int(n - train.size - val.size),
        "fallback": None,
    }
    if random_classes:
        # Validate these classes on a random share of their (training) patches.
        extra = []
        for label in random_classes:
            own = train[labels[train] == label]
            k = min(int(round(fraction * own.size)), own.size - 1)
            if k > 0:
                extra.append(rng.choice(own, size=k, replace=False))
        if extra:
            extra_idx = np.concatenate(extra)
            val = np.union1d(val, extra_idx)
            train = np.setdiff1d(train, extra_idx)
        info["fallback"] = f"random validation patches for classes {random_classes}"
        say(
            f"spatial validation split: no held-out block can validate class(es) "
            f"{random_classes} and leave them in training; those are validated on a random "
            f"{fraction:.0%} of their patches (this measures memory, not generalisation)"
        )
    if not np.isin(all_classes, labels[train]).all() or val.size == 0:
        train, val = stratified_split(labels, fraction, seed)
        say(
            "spatial validation split: the held-out blocks and their one-patch gap would leave "
            "a class without training patches; falling back to a random stratified split"
        )
        return Split(train, val, {"split": "random", "fallback": "stratified split"})
    say(
        f"spatial validation split: {len(chosen)} of {n_blocks} blocks of {block_px} px "
        f"held out ({val.size} patches); {info['gap_dropped']} training patches within one "
        f"patch size ({patch_size} px) of them left out"
    )
    return Split(np.sort(train), np.sort(val), info)


def balanced_order(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` sample indices (CPU, int64) drawing every class present equally often.

    Each class gets ``n // C`` draws (the remainder goes to randomly chosen classes); within
    a class, samples are drawn without replacement, cycling through fresh permutations when
    the class has fewer samples than draws. With equal class counts and ``n`` their total,
    every sample is drawn exactly once: a plain shuffled epoch.

    Parameters
    ----------
    labels : torch.Tensor
        (N,) integer label of each sample.
    n : int
        Number of draws.
    generator : torch.Generator
        CPU generator of every random draw.

    Returns
    -------
    torch.Tensor
        (n,) int64 sample indices in random order.
    """
    labels = labels.cpu()
    classes = torch.unique(labels)
    quota = torch.full((classes.numel(),), n // classes.numel(), dtype=torch.int64)
    quota[torch.randperm(classes.numel(), generator=generator)[: n % classes.numel()]] += 1
    parts = []
    for label, q in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(labels == label).reshape(-1)
        rounds = -(-q // members.numel())
        draws = [members[torch.randperm(members.numel(), generator=generator)]
                 for _ in range(rounds)]
        parts.append(torch.cat(draws)[:q])
    order = torch.cat(parts)
    return order[torch.randperm(order.numel(), generator=generator)]


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights, averaging 1 over the samples (0 for absent classes).

    Parameters
    ----------
    labels : torch.Tensor
        (N,) integer label of each sample.
    n_classes : int
        Number of classes.

    Returns
    -------
    torch.Tensor
        (n_classes,) float32 weights.
    """
    counts = torch.bincount(labels.cpu(), minlength=n_classes).double()
    present = counts > 0
    weights = torch.zeros(n_classes, dtype=torch.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.float()
