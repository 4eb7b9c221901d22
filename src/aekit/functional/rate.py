"""Pure functions of compression: bits from likelihoods, bits per pixel, PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import torch


def bits_from_likelihoods(likelihoods: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """-sum log2 p over the last axis: the ideal code length of each sample, in bits.

    ``likelihoods`` (N, L) are the entropy model's probabilities of the quantised values;
    ``reduction`` "none" gives (N,), "mean" and "sum" a 0-dim tensor.
    """
    bits = -torch.log2(likelihoods).sum(-1)
    if reduction == "none":
        return bits
    if reduction == "mean":
        return bits.mean()
    if reduction == "sum":
        return bits.sum()
    raise ValueError(f"unknown reduction {reduction!r}; choose none, mean or sum")


def bits_per_pixel(n_bytes: int, n_images: int, pixels_per_image: int) -> float:
    """8 * bytes / (images * pixels): every byte of a file counted, header included."""
    return 8.0 * n_bytes / (n_images * pixels_per_image)


def psnr(x_hat: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each image: 10 log10(range^2 / MSE_i), rows (N, D) -> (N,).

    An image reconstructed exactly gets +inf; average the MSE first (:func:`mean_psnr`) to
    summarise a set the way codec comparisons do.
    """
    mse = np.mean((np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)) ** 2, axis=-1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def mean_psnr(x_hat: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """The PSNR of the mean squared error over a whole set (the usual codec curve's y axis)."""
    mse = float(np.mean((np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(data_range**2 / mse))


def mean_ssim(
    x_hat: np.ndarray, x: np.ndarray, image_shape: tuple[int, int, int], data_range: float = 1.0
) -> float:
    """Mean SSIM over images (torchmetrics' Gaussian window, as aekit's ssim loss)."""
    from .losses import ssim_loss

    a = torch.as_tensor(np.asarray(x_hat, np.float64))
    b = torch.as_tensor(np.asarray(x, np.float64))
    scores = []
    for i in range(0, len(a), 2048):  # a few MB at a time
        scores.append(
            1 - ssim_loss(a[i : i + 2048], b[i : i + 2048], image_shape, data_range, "none")
        )
    return float(torch.cat(scores).mean())
