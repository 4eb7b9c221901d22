"""The input corruption of a denoising autoencoder as a module of the model (seeds 003, 004).

The noise itself (its text form, kinds and maths) is :class:`aekit.data.noise.Noise`, which
also corrupts arrays for evaluation; this module applies it to a batch inside ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.noise import Noise


class Corruption(nn.Module):
    """x -> x_tilde ~ q(x_tilde | x); randomness from ``generator``, else torch's global RNG."""

    def __init__(self, noise: str | Noise) -> None:
        super().__init__()
        self.noise = noise if isinstance(noise, Noise) else Noise.parse(noise)

    @classmethod
    def from_config(cls, config) -> Corruption | None:
        return cls(config.noise) if config.noise else None

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(x, generator)

    def extra_repr(self) -> str:
        return str(self.noise)
