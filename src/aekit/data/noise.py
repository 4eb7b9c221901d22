"""Input corruptions for denoising autoencoders (seeds 003 and 004): x -> x_tilde ~ q(x_tilde | x).

A corruption is written as text so that it travels in a model's JSON config and on the command
line: ``gaussian:SIGMA`` adds N(0, SIGMA^2) noise, ``mask:P`` zeroes each value with probability
P, ``salt-pepper:P`` sets each value with probability P to 0 or 1 (half each). A ``:clip``
suffix clamps the result to [0, 1], for images (``gaussian:0.5:clip``).

Randomness comes from ``generator`` when given, else from torch's global RNG (which training
checkpoints save and restore, so a resumed run draws the same noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from aekit.errors import ConfigError

NOISE_KINDS = ("gaussian", "mask", "salt-pepper")


@dataclass(frozen=True)
class Noise:
    """One corruption: its kind, its level (sigma or probability) and whether to clip to [0, 1]."""

    kind: str
    level: float
    clip: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ConfigError(
                f"unknown noise {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}"
            )
        if not math.isfinite(self.level) or self.level < 0:
            raise ConfigError(f"noise level must be a number >= 0, got {self.level}")
        if self.kind != "gaussian" and self.level > 1:
            raise ConfigError(f"{self.kind} noise takes a probability in [0, 1], got {self.level}")

    @classmethod
    def parse(cls, text: str) -> Noise:
        """``"gaussian:0.3"``, ``"mask:0.25"``, ``"salt-pepper:0.1"``, optional ``":clip"``."""
        parts = str(text).strip().lower().split(":")
        clip = len(parts) == 3 and parts[2] == "clip"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not clip):
            raise ConfigError(
                f"noise {text!r} is not KIND:LEVEL[:clip], e.g. gaussian:0.3, mask:0.25, "
                "salt-pepper:0.1 or gaussian:0.5:clip"
            )
        try:
            level = float(parts[1])
        except ValueError:
            raise ConfigError(f"noise level in {text!r} is not a number") from None
        return cls(parts[0], level, clip)

    def __str__(self) -> str:
        return f"{self.kind}:{self.level!r}" + (":clip" if self.clip else "")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The corrupted copy x_tilde of x (any shape); x itself is left untouched."""
        if self.kind == "gaussian":
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            out = x + self.level * eps
        else:
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            hit = u < self.level
            if self.kind == "mask":
                out = torch.where(hit, torch.zeros_like(x), x)
            else:  # salt-pepper: u < p/2 -> 0 (pepper), p/2 <= u < p -> 1 (salt)
                out = torch.where(hit, (u >= self.level / 2).to(x.dtype), x)
        return out.clamp(0.0, 1.0) if self.clip else out


def corrupt(X: np.ndarray, noise: str | Noise, seed: int = 0) -> np.ndarray:
    """A corrupted copy of the array X with a fixed seed: the same noise on every call."""
    noise = noise if isinstance(noise, Noise) else Noise.parse(noise)
    g = torch.Generator().manual_seed(int(seed))
    return noise(torch.as_tensor(np.array(X)), g).numpy()


def binarize(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """One draw x_b ~ Bernoulli(X) of data in [0, 1] (stochastic binarisation), same dtype."""
    rng = np.random.default_rng(int(seed))
    X = np.asarray(X)
    return (rng.random(X.shape) < X).astype(X.dtype)
