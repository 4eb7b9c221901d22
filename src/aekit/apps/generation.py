"""What a model with a Gaussian latent can do besides reconstruct: sample, interpolate, score.

- :func:`sample` decodes z ~ N(0, I), the prior;
- :func:`interpolate` decodes the straight line between the codes of two inputs (posterior
  means for a VAE; any autoencoder's codes otherwise);
- :func:`log_likelihood` estimates log p(x) by importance sampling with the encoder as the
  proposal, log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K with
  z_k ~ q(z|x): a lower bound in expectation that tightens as K grows (Burda et al. 2016).
  :func:`nll` is its negative mean, in nats, the number papers report for binarised MNIST.

All take already-scaled data and a fixed ``seed``, so their results repeat exactly.
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


@torch.no_grad()
def sample(model, n: int, seed: int = 0) -> np.ndarray:
    """n samples x = g(z), z ~ N(0, I), in the model's scaled space: (n, D_in).

    Returns the decoder's mean (sigmoid probabilities for a Bernoulli model).
    """
    _require_gaussian(model, "sampling from the prior")
    p = _param(model)
    g = torch.Generator(device=p.device).manual_seed(int(seed))
    z = torch.randn((int(n), model.config.latent_dim), generator=g, dtype=p.dtype, device=p.device)
    return model.decode_scaled(z.cpu().numpy())


def interpolate(model, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
    """Decodings of (1 - t) f(a) + t f(b) for ``steps`` values of t from 0 to 1: (steps, D_in).

    ``a`` and ``b`` are single samples (D_in,) or rows (1, D_in) in the model's scaled space.
    """
    if int(steps) < 2:
        raise ConfigError("interpolation needs steps >= 2 (both end points)")
    ends = np.stack([np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)])
    za, zb = model.encode_scaled(ends)
    t = np.linspace(0.0, 1.0, int(steps), dtype=za.dtype)[:, None]
    return model.decode_scaled((1 - t) * za + t * zb)


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
