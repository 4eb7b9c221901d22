"""The codec's block transform: a learned transform that starts at the DCT.

GDN transforms (:mod:`aekit.nn.arch.codec`) start from random weights and need on the order
of a million steps (GPU days) to beat JPEG; in CPU minutes (hundreds of steps) they stay 15 dB
below it. This transform starts where JPEG is: the analysis is one convolution with kernel and
stride B = 2^stages whose filters are, at the start, the orthonormal 2-D DCT-II of B x B blocks
(on colour images after an orthonormal luma / two-chroma rotation), so that the code holds
C * B^2 coefficients per block; the synthesis is the transposed convolution with the same
filters, so that at the start it inverts the analysis exactly (an orthonormal basis), followed
by a residual post-filter (three 3x3 convolutions, ReLU) whose last layer starts at zero: a
learned deblocking, nothing at the start. Every weight is trained; the hyperprior latent
prices the coefficients from the first step.

The analysis scales the coefficients by START_SCALE: on data in [0, 1], a quantiser step of 1
at the middle gain is a step of 255 / START_SCALE = 16 grey levels in every coefficient (the
steps that minimise the squared error are equal in every coefficient of an orthonormal basis
at high rate); the gain units move it per rate and per channel from there.
"""

from __future__ import annotations

import math

import torch
from torch import nn

START_SCALE = 16.0


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (n, n): row k is the k-th basis vector."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def colour_rotation(c: int) -> torch.Tensor:
    """(c, c) orthonormal: the identity for grey; for RGB the luma (1, 1, 1) and the two
    chroma differences (1, 0, -1), (1, -2, 1), each normalised."""
    if c != 3:
        return torch.eye(c, dtype=torch.float64)
    rot = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    return rot / rot.norm(dim=1, keepdim=True)


def block_basis(c: int, b: int) -> torch.Tensor:
    """Filters (c * b * b, c, b, b) of the orthonormal colour x 2-D DCT basis: output channel
    (a, u, v) is colour component a at vertical frequency u and horizontal frequency v."""
    d = dct_matrix(b)
    d2 = torch.einsum("ui,vj->uvij", d, d).reshape(b * b, b, b)
    w = torch.einsum("ca,kij->ckaij", colour_rotation(c), d2)
    return w.reshape(c * b * b, c, b, b).float()


class BlockAnalysis(nn.Module):
    """y = START_SCALE * (DCT of each B x B block) at the start; (N, C, H, W) -> (N, C B^2,
    H / B, W / B) for H, W multiples of B."""

    def __init__(self, channels: int, block: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * block * block, block, block, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(block_basis(channels, block) * START_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BlockSynthesis(nn.Module):
    """The inverse block transform, then a residual post-filter that starts at zero."""

    def __init__(self, channels: int, block: int, post_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels * block * block, channels, block, block,
                                       bias=False)  # fmt: skip
        with torch.no_grad():
            self.conv.weight.copy_(block_basis(channels, block) / START_SCALE)
        self.post = None
        if post_channels:
            f = post_channels
            self.post = nn.Sequential(
                nn.Conv2d(channels, f, 3, 1, 1), nn.ReLU(),
                nn.Conv2d(f, f, 3, 1, 1), nn.ReLU(),
                nn.Conv2d(f, channels, 3, 1, 1),
            )  # fmt: skip
            nn.init.zeros_(self.post[-1].weight)
            nn.init.zeros_(self.post[-1].bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.conv(y)
        return x if self.post is None else x + self.post(x)
