"""The Gaussian latent kind (seeds 003 and 004's VAE): reparameterisation, ELBO and IWAE.

The encoder gives q(z|x) = N(mu, diag(sigma^2)); z = mu + sigma * eps with eps ~ N(0, I)
keeps the sample differentiable in mu and sigma (Kingma & Welling 2014). The ELBO

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || N(0, I))

is trained as its negative, ``recon + w * kl`` with the KL weight w = beta (ramped up over
``kl_warmup`` epochs) and, optionally, free bits. With ``iwae_samples`` = k > 1 the tighter
importance-weighted bound log 1/k sum_i p(x, z_i) / q(z_i|x) is trained instead (Burda et al.
2016); the same log-weights give the importance-sampled log-likelihood of
:func:`aekit.variational.log_likelihood`.
"""

from __future__ import annotations

import math

import torch

from ..losses import gaussian_kl, gaussian_log_density, negative_log_likelihood

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


def log_weights(model, x, x_in, samples: int, generator=None):
    """log p(x|z_i) and log p(z_i) - log q(z_i|x_in), each (samples, N), and mu (N, L).

    z_i ~ q(z | x_in); the likelihood scores the clean x (x_in is x, or its corruption).
    """
    mu, logvar = model.posterior(x_in)
    z = reparameterise(mu, logvar, samples, generator)  # (k, N, L)
    logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(samples, len(x), -1)
    log_px_z = -negative_log_likelihood(model.config.loss, model.output(logits), logits, x)
    log_ratio = gaussian_log_density(z) - gaussian_log_density(z, mu, logvar)
    return log_px_z, log_ratio, mu


def gaussian_objective(model, x, x_in, generator=None):
    """({"loss", "recon", "kl"}, mu) for a batch: the negative ELBO, or IWAE bound, in nats.

    "recon" is E[-log p(x|z)] and "kl" the KL per sample (averages over the batch); with free
    bits F each latent unit is charged max(F, its batch-mean KL) in "loss".
    """
    config = model.config
    w = kl_weight(config, model.epoch, model.training)
    k = config.iwae_samples
    if k > 1:
        log_px_z, log_ratio, mu = log_weights(model, x, x_in, k, generator)
        bound = torch.logsumexp(log_px_z + w * log_ratio, dim=0) - math.log(k)  # (N,)
        terms = {"loss": -bound.mean(), "recon": -log_px_z.mean(), "kl": -log_ratio.mean()}
        return terms, mu
    mu, logvar = model.posterior(x_in)
    z = reparameterise(mu, logvar, None, generator)
    logits = model.decode_logits(z)
    recon = negative_log_likelihood(config.loss, model.output(logits), logits, x).mean()
    kl_units = gaussian_kl(mu, logvar).mean(dim=0)  # (L,): batch-mean KL of each unit
    charged = kl_units.clamp_min(config.free_bits) if config.free_bits > 0 else kl_units
    terms = {"loss": recon + w * charged.sum(), "recon": recon, "kl": kl_units.sum()}
    return terms, mu
