"""Reconstruction losses and metrics as pure functions of tensors.

Training losses follow seed 000: a sum over the features of one sample, averaged over the
batch. For the squared error that is exactly the seed's objective

    L = 1/(2N) ||X - X_hat||_F^2 = 1/(2N) sum_i sum_j (x_ij - x_hat_ij)^2,

whose gradient dL/dX_hat = (X_hat - X) / N is the seed's delta_out. Metrics (what ``aekit eval``
reports) are per element instead, so that they compare across data of any width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ConfigError

LOSSES = ("mse", "mae", "bce")


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Seed 000's L = 1/(2N) ||X - X_hat||_F^2 for a batch of N rows."""
    return F.mse_loss(x_hat, x, reduction="sum") * (0.5 / x.shape[0])


def mae(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1/N sum_i ||x_i - x_hat_i||_1: absolute error summed over features, mean over samples."""
    return F.l1_loss(x_hat, x, reduction="sum") / x.shape[0]


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-1/N sum_ij [x log s(a) + (1-x) log(1-s(a))] from the logits a, without overflow.

    Computing from the logits rather than from s(a) avoids log(0) when the sigmoid saturates.
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def reconstruction_loss(
    name: str, x_hat: torch.Tensor, logits: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Dispatch on the loss name; ``logits`` is the output layer's pre-activation."""
    if name == "mse":
        return mse(x_hat, x)
    if name == "mae":
        return mae(x_hat, x)
    if name == "bce":
        return bce_with_logits(logits, x)
    raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


@torch.no_grad()
def reconstruction_metrics(
    x_hat: torch.Tensor, x: torch.Tensor, data_range: float = 1.0
) -> dict[str, float]:
    """Per-element MSE and MAE, BCE where both tensors lie in [0, 1], mean per-sample PSNR (dB).

    PSNR_i = 10 log10(data_range^2 / MSE_i) for each sample i, averaged over samples; a sample
    reconstructed exactly is capped at 100 dB so that the mean stays finite.
    """
    x_hat = x_hat.double()
    x = x.double()
    err = x_hat - x
    per_sample = err.pow(2).mean(dim=1)
    psnr = 10.0 * torch.log10(data_range**2 / per_sample.clamp_min(data_range**2 * 1e-10))
    out = {
        "mse": float(per_sample.mean()),
        "mae": float(err.abs().mean()),
        "psnr": float(psnr.mean()),
    }
    if x.min() >= 0 and x.max() <= 1 and x_hat.min() >= 0 and x_hat.max() <= 1:
        p = x_hat.clamp(1e-7, 1 - 1e-7)
        out["bce"] = float(-(x * p.log() + (1 - x) * (1 - p).log()).mean())
    for key, value in out.items():
        if not math.isfinite(value):
            out[key] = float("nan")
    return out
