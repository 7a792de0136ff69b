"""Training: learns an easy task, is deterministic, stops early, restores the best weights;
class-balanced draws and validation; the spatially held-out validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from txmorph.device import resolve_device
from txmorph.errors import InputError
from txmorph.train.model import INTENSITY_METHOD
from txmorph.train.splits import balanced_order, class_weights, spatial_split
from txmorph.train.training import (
    TrainingParams,
    _dihedral_permutations,
    _evaluate,
    prepare_patches,
    stratified_split,
    train_classifier,
)

CLASSES = ["background", "tissue"]
RANGES = {0: (100.0, 1100.0), 1: (200.0, 2200.0)}  # section 1 is twice as bright


def _bright_vs_dark(n: int, size: int = 32, seed: int = 0):
    """Class 1 patches are bright, class 0 dark, relative to their section's range."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    sections = (np.arange(n) // 2) % 2
    level = np.where(labels == 1, 0.7, 0.3)[:, None, None]
    noise = rng.normal(0, 0.1, size=(n, size, size))
    unit = level + noise
    low = np.array([RANGES[s][0] for s in sections])[:, None, None]
    high = np.array([RANGES[s][1] for s in sections])[:, None, None]
    images = np.clip(low + unit * (high - low), 0, 65535).astype(np.uint16)
    return images, labels, sections


def _random_labels(n: int, size: int = 32, seed: int = 1):
    rng = np.random.default_rng(seed)
    images = (rng.random((n, size, size)) * 1000 + 100).astype(np.uint16)
    return images, np.arange(n) % 2, np.zeros(n, dtype=np.int64)


def test_learns_easy_task_and_reports_metrics() -> None:
    images, labels, sections = _bright_vs_dark(64)
    messages: list[str] = []
    params = TrainingParams(epochs=4, patience=4, batch_size=16, learning_rate=3e-3, seed=3)
    model, rows, meta = train_classifier(images, labels, sections, RANGES, CLASSES, 32, params,
                                         threads=1, log=messages.append)
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert set(row) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        assert all(np.isfinite(v) for v in row.values())
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert min(r["val_loss"] for r in rows) < rows[0]["val_loss"] or rows[0]["val_accuracy"] == 1
    assert max(r["val_accuracy"] for r in rows) >= 0.8
    assert sum("epoch" in m and "left" in m for m in messages) == len(rows)
    assert not model.training
    assert meta["classes"] == CLASSES and meta["patch_size"] == 32 and meta["stride"] == 4
    norm = meta["normalisation"]
    assert norm["intensity_method"] == INTENSITY_METHOD
    assert norm["mean"] == pytest.approx(float(model.input_mean))
    assert norm["std"] == pytest.approx(float(model.input_std))
    assert meta["training"]["n_train"] + meta["training"]["n_val"] == 64


def test_deterministic_for_a_seed() -> None:
    images, labels, sections = _bright_vs_dark(40, size=64, seed=5)
    params = TrainingParams(epochs=2, patience=2, batch_size=8, seed=11)
    runs = [train_classifier(images, labels, sections, RANGES, CLASSES, 64, params, threads=1)
            for _ in range(2)]
    (m1, rows1, _), (m2, rows2, _) = runs
    assert rows1 == rows2
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    other, _, _ = train_classifier(images, labels, sections, RANGES, CLASSES, 64,
                                   TrainingParams(epochs=2, patience=2, batch_size=8, seed=12),
                                   threads=1)
    assert not all(torch.equal(a, b) for a, b in
                   zip(m1.state_dict().values(), other.state_dict().values()))
    assert not torch.are_deterministic_algorithms_enabled()  # global state restored


def test_early_stopping_restores_best_weights() -> None:
    images, labels, sections = _random_labels(48)
    params = TrainingParams(epochs=25, patience=2, batch_size=8, learning_rate=1e-2, seed=0)
    ranges = {0: (100.0, 1100.0)}
    model, rows, meta = train_classifier(images, labels, sections, ranges, CLASSES, 32, params,
                                         threads=1)
    losses = [r["val_loss"] for r in rows]
    best = int(np.argmin(losses)) + 1
    assert meta["training"]["stopped_early"] and len(rows) < 25
    assert meta["training"]["best_epoch"] == best and len(rows) == best + params.patience
    # the returned weights are those of the best epoch: recompute its validation loss
    _, val_idx = stratified_split(labels, params.validation_fraction, params.seed)
    pooled = prepare_patches(images, sections, ranges, model.downsample)[val_idx]
    with torch.no_grad():
        loss = F.cross_entropy(model.forward_pooled(pooled)[:, :, 0, 0],
                               torch.from_numpy(labels[val_idx]))
    assert float(loss) == pytest.approx(losses[best - 1], rel=1e-5)


