"""The moving average of the weights (``training.average_epochs``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from txmorph.train.averaging import WeightAverage, step_decay, steps_per_epoch
from txmorph.train.training import TrainingParams, train_classifier

CLASSES = ["background", "tissue"]
RANGES = {0: (100.0, 1100.0)}


def test_step_decay_is_one_time_constant_of_steps() -> None:
    assert step_decay(2.0, 50) == pytest.approx(1 - 1 / 100)
    assert step_decay(0.5, 1) == 0.0  # shorter than one step: no averaging
    assert steps_per_epoch(129, 64) == 3 and steps_per_epoch(0, 64) == 1
    for bad in [(0.0, 10), (-1.0, 10), (1.0, 0)]:
        with pytest.raises(ValueError, match="time constant"):
            step_decay(*bad)


def test_average_is_uniform_at_first_then_exponential() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    average = WeightAverage(net, decay=0.5)
    weights = []
    for value in [1.0, 3.0, 8.0]:
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].num_batches_tracked.fill_(int(value))
        average.update(net)
        weights.append(float(average.model[0].weight[0, 0]))
    # step 1 copies, step 2 is the mean of two (decay min(0.5, 1/2)), step 3 is 0.5-exponential
    assert weights == pytest.approx([1.0, 2.0, 0.5 * 2.0 + 0.5 * 8.0])
    assert int(average.model[1].num_batches_tracked) == 8  # integer buffers are copied
    assert not any(p.requires_grad for p in average.model.parameters())
    assert float(net[0].weight.detach()[0, 0]) == 8.0  # the trained model is left alone
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, decay=1.0)


def _patches(n: int = 48, size: int = 32, seed: int = 2):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    level = np.where(labels == 1, 0.65, 0.35)[:, None, None]
    unit = level + rng.normal(0, 0.15, size=(n, size, size))
    images = np.clip(100 + unit * 1000, 0, 65535).astype(np.uint16)
    return images, labels, np.zeros(n, dtype=np.int64)


def test_training_keeps_the_averaged_weights_reproducibly() -> None:
    images, labels, sections = _patches()
    plain = TrainingParams(epochs=3, patience=3, batch_size=8, seed=4)
    averaged = TrainingParams(epochs=3, patience=3, batch_size=8, seed=4, average_epochs=1.0)
    m0, rows0, _ = train_classifier(images, labels, sections, RANGES, CLASSES, 32, plain,
                                    threads=1)
    m1, rows1, meta1 = train_classifier(images, labels, sections, RANGES, CLASSES, 32,
                                        averaged, threads=1)
    m2, rows2, _ = train_classifier(images, labels, sections, RANGES, CLASSES, 32, averaged,
                                    threads=1)
    # the same draws train both (same training losses), but other weights are validated
    assert [r["train_loss"] for r in rows0] == [r["train_loss"] for r in rows1]
    assert [r["val_loss"] for r in rows0] != [r["val_loss"] for r in rows1]
    assert rows1 == rows2
    for (key, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), key
    assert not all(torch.equal(a, b) for a, b in
                   zip(m0.state_dict().values(), m1.state_dict().values()))
    assert meta1["training"]["params"]["average_epochs"] == 1.0
    assert not m1.training


def test_negative_time_constant_is_refused() -> None:
    with pytest.raises(ValueError, match="average_epochs"):
        TrainingParams(average_epochs=-1.0)
