"""Augmentation: seeded, shape- and dtype-preserving, and a no-op when switched off."""

from __future__ import annotations

import pytest
import torch

from txmorph.train.augment import Augmentation, augment, blur
from txmorph.train.training import TrainingParams


def _batch(n: int = 16, side: int = 32) -> torch.Tensor:
    return torch.rand((n, 1, side, side), generator=torch.Generator().manual_seed(0))


ON = Augmentation(intensity=0.2, blur_px=1.5, noise=0.05)


def test_deterministic_for_a_seed_and_keeps_shape_and_dtype() -> None:
    x = _batch()
    a = augment(x, ON, torch.Generator().manual_seed(7), downsample=1)
    b = augment(x, ON, torch.Generator().manual_seed(7), downsample=1)
    c = augment(x, ON, torch.Generator().manual_seed(8), downsample=1)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)
    assert torch.isfinite(a).all()
    assert torch.equal(x, _batch())  # the input is left alone


@pytest.mark.parametrize("params", [Augmentation(), Augmentation(0.0, 0.0, 0.0)])
def test_off_returns_the_batch_and_draws_nothing(params: Augmentation) -> None:
    x = _batch()
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert not params.enabled
    assert augment(x, params, generator) is x
    assert torch.equal(generator.get_state(), state)


@pytest.mark.parametrize(
    "params", [Augmentation(intensity=0.3), Augmentation(blur_px=2.0), Augmentation(noise=0.1)]
)
def test_each_augmentation_alone(params: Augmentation) -> None:
    x = _batch()
    y = augment(x, params, torch.Generator().manual_seed(1), downsample=2)
    assert y.shape == x.shape and y.dtype == x.dtype and not torch.equal(x, y)
    # Each patch is changed independently of the others.
    assert not torch.equal(y[0] - x[0], y[1] - x[1])


def test_blur() -> None:
    x = _batch(4)
    assert torch.equal(blur(x, torch.zeros(4)), x)  # sigma 0: nothing to do
    blurred = blur(x, torch.tensor([0.0, 1.0, 2.0, 0.0]))
    assert torch.allclose(blurred[0], x[0], atol=1e-6)
    assert torch.allclose(blurred.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.02)
    assert blurred[2].std() < blurred[1].std() < x[1].std()
    constant = torch.full((2, 1, 8, 8), 0.25)
    assert torch.allclose(blur(constant, torch.tensor([1.0, 3.0])), constant)


def test_intensity_is_monotonic_per_patch() -> None:
    x = torch.linspace(-0.1, 1.2, 64).reshape(1, 1, 8, 8).repeat(8, 1, 1, 1)
    y = augment(x, Augmentation(intensity=0.5), torch.Generator().manual_seed(0))
    assert (y.reshape(8, -1).diff(dim=1) > 0).all()


def test_training_params_take_augment_as_a_dict() -> None:
    params = TrainingParams(augment={"intensity": 0.1, "blur_px": 0.0, "noise": 0.02})
    assert params.augment == Augmentation(0.1, 0.0, 0.02) and params.augment.enabled
    assert not TrainingParams(augment={"intensity": 0, "blur_px": 0, "noise": 0}).augment.enabled
    with pytest.raises(ValueError, match="noise"):
        TrainingParams(augment={"noise": -1.0})
    with pytest.raises(TypeError):
        TrainingParams(augment={"contrast": 1.0})