def test_network_input_sets_pooling() -> None:
    images, labels, sections = _bright_vs_dark(24)
    params = TrainingParams(epochs=1, batch_size=8)
    model, rows, meta = train_classifier(images, labels, sections, RANGES, CLASSES, 32, params,
                                         network_input=16, device=torch.device("cpu"), threads=1)
    assert model.downsample == 2 and model.stride == 8 and len(rows) == 1
    assert meta["network_input"] == 16 and meta["stride"] == 8


def test_stratified_split() -> None:
    labels = np.array([0] * 50 + [1] * 10 + [2] * 1)
    train, val = stratified_split(labels, 0.2, seed=0)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(61))
    assert np.bincount(labels[val], minlength=3).tolist() == [10, 2, 0]


def test_dihedral_permutations_are_the_eight_symmetries() -> None:
    image = torch.arange(16.0).reshape(4, 4)
    perms = _dihedral_permutations(4)
    got = {tuple(image.reshape(-1)[p].tolist()) for p in perms}
    want = {tuple(torch.rot90(img, k, (0, 1)).reshape(-1).tolist())
            for img in (image, image.flip(-1)) for k in range(4)}
    assert got == want and len(got) == 8


def test_input_errors() -> None:
    images, labels, sections = _bright_vs_dark(8)
    with pytest.raises(InputError, match="at least 2"):
        train_classifier(images, np.zeros(8, int), sections, RANGES, CLASSES, 32, TrainingParams())
    with pytest.raises(ValueError, match="intensity range"):
        train_classifier(images, labels, sections, {0: (0.0, 1.0)}, CLASSES, 32, TrainingParams())
    with pytest.raises(ValueError):
        TrainingParams(validation_fraction=0.0)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="auto"):
            resolve_device("cuda")


def test_balanced_order_draws_every_class_equally() -> None:
    labels = torch.tensor([0] * 1000 + [1] * 1000 + [2] * 120)
    generator = torch.Generator().manual_seed(0)
    totals = torch.zeros(3)
    for _ in range(5):
        order = balanced_order(labels, labels.numel(), generator)
        assert order.shape == (2120,) and order.dtype == torch.int64
        counts = torch.bincount(labels[order], minlength=3)
        assert counts.max() - counts.min() <= 1  # 2120 draws: 707, 707, 706
        totals += counts
        # the rare class cycles through all its samples, the common ones are drawn unrepeated
        assert torch.unique(order[labels[order] == 2]).numel() == 120
        assert torch.unique(order[labels[order] == 0]).numel() == counts[0]
    assert torch.allclose(totals / totals.sum(), torch.full((3,), 1 / 3), atol=1e-3)
    again = balanced_order(labels, 2120, torch.Generator().manual_seed(0))
    first = balanced_order(labels, 2120, torch.Generator().manual_seed(0))
    assert torch.equal(again, first)
    # balanced classes: every sample exactly once, a plain shuffle
    even = torch.arange(90) % 3
    assert torch.equal(torch.sort(balanced_order(even, 90, generator)).values, torch.arange(90))


def test_class_weights_equalise_the_classes() -> None:
    labels = torch.tensor([0] * 100 + [1] * 25 + [3] * 5)
    weights = class_weights(labels, 4)
    counts = torch.bincount(labels, minlength=4).float()
    total = weights * counts
    assert weights[2] == 0 and torch.allclose(total[[0, 1, 3]], total[0].expand(3))
    assert float((weights[labels]).mean()) == pytest.approx(1.0)


class _Constant(torch.nn.Module):
    """Predicts class 0 for everything, confidently."""

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 3, 1, 1)
        logits[:, 0] = 5.0
        return logits


def test_validation_metrics_are_class_balanced() -> None:
    y = torch.tensor([0] * 90 + [1] * 10)
    loss, accuracy = _evaluate(_Constant(), torch.zeros(100, 1, 4, 4), y, torch.device("cpu"), 3)
    assert accuracy == pytest.approx(0.5)  # recall 1 for class 0, 0 for class 1; class 2 absent
    per_class = F.cross_entropy(_Constant().forward_pooled(torch.zeros(2, 1))[:, :, 0, 0],
                                torch.tensor([0, 1]), reduction="none")
    assert loss == pytest.approx(float(per_class.mean()), rel=1e-6)


