"""The seeded, deterministic torch context that training and pretraining run in.

Inside it, torch's global generator is seeded (in a forked RNG state, so the caller's is left
as it was), deterministic algorithms are on and the CPU thread count is fixed: a run gives the
same weights bit for bit on the CPU. Everything is restored on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_torch(seed: int, device: torch.device, threads: int | None = None
                        ) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms for the ``with`` block.

    Parameters
    ----------
    seed : int
        Seed of torch's global generator inside the block.
    device : torch.device
        The device the block runs on (a CUDA device's RNG is forked too).
    threads : int or None
        Torch CPU threads inside the block; None keeps the current count.
    """
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fork_devices: list[int] = []
    if device.type == "cuda":
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    try:
        if threads:
            torch.set_num_threads(int(threads))
        # Some CUDA kernels have no deterministic variant: warn there instead of failing.
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)
