"""The Gaussian latent kind (seeds 003 and 004's VAE): reparameterisation, ELBO and IWAE.

The encoder gives q(z|x) = N(mu, diag(sigma^2)); z = mu + sigma * eps with eps ~ N(0, I)
keeps the sample differentiable in mu and sigma (Kingma & Welling 2014). The ELBO

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || N(0, I))

is trained as its negative, ``recon + w * kl`` with the KL weight w = ``kl_weight`` (the beta
of a beta-VAE; ramped up over ``kl_warmup`` epochs: the loop calls
:meth:`GaussianLatent.on_epoch_start`) and, optionally, free bits. Those are the kind's own
settings, :class:`GaussianSettings`. With ``iwae_samples`` = k > 1 the tighter
importance-weighted bound log 1/k sum_i p(x, z_i) / q(z_i|x) is trained instead (Burda et
al. 2016); the same log-weights give the importance-sampled log-likelihood of
:func:`aekit.apps.generation.nll`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ...functional.losses import (
    LIKELIHOODS,
    gaussian_kl,
    gaussian_log_density,
    negative_log_likelihood,
)
from ..parts import PartSettings, number, set_fields, whole

# exp(logvar) stays within (1e-13, 5e8): sigma never reaches 0 or inf, so no NaN from log sigma^2
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def reparameterise(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps; (N, L), or (samples, N, L) when ``samples`` is given."""
    shape = mu.shape if samples is None else (samples, *mu.shape)
    eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


@dataclass(frozen=True)
class GaussianSettings(PartSettings):
    """``kl_weight`` w of the KL term (``beta`` is its other name), ``kl_warmup`` epochs over
    which w ramps up from 0, ``free_bits`` the least KL (nats) charged per latent unit,
    ``iwae_samples`` k > 1 for the importance-weighted bound."""

    kl_weight: float = 1.0
    kl_warmup: int = 0
    free_bits: float = 0.0
    iwae_samples: int = 1

    FLAT = {
        "kl_weight": "kl_weight",
        "beta": "kl_weight",
        "kl_warmup": "kl_warmup",
        "free_bits": "free_bits",
        "iwae_samples": "iwae_samples",
    }

    def __post_init__(self) -> None:
        set_fields(
            self,
            kl_weight=number("kl_weight", self.kl_weight),
            kl_warmup=whole("kl_warmup", self.kl_warmup),
            free_bits=number("free_bits", self.free_bits),
            iwae_samples=whole("iwae_samples", self.iwae_samples, 1),
        )
        if self.free_bits > 0 and self.iwae_samples > 1:
            raise ConfigError("free_bits applies to the ELBO, not to the IWAE bound")


def kl_weight(settings: GaussianSettings, epoch: int | None, training: bool) -> float:
    """The KL weight, times min(1, epoch / kl_warmup) while training with a warm-up (epoch
    0-based). Evaluation always uses the full weight, so validation losses compare across
    epochs.
    """
    if training and settings.kl_warmup > 0 and epoch is not None:
        return settings.kl_weight * min(1.0, epoch / settings.kl_warmup)
    return settings.kl_weight


class GaussianLatent(nn.Module):
    """q(z|x) = N(mu, diag(exp(logvar))): mu from the code layer, log sigma^2 from its own head.

    ``kl_scale`` (a buffer, not saved) is the warm-up factor in [0, 1] applied to w in
    training; :meth:`on_epoch_start` (called by the training loop, like every part's schedule)
    sets it before each epoch, in place, so that a captured CUDA graph of the step sees it.
    """

    Settings = GaussianSettings

    def __init__(self, config, width: int) -> None:
        super().__init__()
        self.config = config
        # log sigma^2 from the same features as mu (= the code layer, model.encoder[-1])
        self.logvar = nn.Linear(width, config.latent_dim)
        self.register_buffer("kl_scale", torch.ones(()), persistent=False)

    @staticmethod
    def check_config(config) -> None:
        if config.latent_activation != "identity":
            raise ConfigError("a Gaussian latent has no code activation: use identity")
        if config.loss not in LIKELIHOODS:
            raise ConfigError(
                f"a Gaussian latent needs a likelihood, and loss {config.loss!r} is none: use "
                + ", ".join(f"{k} ({v})" for k, v in LIKELIHOODS.items())
            )

    def posterior(self, model, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2), each (N, L), log sigma^2 clamped to be safe."""
        return model.encoder[-1](h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, model, h: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code of a VAE."""
        return model.encoder[-1](h)

    def kl_weight(self):
        """w x the warm-up factor in training (a tensor), the full w in evaluation."""
        s = self.config.latent_settings
        return self.kl_scale * s.kl_weight if self.training and s.kl_warmup > 0 else s.kl_weight

    def forward(self, model, h: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """The negative ELBO (or IWAE bound) in nats for features h, scoring the clean x.

        "recon" is E[-log p(x|z)] and "kl" the KL per sample (averages over the batch); with
        free bits F each latent unit is charged max(F, its batch-mean KL) in "loss".
        """
        config = self.config
        w = self.kl_weight()
        mu, logvar = self.posterior(model, h)
        k = config.latent_settings.iwae_samples
        if k > 1:
            log_px_z, log_ratio, logits = _log_weights(model, mu, logvar, x, k, generator)
            bound = torch.logsumexp(log_px_z + w * log_ratio, dim=0) - math.log(k)  # (N,)
            return {
                "loss": -bound.mean(),
                "recon": -log_px_z.mean(),
                "kl": -log_ratio.mean(),
                "code": mu,
                "x_hat": model.output(logits[0]),
            }
        z = reparameterise(mu, logvar, None, generator)
        logits = model.decode_logits(z)
        x_hat = model.output(logits)
        recon = negative_log_likelihood(config.loss, x_hat, logits, x).mean()
        kl_units = gaussian_kl(mu, logvar).mean(dim=0)  # (L,): batch-mean KL of each unit
        floor = config.latent_settings.free_bits
        charged = kl_units.clamp_min(floor) if floor > 0 else kl_units
        return {
            "loss": recon + w * charged.sum(),
            "recon": recon,
            "kl": kl_units.sum(),
            "code": mu,
            "x_hat": x_hat,
        }

    def on_epoch_start(self, epoch: int) -> None:
        """The KL warm-up: the weight grows from 0 to beta over ``kl_warmup`` epochs."""
        warmup = self.config.latent_settings.kl_warmup
        if warmup > 0:
            self.kl_scale.fill_(min(1.0, epoch / warmup))


def _log_weights(model, mu, logvar, x, samples: int, generator=None):
    """log p(x|z_i), log p(z_i) - log q(z_i|x), each (samples, N), and the decoder's logits."""
    z = reparameterise(mu, logvar, samples, generator)  # (k, N, L)
    logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(samples, len(x), -1)
    log_px_z = -negative_log_likelihood(model.config.loss, model.output(logits), logits, x)
    log_ratio = gaussian_log_density(z) - gaussian_log_density(z, mu, logvar)
    return log_px_z, log_ratio, logits


def log_weights(model, x, x_in, samples: int, generator=None):
    """log p(x|z_i) and log p(z_i) - log q(z_i|x_in), each (samples, N), and mu (N, L).

    z_i ~ q(z | x_in); the likelihood scores the clean x (x_in is x, or its corruption).
    """
    mu, logvar = model.posterior(x_in)
    log_px_z, log_ratio, _ = _log_weights(model, mu, logvar, x, samples, generator)
    return log_px_z, log_ratio, mu
