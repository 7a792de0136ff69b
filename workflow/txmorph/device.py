"""The torch device a rule runs on (config ``training.device``, ``probmap.device``).

A module of its own so that the rules that only run models (``probmap``, ``pretrain``) do not
import the training code, and editing it does not re-run them.
"""

from __future__ import annotations

import torch

from txmorph.errors import InputError


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device a name stands for.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` (the GPU when one is usable, else the CPU) or a torch device name.

    Returns
    -------
    torch.device
        The device.

    Raises
    ------
    InputError
        When a CUDA device is asked for and torch sees none.
    """
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {name!r} was requested but no CUDA GPU is available to torch; "
            f"set the device to 'auto' or 'cpu'"
        )
    return device
