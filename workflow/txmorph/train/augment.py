"""Training augmentation of pooled patches: dihedral transforms, intensity, blur and noise.

Training sees every patch section-normalised (the section's 1st..99.5th intensity percentiles
map to 0..1) and average-pooled to the network input. On top of the 8 exact symmetries of a
square (rotations by 90 degrees, flips), ``Augmentation`` can vary, per patch:

- intensity: ``y = gain * x**gamma + offset`` (gamma on the positive part only), with
  ``log(gain)`` and ``log(gamma)`` uniform in ``[-a, a]`` and ``offset`` uniform in
  ``[-a/2, a/2]`` of the normalised range, for ``a = intensity``: stain, exposure and
  percentile differences between sections and datasets;
- blur: a Gaussian of standard deviation uniform in ``[0, blur_px]`` pixels of the image
  (``blur_px / d`` pixels of the patch pooled by ``d``): focus and resolution;
- noise: additive Gaussian noise of standard deviation uniform in ``[0, noise]`` (normalised
  units), on the pooled patch: shot and read noise.

Every random number comes from the CPU generator given, so a seed fixes the augmentation
whatever the device. With every strength 0 the batch is returned as it is and no random
number is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the per-patch augmentations; 0 switches one off.

    Parameters
    ----------
    intensity : float
        Half-width ``a`` of the ranges of ``log(gain)`` and ``log(gamma)`` (offset: ``a/2``).
    blur_px : float
        Largest Gaussian blur standard deviation, in image pixels.
    noise : float
        Largest additive noise standard deviation, in normalised units.
    """

    intensity: float = 0.0
    blur_px: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("intensity", "blur_px", "noise"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"augment.{name} must be a finite number >= 0, got {value!r}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.intensity > 0 or self.blur_px > 0 or self.noise > 0


def dihedral_permutations(size: int) -> torch.Tensor:
    """Pixel permutations of the 4 rotations x 2 flips of a square image.

    Parameters
    ----------
    size : int
        Side of the image, in pixels.

    Returns
    -------
    torch.Tensor
        (8, size*size) int64 permutations of the flattened pixels; row 0 is the identity.
    """
    grid = torch.arange(size * size).reshape(size, size)
    perms = []
    for flip in (False, True):
        base = grid.flip(-1) if flip else grid
        for k in range(4):
            perms.append(torch.rot90(base, k, dims=(0, 1)).reshape(-1))
    return torch.stack(perms)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float32)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, 2r+1) normalised 1-D Gaussians; sigma 0 gives the identity (a delta)."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    s = sigma.clamp(min=1e-3)[:, None]
    kernels = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    return kernels / kernels.sum(1, keepdim=True)


def blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each patch with its own standard deviation; edges by reflection.

    Parameters
    ----------
    x : torch.Tensor
        (N, 1, H, W) patches.
    sigma : torch.Tensor
        (N,) standard deviations, in pixels of ``x``.

    Returns
    -------
    torch.Tensor
        (N, 1, H, W) blurred patches; ``x`` itself when the kernel radius would be below 1.
    """
    n, _, h, w = x.shape
    radius = min(int(math.ceil(3 * float(sigma.max()))) if n else 0, h - 1, w - 1)
    if radius < 1:
        return x
    kernels = _gaussian_kernels(sigma.cpu(), radius).to(x.device, x.dtype)
    z = F.pad(x.reshape(1, n, h, w), (radius, radius, radius, radius), mode="reflect")
    z = F.conv2d(z, kernels[:, None, :, None], groups=n)  # along rows
    z = F.conv2d(z, kernels[:, None, None, :], groups=n)  # along columns
    return z.reshape(n, 1, h, w)


def augment(
    x: torch.Tensor, params: Augmentation, generator: torch.Generator, downsample: int = 1
) -> torch.Tensor:
    """Intensity, blur and noise augmentation of a batch ``x`` (N, 1, h, w) of pooled patches.

    Parameters
    ----------
    x : torch.Tensor
        (N, 1, h, w) pooled patches.
    params : Augmentation
        Strengths of the augmentations.
    generator : torch.Generator
        CPU generator of every random draw (intensity, then blur, then noise).
    downsample : int
        Pooling factor ``d`` of the patches (``blur_px`` is in image pixels).

    Returns
    -------
    torch.Tensor
        A new tensor of the same shape, dtype and device; ``x`` itself when all is off or
        the batch is empty (then no random number is drawn).
    """
    if not params.enabled or x.shape[0] == 0:
        return x
    n = x.shape[0]
    dev, dtype = x.device, x.dtype
    out = x
    if params.intensity > 0:
        a = params.intensity
        gain = torch.exp(_uniform(n, -a, a, generator))
        gamma = torch.exp(_uniform(n, -a, a, generator))
        offset = _uniform(n, -a / 2, a / 2, generator)
        gain, gamma, offset = (t.to(dev, dtype)[:, None, None, None] for t in (gain, gamma, offset))
        positive = out.clamp(min=0)
        out = torch.where(out > 0, positive.pow(gamma), out) * gain + offset
    if params.blur_px > 0:
        sigma = _uniform(n, 0.0, params.blur_px / max(1, downsample), generator)
        out = blur(out, sigma)
    if params.noise > 0:
        std = _uniform(n, 0.0, params.noise, generator)[:, None, None, None]
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32) * std
        out = out + noise.to(dev, dtype)
    return out
