"""The Gaussian latent kind (seeds 003 and 004's VAE): reparameterisation, ELBO and IWAE.

The encoder gives q(z|x) = N(mu, diag(sigma^2)); z = mu + sigma * eps with eps ~ N(0, I)
keeps the sample differentiable in mu and sigma (Kingma & Welling 2014). The ELBO

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || N(0, I))

is trained as its negative, ``recon + w * kl`` with the KL weight w = beta (ramped up over
``kl_warmup`` epochs: the loop calls :meth:`GaussianLatent.on_epoch_start`) and,
optionally, free bits. With ``iwae_samples`` = k > 1 the tighter importance-weighted bound
log 1/k sum_i p(x, z_i) / q(z_i|x) is trained instead (Burda et al. 2016); the same
log-weights give the importance-sampled log-likelihood of :func:`aekit.apps.generation.nll`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError
from ...functional.losses import (
    LIKELIHOODS,
    gaussian_kl,
    gaussian_log_density,
    negative_log_likelihood,
)

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


def kl_weight(config, epoch: int | None, training: bool) -> float:
    """beta, times min(1, epoch / kl_warmup) while training with a warm-up (epoch 0-based).

    Evaluation always uses the full beta, so validation losses compare across epochs.
    """
    if training and config.kl_warmup > 0 and epoch is not None:
        return config.beta * min(1.0, epoch / config.kl_warmup)
    return config.beta


class GaussianLatent(nn.Module):
    """q(z|x) = N(mu, diag(exp(logvar))): mu from the code layer, log sigma^2 from its own head.

    ``kl_scale`` (a buffer, not saved) is the warm-up factor in [0, 1] applied to beta in
    training; :meth:`on_epoch_start` (called by the training loop, like every part's schedule)
    sets it before each epoch, in place, so that a captured CUDA graph of the step sees it.
    """

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
        if config.free_bits > 0 and config.iwae_samples > 1:
            raise ConfigError("free_bits applies to the ELBO, not to the IWAE bound")

    def posterior(self, model, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2), each (N, L), log sigma^2 clamped to be safe."""
        return model.encoder[-1](h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, model, h: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code of a VAE."""
        return model.encoder[-1](h)

    def kl_weight(self):
        """beta x the warm-up factor in training (a tensor), the full beta in evaluation."""
        beta = self.config.beta
        return self.kl_scale * beta if self.training and self.config.kl_warmup > 0 else beta

    def forward(self, model, h: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """The negative ELBO (or IWAE bound) in nats for features h, scoring the clean x.

        "recon" is E[-log p(x|z)] and "kl" the KL per sample (averages over the batch); with
        free bits F each latent unit is charged max(F, its batch-mean KL) in "loss".
        """
        config = self.config
        w = self.kl_weight()
        mu, logvar = self.posterior(model, h)
        k = config.iwae_samples
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
        charged = kl_units.clamp_min(config.free_bits) if config.free_bits > 0 else kl_units
        return {
            "loss": recon + w * charged.sum(),
            "recon": recon,
            "kl": kl_units.sum(),
            "code": mu,
            "x_hat": x_hat,
        }

    def on_epoch_start(self, epoch: int) -> None:
        """The KL warm-up: the weight grows from 0 to beta over ``kl_warmup`` epochs."""
        if self.config.kl_warmup > 0:
            self.kl_scale.fill_(min(1.0, epoch / self.config.kl_warmup))


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
