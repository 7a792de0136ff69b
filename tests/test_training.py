"""Training: learns an easy task, is deterministic, stops early, restores the best weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from txmorph.errors import InputError
from txmorph.model import INTENSITY_METHOD
from txmorph.training import (
    TrainingParams,
    _dihedral_permutations,
    prepare_patches,
    resolve_device,
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
