"""An exponential moving average of a model's weights over its optimiser steps.

With a few thousand patches, the weights after any one step carry that step's batch noise:
two seeds of the same run can paint visibly different maps (issue 27 measured up to 0.16 Dice
between seeds on one fold). The average of the weights over the last few epochs is a cheap
ensemble of the trajectory (Polyak averaging): validation, early stopping and the saved model
then use the averaged weights.

The time constant is given in epochs, not steps, so that it means the same for a section with
500 patches as for one with 5000. The first steps are averaged uniformly (the decay of step t
is ``min(decay, 1 - 1/t)``), so the average never leans on the initial weights.
"""

from __future__ import annotations

import copy
import math

import torch


def step_decay(epochs: float, steps_per_epoch: int) -> float:
    """The per-step decay of an average whose time constant is ``epochs`` epochs.

    Parameters
    ----------
    epochs : float
        Time constant of the average, in epochs; > 0.
    steps_per_epoch : int
        Optimiser steps per epoch; >= 1.

    Returns
    -------
    float
        ``1 - 1 / (epochs * steps_per_epoch)``, at least 0.

    Raises
    ------
    ValueError
        When ``epochs`` is not positive or ``steps_per_epoch`` is below 1.
    """
    if not epochs > 0 or steps_per_epoch < 1:
        raise ValueError(
            f"the averaging time constant must be > 0 epochs over >= 1 steps per epoch, got "
            f"{epochs} epochs and {steps_per_epoch} steps"
        )
    return max(0.0, 1.0 - 1.0 / (epochs * steps_per_epoch))


class WeightAverage:
    """A copy of ``model`` whose floating-point weights and buffers track its running average.

    BatchNorm's running statistics are averaged like the weights (they belong to them); integer
    buffers (BatchNorm's step counter) are copied.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained; it is copied, not modified.
    decay : float
        Largest per-step decay, in [0, 1) (``step_decay``).
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.steps = 0
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the weights of ``model`` after one optimiser step into the average.

        Parameters
        ----------
        model : torch.nn.Module
            The model being trained, with the same state-dict keys as the average.
        """
        self.steps += 1
        decay = min(self.decay, 1.0 - 1.0 / self.steps)
        current = model.state_dict()
        for key, averaged in self.model.state_dict().items():
            value = current[key]
            if averaged.is_floating_point():
                averaged.mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                averaged.copy_(value)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimiser steps of one epoch over ``n_train`` draws in batches of ``batch_size``."""
    return max(1, math.ceil(n_train / batch_size))