def _clustered_patches(seed: int = 0):
    """Patches on a 1000 x 800 px section and a smaller second section; classes in regions."""
    rng = np.random.default_rng(seed)
    centres, labels, sections = [], [], []
    for section, (h, w) in enumerate([(1000, 800), (400, 400)]):
        n = 1200 if section == 0 else 300
        c = np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], axis=1)
        lab = np.where(c[:, 0] < h / 2, 0, 1)
        lab[(c[:, 1] > w * 0.6) & (c[:, 0] > h * 0.3)] = 2
        lab[rng.random(n) < 0.1] = 3  # scattered everywhere
        centres.append(c)
        labels.append(lab)
        sections.append(np.full(n, section))
    return np.concatenate(labels), np.concatenate(centres), np.concatenate(sections)


def _chebyshev_gap(centres, sections, train, val) -> float:
    gaps = []
    for s in np.unique(sections[val]):
        a = centres[train][sections[train] == s][:, None, :]
        b = centres[val][sections[val] == s][None, :, :]
        if a.size and b.size:
            gaps.append(np.abs(a - b).max(-1).min())
    return min(gaps)


@pytest.mark.parametrize("patch_size", [32, 96])
def test_spatial_split_leaves_a_patch_gap_and_keeps_every_class(patch_size: int) -> None:
    labels, centres, sections = _clustered_patches()
    messages: list[str] = []
    split = spatial_split(labels, centres, sections, patch_size, block_px=192, fraction=0.2,
                          seed=4, log=messages.append)
    train, val = split.train, split.val
    assert np.intersect1d(train, val).size == 0 and split.info["split"] == "spatial"
    assert split.info["fallback"] is None
    assert set(labels[val]) == set(labels) == set(labels[train])
    assert _chebyshev_gap(centres, sections, train, val) >= patch_size
    assert 0.1 < val.size / labels.size < 0.35
    # whole blocks: every patch of a held-out block is validated
    blocks = {(s, r // 192, c // 192) for s, (r, c) in zip(sections[val], centres[val])}
    in_blocks = [i for i in range(labels.size)
                 if (sections[i], centres[i, 0] // 192, centres[i, 1] // 192) in blocks]
    assert np.array_equal(np.sort(in_blocks), val)
    assert split.info["gap_dropped"] == labels.size - train.size - val.size > 0
    assert any("spatial validation split" in m for m in messages)
    again = spatial_split(labels, centres, sections, patch_size, 192, 0.2, seed=4)
    assert np.array_equal(again.train, train) and np.array_equal(again.val, val)
    other = spatial_split(labels, centres, sections, patch_size, 192, 0.2, seed=5)
    assert not np.array_equal(other.val, val)


def test_spatial_split_falls_back_for_a_class_in_one_place() -> None:
    labels, centres, sections = _clustered_patches()
    rare = np.flatnonzero(labels == 3)[:6]
    labels[labels == 3] = 0
    labels[rare] = 3
    centres[rare] = [[500, 400]] * 6  # all in one spot: no block can hold it out and keep it
    sections[rare] = 0
    messages: list[str] = []
    split = spatial_split(labels, centres, sections, 64, 192, 0.2, seed=1, log=messages.append)
    assert set(labels[split.val]) == set(labels[split.train]) == {0, 1, 2, 3}
    assert "3" in split.info["fallback"] and any("memory" in m for m in messages)


def test_training_on_imbalanced_patches_with_a_spatial_split_is_reproducible() -> None:
    rng = np.random.default_rng(2)
    images, labels, sections = _bright_vs_dark(96, seed=2)
    labels[np.flatnonzero(labels == 1)[12:]] = 0  # 12 bright patches, 84 dark
    centres = rng.integers(0, 600, (96, 2))
    messages: list[str] = []
    runs = []
    for balance in ("sampler", "loss", "sampler"):
        params = TrainingParams(epochs=2, patience=2, batch_size=16, seed=5, balance=balance,
                                augment={"intensity": 0.2, "blur_px": 1.0, "noise": 0.05})
        runs.append(train_classifier(images, labels, sections, RANGES, CLASSES, 32, params,
                                     threads=1, log=messages.append, centres=centres,
                                     largest_patch_size=64))
    (m1, rows1, meta1), (m2, _, _), (m3, rows3, _) = runs
    assert rows1 == rows3
    for (key, a), b in zip(m1.state_dict().items(), m3.state_dict().values()):
        assert torch.equal(a, b), key
    assert not all(torch.equal(a, b) for a, b in
                   zip(m1.state_dict().values(), m2.state_dict().values()))
    info = meta1["training"]
    assert info["validation"]["split"] == "spatial" and info["validation"]["block_px"] == 128
    assert all(count > 0 for count in info["val_class_counts"])
    assert info["n_train"] + info["n_val"] + info["validation"]["gap_dropped"] == 96
    assert meta1["training"]["params"]["augment"]["noise"] == 0.05
