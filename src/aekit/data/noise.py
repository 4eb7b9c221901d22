"""Input corruptions for denoising autoencoders (seeds 003 and 004): x -> x_tilde ~ q(x_tilde | x).

A corruption is written as text so that it travels in a model's JSON config and on the command
line, ``KIND:LEVEL[:clip]``: ``gaussian:SIGMA`` adds N(0, SIGMA^2) noise, ``poisson:PEAK``
draws Poisson(PEAK x) / PEAK (shot noise: PEAK counts at the brightest value 1; negative values
count as 0), ``mask:P`` zeroes each value with probability P, ``salt-pepper:P`` sets each value
with probability P to 0 or 1 (half each). A ``:clip`` suffix clamps the result to [0, 1], for
images (``gaussian:0.5:clip``).

Units: a model corrupts the data it computes on, the *scaled* data (``aekit train --scale``):
image data are scaled by the format's maximum to [0, 1], so ``gaussian:0.1`` on 8-bit images
is sigma 25.5 of 255. A level may be written as a fraction to say it in pixel values,
``gaussian:25/255``. Tables are scaled per column (min-max by default), so sigma is a share of
each column's training range.

A level may be a range ``LOW-HIGH`` (``gaussian:0.02-0.2``, ``gaussian:5/255-50/255``): each
sample of a batch then draws its own level uniformly from it, so that one model learns the whole
range (blind denoising, as blind DnCNN).

Randomness comes from ``generator`` when given, else from torch's global RNG (which training
checkpoints save and restore, so a resumed run draws the same noise). Each kind is a function
in :data:`NOISES`; a new kind is a function and a row there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from aekit.errors import ConfigError


def _gaussian(x, level, generator):
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + level * eps


def _poisson(x, peak, generator):
    rate = (x.clamp_min(0.0) * peak).to(torch.float32)
    return (torch.poisson(rate, generator=generator) / peak).to(x.dtype)


def _mask(x, p, generator):
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.where(u < p, torch.zeros_like(x), x)


def _salt_pepper(x, p, generator):
    # u < p/2 -> 0 (pepper), p/2 <= u < p -> 1 (salt)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.where(u < p, (u >= p / 2).to(x.dtype), x)


# kind -> (x_tilde = f(x, level, generator), what its level is, whether the level is <= 1)
NOISES = {
    "gaussian": (_gaussian, "SIGMA", False),
    "poisson": (_poisson, "PEAK", False),
    "mask": (_mask, "P", True),
    "salt-pepper": (_salt_pepper, "P", True),
}
NOISE_KINDS = tuple(NOISES)


def _number(text: str, whole: str) -> float:
    """'0.3' or '25/255' -> a float."""
    num, _, den = text.partition("/")
    try:
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"noise level in {whole!r} is not a number (or a fraction A/B)") from None
    return value


@dataclass(frozen=True)
class Noise:
    """One corruption: its kind, its level (sigma, peak or probability), optionally the top of
    a range of levels (``level_max``: each sample draws its level from [level, level_max]),
    and whether to clip to [0, 1]."""

    kind: str
    level: float
    clip: bool = False
    level_max: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in NOISES:
            raise ConfigError(
                f"unknown noise {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}"
            )
        for value in (self.level, self.level_max):
            if value is None:
                continue
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"noise level must be a number >= 0, got {value}")
            if NOISES[self.kind][2] and value > 1:
                raise ConfigError(f"{self.kind} noise takes a probability in [0, 1], got {value}")
            if self.kind == "poisson" and value == 0:
                raise ConfigError("poisson noise takes a peak count > 0, e.g. poisson:30")
        if self.level_max is not None and self.level_max < self.level:
            raise ConfigError(f"noise range {self.level}-{self.level_max} runs backwards")

    @classmethod
    def parse(cls, text: str | Noise) -> Noise:
        """``"gaussian:0.3"``, ``"gaussian:25/255"``, ``"gaussian:0.05-0.2"``,
        ``"poisson:30"``, ``"mask:0.25"``, ``"salt-pepper:0.1"``, optional ``":clip"``; a
        :class:`Noise` is returned as it is."""
        if isinstance(text, Noise):
            return text
        parts = str(text).strip().lower().split(":")
        clip = len(parts) == 3 and parts[2] == "clip"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not clip):
            raise ConfigError(
                f"noise {text!r} is not KIND:LEVEL[:clip], e.g. gaussian:0.3, gaussian:25/255, "
                "gaussian:0.05-0.2, poisson:30, mask:0.25, salt-pepper:0.1 or gaussian:0.5:clip"
            )
        sign = "-" if parts[1].startswith("-") else ""  # a negative level is refused below
        low, dash, high = parts[1][len(sign) :].partition("-")
        low = sign + low
        level = _number(low, text)
        return cls(parts[0], level, clip, _number(high, text) if dash else None)

    def __str__(self) -> str:
        level = f"{self.level!r}" + (f"-{self.level_max!r}" if self.level_max is not None else "")
        return f"{self.kind}:{level}" + (":clip" if self.clip else "")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The corrupted copy x_tilde of x (N, ...); x itself is left untouched."""
        fn = NOISES[self.kind][0]
        level: float | torch.Tensor = self.level
        if self.level_max is not None and x.ndim > 0:  # one level per sample, uniform in range
            u = torch.rand(len(x), generator=generator, dtype=x.dtype, device=x.device)
            level = (self.level + (self.level_max - self.level) * u).reshape(
                -1, *[1] * (x.ndim - 1)
            )
        out = fn(x, level, generator)
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
