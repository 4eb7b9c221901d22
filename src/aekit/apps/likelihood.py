"""The importance-sampled log-likelihood of a model with a Gaussian latent (Burda et al. 2016).

log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K with z_k ~ q(z|x),
the encoder as the proposal: a lower bound in expectation that tightens as K grows. :func:`nll`
is its negative mean, in nats, the number papers report for binarised MNIST. Used by
``aekit eval --nll`` (:mod:`aekit.apps.evaluate`) and beside sampling
(:mod:`aekit.apps.generation`, which re-exports these names).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from ..nn.latent.gaussian import log_weights


def _require_gaussian(model, what: str) -> None:
    if getattr(model.config, "latent", "deterministic") != "gaussian":
        raise ConfigError(
            f"{what} needs a model with a Gaussian latent (vae, conv-vae, or latent gaussian); "
            f"{model.name!r} is deterministic"
        )


def _param(model) -> torch.Tensor:
    return next(model.parameters())


def is_gaussian(model) -> bool:
    """True for a model with a Gaussian latent (a VAE): it has a prior to sample."""
    return getattr(model.config, "latent", "deterministic") == "gaussian"


@torch.no_grad()
def log_likelihood(
    model, X: np.ndarray, samples: int = 1000, *, batch_size: int = 100, seed: int = 0
) -> np.ndarray:
    """Importance-sampled log p(x_i) in nats for each row of X: shape (N,), float64.

    ``samples`` (K) draws from q(z|x) per row, taken in chunks so that memory stays at about
    ``batch_size * min(K, 500)`` decodings. The likelihood is the model's (Bernoulli for loss
    bce: score binarised data with it; Gaussian for mse; Laplace for mae).
    """
    _require_gaussian(model, "the log-likelihood")
    if int(samples) < 1:
        raise ConfigError("the log-likelihood needs samples >= 1")
    was_training = model.training
    model.eval()
    try:
        p = _param(model)
        g = torch.Generator(device=p.device).manual_seed(int(seed))
        t = model._to_tensor(X, model.config.input_dim)
        out = [
            _log_px(model, t[i : i + batch_size], int(samples), g)
            for i in range(0, len(t), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out).cpu().numpy()


def _log_px(model, x: torch.Tensor, samples: int, g: torch.Generator) -> torch.Tensor:
    chunk = min(samples, 500)
    parts = []
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        log_px_z, log_ratio, _ = log_weights(model, x, x, k, g)
        parts.append((log_px_z + log_ratio).double())  # (k, N) log w
    log_w = torch.cat(parts)  # (K, N)
    return torch.logsumexp(log_w, dim=0) - math.log(samples)


def nll(model, X: np.ndarray, samples: int = 1000, **kwargs) -> float:
    """-1/N sum_i log p(x_i): the importance-sampled negative log-likelihood in nats."""
    return float(-log_likelihood(model, X, samples, **kwargs).mean())
