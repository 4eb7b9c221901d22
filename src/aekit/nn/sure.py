"""SURE training: a denoiser learnt from noisy data alone when their noise is known.

For y = x + n in D values with n ~ N(0, sigma^2 I), and any denoiser f, Stein's unbiased risk
estimate (Stein 1981; for training networks, Soltanayev & Chun 2018)

    SURE(y) = ||y - f(y)||^2 - D sigma^2 + 2 sigma^2 div f(y)

has the expectation E ||f(y) - x||^2, the supervised squared error to the clean x, and is
computed from y alone. The divergence sum_i df_i/dy_i is estimated by Monte Carlo (Ramani,
Blu & Unser 2008): with b ~ N(0, I), div f(y) ~ b . (f(y + eps b) - f(y)) / eps, one more pass
of the model per batch.

Poisson data, y = Poisson(PEAK x) / PEAK, use the Poisson unbiased risk estimate (PURE) in its
first-order form (Le Montagner et al. 2014): from E[y_i g(y - e_i / PEAK)] = E[x_i g(y)] and
one Taylor step, g(y - e_i / PEAK) ~ g(y) - (1 / PEAK) dg/dy_i,

    PURE(y) = ||y - f(y)||^2 - sum_i y_i / PEAK + (2 / PEAK) sum_i y_i df_i/dy_i,

which is SURE with each value's variance x_i / PEAK replaced by its unbiased estimate
y_i / PEAK (the divergence weighted by it, the same Monte Carlo estimate). It is exact for a
linear f, and it keeps the model in the data's own units: no Anscombe transform to undo
(whose inverse is biased at low counts, and MNIST's background is zero counts), so training,
``aekit denoise`` and the Gaussian case share one code path.

The part (``sure``: the noise the data hold, ``gaussian:SIGMA`` or ``poisson:PEAK`` in the
scaled units) is a corruption that adds nothing: the model reads the noisy y and
:meth:`Sure.risk` scores it (``loss`` = 0.5 SURE per sample, on the scale of the mse loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.noise import Noise
from ..errors import ConfigError
from .parts import PartSettings, number, set_fields

# the noises an unbiased risk estimate is written for here
KINDS = ("gaussian", "poisson")


def noise_variance(noise: Noise, y: torch.Tensor) -> torch.Tensor | float:
    """The (estimated) variance of each value's noise: sigma^2, or y / PEAK for Poisson."""
    if noise.kind == "gaussian":
        return noise.level**2
    return y.clamp_min(0.0) / noise.level


def risk_estimate(fn, y: torch.Tensor, noise: Noise, b: torch.Tensor, eps: float,
                  reduction: str = "mean"):  # fmt: skip
    """(0.5 SURE (or PURE) of ``fn`` at the noisy rows y (N, D), fn(y)): the estimate of
    0.5 ||fn(y) - x||^2 per sample, the divergence from the probe b (N, D) and the step
    ``eps``; ``reduction`` "mean" over samples or "none" (N,)."""
    f_y = fn(y)
    f_b = fn(y + eps * b)
    v = noise_variance(noise, y)
    div = (v * b * (f_b - f_y)).flatten(1).sum(1) / eps  # sum_i v_i df_i/dy_i, estimated
    total_v = (v * torch.ones_like(y)).flatten(1).sum(1)
    per_sample = 0.5 * ((y - f_y).pow(2).flatten(1).sum(1) - total_v + 2 * div)
    return (per_sample.mean() if reduction == "mean" else per_sample), f_y


@dataclass(frozen=True)
class SureSettings(PartSettings):
    """``noise``: what the training data hold, Gaussian or Poisson at one level, unclipped
    (``"gaussian:25/255"`` is read too); ``step``: the divergence's finite difference, eps =
    step x the noise's standard deviation (sigma, or 1 / sqrt(PEAK) at white). The default
    0.03 was chosen on MNIST validation images (sigma 25, 10 epochs, dB): step 0.001 28.98,
    0.01 30.10, 0.03 30.49, 0.1 30.35, 0.3 28.60; a small step leaves a ReLU network's
    divergence a local, noisy quantity, a large one smooths it too much."""

    noise: Noise
    step: float = 0.03

    FLAT = {"sure": "noise", "sure_step": "step"}

    def __post_init__(self) -> None:
        noise = Noise.parse(self.noise)
        set_fields(self, noise=noise, step=number("sure step", self.step))
        if noise.kind not in KINDS:
            raise ConfigError(
                f"SURE training is written for Gaussian or Poisson noise, not {noise.kind}: "
                "for other noise train from the noisy data with --model blindspot"
            )
        if noise.level_max is not None or noise.clip or noise.level <= 0 or self.step <= 0:
            raise ConfigError(
                f"SURE training needs the one noise level the data hold, unclipped and above "
                f"0 (e.g. gaussian:25/255 or poisson:30), got {noise}; else use --model blindspot"
            )

    @staticmethod
    def check(config) -> None:
        if config.latent != "deterministic" or config.loss != "mse" or config.penalties:
            raise ConfigError(
                "SURE training estimates the squared error: it needs loss mse, a deterministic "
                "latent and no penalties"
            )


class SureRisk(torch.nn.Module):
    """The ``sure`` part: the model is scored by the unbiased risk estimate of its squared
    error to the unseen clean data, from the noisy batch and the stated noise. As a
    corruption, ``part(y, generator) -> (y, None)``: nothing is added to the noisy data."""

    name = "sure"
    Settings = SureSettings
    scores_model = True  # the model calls risk() with its denoiser instead of its loss

    def __init__(self, noise: str | Noise, step: float = 0.03) -> None:
        super().__init__()
        self.noise, self.step = Noise.parse(noise), float(step)

    @classmethod
    def from_settings(cls, settings: SureSettings, config) -> SureRisk:
        return cls(settings.noise, settings.step)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        return x, None

    def risk(self, fn, y: torch.Tensor, generator: torch.Generator | None = None):
        """(loss, fn(y)): 0.5 SURE / PURE, mean over the batch; the probe b from
        ``generator`` (else torch's global RNG)."""
        b = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        scale = self.noise.level if self.noise.kind == "gaussian" else self.noise.level**-0.5
        return risk_estimate(fn, y, self.noise, b, self.step * scale)

    def extra_repr(self) -> str:
        return f"{self.noise}, step={self.step:g}"
