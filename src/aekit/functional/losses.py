"""Losses, penalties and metrics as pure functions of tensors: each seed equation's one home.

Training losses follow seed 000: a sum over the features of one sample, averaged over the
batch. For the squared error that is exactly the seed's objective

    L = 1/(2N) ||X - X_hat||_F^2 = 1/(2N) sum_i sum_j (x_ij - x_hat_ij)^2,

whose gradient dL/dX_hat = (X_hat - X) / N is the seed's delta_out. Metrics (what ``aekit eval``
reports) are per element instead, so that they compare across data of any width.

The regularisers of seeds 003 and 004 live here too: the Gaussian KL of a VAE, the sparsity KL
to a target rate rho, L1 on the code, and the contractive penalty's closed form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError

LOSSES = ("mse", "mae", "bce", "ssim")
LIKELIHOODS = {"bce": "bernoulli", "mse": "gaussian", "mae": "laplace"}
_LOG_2PI = math.log(2 * math.pi)


REDUCTIONS = ("mean", "none")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean over the batch ("mean") or one value per sample ("none", shape (N,))."""
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ConfigError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")


def elementwise_loss(
    name: str, x_hat: torch.Tensor, logits: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """The loss of each element, (N, D): what the per-sample losses sum over the features.

    mse: 0.5 (x - x_hat)^2; mae: |x - x_hat|; bce: the binary cross-entropy from the logits.
    ssim has no per-element form and gets the squared error (an anomaly score's explanation).
    """
    if name in ("mse", "ssim"):
        return 0.5 * (x_hat - x).pow(2)
    if name == "mae":
        return (x_hat - x).abs()
    if name == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def masked_loss(
    name: str,
    x_hat: torch.Tensor,
    logits: torch.Tensor,
    x: torch.Tensor,
    mask: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """The loss on the values where ``mask`` is 1 only (a blind spot's objective), per sample.

    Each sample's sum of :func:`elementwise_loss` over its masked values, rescaled by
    D / (masked values) so that it is on the scale of the full loss (sum over D features);
    values where ``mask`` is 0 take no part (their gradient is exactly zero).
    """
    per_value = torch.where(mask.bool(), elementwise_loss(name, x_hat, logits, x), 0.0)
    count = mask.flatten(1).sum(1).clamp_min(1.0)
    per_sample = per_value.flatten(1).sum(1) * (mask[0].numel() / count)
    return _reduce(per_sample, reduction)


def mse(x_hat: torch.Tensor, x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Seed 000's L = 1/(2N) ||X - X_hat||_F^2 for a batch of N rows.

    ``reduction="none"`` gives each sample's 0.5 ||x_i - x_hat_i||^2, shape (N,).
    """
    if reduction == "mean":
        return F.mse_loss(x_hat, x, reduction="sum") * (0.5 / x.shape[0])
    return _reduce(0.5 * (x_hat - x).pow(2).sum(-1), reduction)


def mae(x_hat: torch.Tensor, x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """1/N sum_i ||x_i - x_hat_i||_1: absolute error summed over features, mean over samples."""
    if reduction == "mean":
        return F.l1_loss(x_hat, x, reduction="sum") / x.shape[0]
    return _reduce((x_hat - x).abs().sum(-1), reduction)


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-1/N sum_ij [x log s(a) + (1-x) log(1-s(a))] from the logits a, without overflow.

    Computing from the logits rather than from s(a) avoids log(0) when the sigmoid saturates.
    ``reduction="none"`` gives each sample's sum over the features, shape (N,).
    """
    if reduction == "mean":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    per_sample = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    return _reduce(per_sample, reduction)


def ssim_loss(
    x_hat: torch.Tensor,
    x: torch.Tensor,
    image_shape: tuple[int, int, int],
    data_range=1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """1/N sum_i (1 - SSIM(x_hat_i, x_i)) for flat images (N, C*H*W) of shape ``image_shape``.

    SSIM is torchmetrics' (Gaussian window, sigma 1.5, k1 = 0.01, k2 = 0.03); the window is
    11 pixels wide, or the largest odd width that fits smaller images. ``reduction="none"``
    gives 1 - SSIM per image, shape (N,).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    n = x.shape[0]
    c, h, w = image_shape
    k = min(11, min(h, w) - (1 - min(h, w) % 2))  # odd and no wider than the image
    per_image = ssim(
        x_hat.reshape(n, c, h, w),
        x.reshape(n, c, h, w),
        kernel_size=k,
        sigma=1.5 * k / 11,
        reduction="none",
        data_range=data_range,
    )
    return _reduce(1 - per_image, reduction)


def reconstruction_loss(
    name: str,
    x_hat: torch.Tensor,
    logits: torch.Tensor,
    x: torch.Tensor,
    image_shape: tuple[int, int, int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Dispatch on the loss name; ``logits`` is the output layer's pre-activation.

    ``reduction="none"`` gives one loss per sample (N,): an anomaly score.
    """
    if name == "mse":
        return mse(x_hat, x, reduction)
    if name == "mae":
        return mae(x_hat, x, reduction)
    if name == "bce":
        return bce_with_logits(logits, x, reduction)
    if name == "ssim":
        if image_shape is None:
            raise ConfigError("loss 'ssim' needs images: give the model an image_shape")
        return ssim_loss(x_hat, x, image_shape, reduction=reduction)
    raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def negative_log_likelihood(
    name: str, x_hat: torch.Tensor, logits: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """-log p(x_i | z_i) in nats per sample, shape (..., N), for the likelihood behind a loss.

    bce: Bernoulli with means s(logits); mse: Gaussian N(x_hat, I), so 0.5 ||x - x_hat||^2
    + D/2 log(2 pi) (seed 000's loss plus a constant); mae: Laplace with scale 1,
    ||x - x_hat||_1 + D log 2. The last axis holds the features.
    """
    d = x.shape[-1]
    if name == "bce":
        return F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
    if name == "mse":
        return 0.5 * (x_hat - x).pow(2).sum(-1) + 0.5 * d * _LOG_2PI
    if name == "mae":
        return (x_hat - x).abs().sum(-1) + d * math.log(2.0)
    raise ConfigError(
        f"loss {name!r} is not a likelihood; a Gaussian latent needs one of "
        + ", ".join(f"{k} ({v})" for k, v in LIKELIHOODS.items())
    )


# ---- regularisers ------------------------------------------------------------------------------


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element: 0.5 (mu^2 + s^2 - 1 - log s^2).

    Shape as ``mu``; sum over the last axis for the KL of a diagonal Gaussian.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(z: torch.Tensor, mu=None, logvar=None) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis (standard normal by default)."""
    if mu is None:
        return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def bernoulli_kl(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """KL(rho || rho_hat_j) = rho log(rho / rho_hat_j) + (1-rho) log((1-rho) / (1-rho_hat_j)).

    ``rho_hat`` is clamped to [eps, 1 - eps] so that a dead or saturated unit stays finite.
    """
    r = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / r) + (1 - rho) * torch.log((1 - rho) / (1 - r))


def sparsity_kl(code: torch.Tensor, rho: float) -> torch.Tensor:
    """Seed 003: sum_j KL(rho || rho_hat_j), rho_hat_j = mean activation of unit j in the batch.

    ``code`` (N, D_latent) must lie in (0, 1) (a sigmoid code layer).
    """
    return bernoulli_kl(rho, code.mean(dim=0)).sum()


def l1_code(code: torch.Tensor) -> torch.Tensor:
    """Seed 004: sum_j |z_j|, summed over the code and averaged over the batch."""
    return code.abs().sum(dim=-1).mean()


def activation_derivative(name: str, h: torch.Tensor) -> torch.Tensor:
    """s'(a) written in terms of the output h = s(a), for the elementwise activations."""
    if name == "sigmoid":
        return h * (1 - h)
    if name == "tanh":
        return 1 - h.pow(2)
    if name == "relu":
        return (h > 0).to(h.dtype)
    if name == "identity":
        return torch.ones_like(h)
    raise ConfigError(f"no derivative for activation {name!r}")


def contractive_closed_form(h: torch.Tensor, weight: torch.Tensor, activation: str = "sigmoid"):
    """1/N sum_i ||J_f(x_i)||_F^2 for one dense layer h = s(W x + b), without autograd.

    J = diag(s'(a)) W, so ||J||_F^2 = sum_j s'(a_j)^2 sum_k W_jk^2; for a sigmoid encoder
    s' = h (1 - h) (Rifai et al. 2011). ``weight`` is (D_latent, D_in), torch's layout.
    """
    row_norms = weight.pow(2).sum(dim=1)  # (D_latent,)
    return (activation_derivative(activation, h).pow(2) @ row_norms).mean()


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
