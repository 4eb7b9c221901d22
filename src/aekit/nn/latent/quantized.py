"""The quantised latent kind: a code rounded to integers and priced by a learned entropy model.

The code layer gives y (N, L). In training the decoder and the entropy model both read
y + u, u ~ U(-1/2, 1/2): additive uniform noise, a differentiable stand-in for rounding
(Balle et al. 2017). In evaluation they read y_hat = m + clip(round(y - m), lo, hi): the
integers k = y_hat - m that a bitstream carries, rounded around each channel's median m
(CompressAI's choice) and kept within the range [lo, hi] that the entropy model's tables
cover (the tails beyond it hold less than 1e-9 of each channel's probability).

The entropy model is the factorized prior of Balle et al. 2018 (appendix 6.1), as
CompressAI's ``EntropyBottleneck``: per channel c a monotone learned CDF F_c, and the
probability of a value v is P_c(v) = F_c(v + 1/2) - F_c(v - 1/2). The objective is

    loss = D + lambda * R,    R = -sum_c log2 P_c(y_c) / pixels     (bits per pixel)

with D the reconstruction loss (for "mse": half the squared error summed over the pixels,
averaged over the batch), so the rate weight lambda (``rate_weight``, the kind's own setting
in :class:`QuantizedSettings`) picks the rate. config.json files written before it had its
own name call it ``beta``; that name is still read. The record's "rate" term is R in bits
per pixel, a pixel being one (H, W) position of the model's image_shape (each feature of a
model without one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...functional.losses import reconstruction_loss
from ...functional.rate import bits_from_likelihoods
from ..parts import PartSettings, number, set_fields

LIKELIHOOD_BOUND = 1e-9  # the least likelihood priced: -log2 caps at about 30 bits a value
TAIL_MASS = 1e-9  # the probability left outside a channel's table on each side
PRECISION = 16  # the integer tables sum to 2**PRECISION
MAX_RADIUS = 2**14  # the widest support searched for a channel's table


class FactorizedPrior(nn.Module):
    """Per-channel monotone CDFs: F_c = sigmoid(f_K o ... o f_1), each f_k with positive slopes.

    f_k(v) = softplus(H_k) v + b_k, then v + tanh(a_k) tanh(v) between layers (Balle et al.
    2018, appendix 6.1): positive weights and gates in (-1, 1) keep the composition monotone.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), scale=10.0):
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        per_layer = scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            # softplus(init) = 1 / (per_layer * fan_out): the initial CDF spreads over about +-scale
            init = math.log(math.expm1(1.0 / per_layer / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def cdf_logits(self, v: torch.Tensor) -> torch.Tensor:  # (C, 1, K) -> (C, 1, K)
        """logit F_c(v) for K points per channel; float64 points evaluate in float64."""
        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            v = F.softplus(matrix.to(v.dtype)) @ v + bias.to(v.dtype)  # (C, out, in) @ (C, in, K)
            if k < len(self.factors):
                v = v + torch.tanh(self.factors[k].to(v.dtype)) * torch.tanh(v)
        return v

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:  # (N, C) -> (N, C)
        """P_c(y) = F_c(y + 1/2) - F_c(y - 1/2), computed on the side of the median where the
        two sigmoids are far from 1 (CompressAI's sign trick), so that tails keep precision."""
        v = y.t().unsqueeze(1)  # (N, C) -> (C, 1, N)
        lower, upper = self.cdf_logits(v - 0.5), self.cdf_logits(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        p = p.squeeze(1).t()
        # the value max(p, bound) with the gradient of p: a far tail still feels the rate
        return p + (LIKELIHOOD_BOUND - p).clamp_min(0).detach()

    # ---- tables: what the encoder and the decoder of a bitstream share -------------------

    @torch.no_grad()
    def tables(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(medians m (L,) float32, lo (L,) int64, [counts_c]): channel c's symbols are the
        integers k = lo_c .. hi_c standing for the values m_c + k, with integer counts.

        Computed in float64 from the parameters alone (no data), so that a compressor and a
        decompressor holding the same model build identical tables. Each count is >= 1 and the
        counts of a channel sum to 2**PRECISION; the tails beyond the table are folded into
        its end symbols.
        """
        m, lo, hi, (ks, cdf) = self.support()
        counts = []
        for c in range(len(lo)):
            # the edges k - 1/2 for k = lo .. hi + 1 (ks[j] is the edge below integer j - r)
            edges = cdf[c, lo[c] - ks[0] : hi[c] - ks[0] + 2].copy()
            edges[0], edges[-1] = 0.0, 1.0  # fold the tails into the end symbols
            counts.append(_integer_pmf(np.diff(edges)))
        return m, lo, counts

    @torch.no_grad()
    def medians(self) -> torch.Tensor:
        """m_c with F_c(m_c) = 1/2 (bisection in float64), rounded to the model's dtype."""
        p = self.biases[0]
        n = self.channels
        a = torch.full((n, 1, 1), -1.0, dtype=torch.float64, device=p.device)
        b = -a
        for _ in range(40):  # widen until the bracket holds the median (|m| < 2**40)
            a = torch.where(self.cdf_logits(a) > 0, 2 * a, a)
            b = torch.where(self.cdf_logits(b) < 0, 2 * b, b)
        for _ in range(60):
            mid = (a + b) / 2
            below = self.cdf_logits(mid) < 0
            a, b = torch.where(below, mid, a), torch.where(below, b, mid)
        return ((a + b) / 2).reshape(n).to(p.dtype)

    def support(self):
        """Medians, per channel [lo, hi] with tail masses below TAIL_MASS, and the CDF at the
        edges m + k - 1/2 for k = -r .. r + 1; recomputed only when a parameter changed."""
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if getattr(self, "_cache", (None,))[0] != key:
            self._cache = (key, self._compute_support())
        return self._cache[1]

    @torch.no_grad()
    def _compute_support(self):
        m = self.medians()
        r = 64
        while True:
            ks = np.arange(-r, r + 2)
            edges = m.double()[:, None, None] + torch.as_tensor(ks - 0.5, device=m.device)
            cdf = torch.sigmoid(self.cdf_logits(edges)).cpu().numpy()[:, 0]
            if (cdf[:, 0] < TAIL_MASS).all() and (cdf[:, -1] > 1 - TAIL_MASS).all():
                break
            if r >= MAX_RADIUS:
                raise ConfigError(
                    "the quantised code is too spread out to tabulate (over +-16384): train "
                    "the model with a larger rate weight, or for longer"
                )
            r *= 2
        # lo: the least k with F(m + k + 1/2) >= tail; hi: the largest k with
        # F(m + k - 1/2) <= 1 - tail
        lo = np.array([ks[np.argmax(row[1:] >= TAIL_MASS)] for row in cdf])
        hi = np.array([ks[len(row) - 1 - np.argmax(row[::-1] <= 1 - TAIL_MASS)] for row in cdf])
        # numpy, so that a traced graph (ONNX export) holds them as constants
        return m.cpu().numpy(), lo.astype(np.int64), hi.astype(np.int64), (ks, cdf)

    def quantise(self, y: torch.Tensor) -> torch.Tensor:
        """(N, C) -> m + clip(round(y - m), lo, hi): what a bitstream carries, around the
        medians (the noise of training knows no integer grid; the medians put each channel's
        most likely value on it)."""
        m, lo, hi, _ = self.support()
        m = _like(m, y)
        k = torch.round(y - m)
        k = torch.maximum(torch.minimum(k, _like(hi, k)), _like(lo, k))
        return k + m


@dataclass(frozen=True)
class QuantizedSettings(PartSettings):
    """``rate_weight``: lambda of D + lambda R, R in bits per pixel (larger: fewer bits)."""

    rate_weight: float = 1.0

    FLAT = {"rate_weight": "rate_weight", "beta": "rate_weight"}

    def __post_init__(self) -> None:
        set_fields(self, rate_weight=number("rate_weight", self.rate_weight))


class QuantizedLatent(nn.Module):
    """y = code_layer(h), rounded to integers and priced in bits by a :class:`FactorizedPrior`."""

    Settings = QuantizedSettings

    def __init__(self, config, width: int) -> None:
        super().__init__()
        self.config = config
        self.prior = FactorizedPrior(config.latent_dim)
        shape = config.image_shape
        self.pixels = shape[1] * shape[2] if shape is not None else config.input_dim

    @staticmethod
    def check_config(config) -> None:
        if config.latent_activation != "identity":
            raise ConfigError("a quantised latent has no code activation: use identity")
        if config.penalties:
            raise ConfigError("a quantised latent is priced by its rate: use no code penalty")

    # ---- tables: what the encoder and the decoder of a bitstream share (the prior's) -----

    def tables(self):
        """The prior's integer tables (:meth:`FactorizedPrior.tables`)."""
        return self.prior.tables()

    def medians(self) -> torch.Tensor:
        return self.prior.medians()

    def _support(self):
        return self.prior.support()

    # ---- the latent kind's interface ---------------------------------------------------

    def quantise(self, y: torch.Tensor) -> torch.Tensor:
        """y_hat = m + clip(round(y - m), lo, hi) (:meth:`FactorizedPrior.quantise`)."""
        return self.prior.quantise(y)

    def encode(self, model, h: torch.Tensor) -> torch.Tensor:  # (N, F) -> (N, L)
        """The quantised code y_hat, deterministic."""
        return self.quantise(model.encoder[-1](h))

    def forward(self, model, h: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """D + lambda R for features h, scoring the clean x; "rate" is R in bits per pixel."""
        y = model.encoder[-1](h)
        if self.training:
            noise = torch.rand(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            y_hat = y + (noise - 0.5)
        else:
            y_hat = self.quantise(y)
        bits = bits_from_likelihoods(self.prior.likelihood(y_hat))  # (N,)
        rate = bits.mean() / self.pixels
        logits = model.decode_logits(y_hat)
        x_hat = model.output(logits)
        cfg = self.config
        recon = reconstruction_loss(cfg.loss, x_hat, logits, x, cfg.image_shape)
        return {
            "loss": recon + cfg.latent_settings.rate_weight * rate,
            "recon": recon,
            "rate": rate,
            "code": y_hat,
            "x_hat": x_hat,
        }


def _like(values: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=t.dtype, device=t.device)


def _integer_pmf(pmf: np.ndarray) -> np.ndarray:
    """Integer counts >= 1 summing to 2**PRECISION, proportional to ``pmf`` (deterministic)."""
    total = 1 << PRECISION
    n = len(pmf)
    if n > total // 2:
        raise ConfigError(f"a channel's table of {n} symbols exceeds 2**{PRECISION - 1}")
    pmf = np.clip(pmf, 0.0, None)
    counts = 1 + np.floor(pmf / pmf.sum() * (total - n)).astype(np.int64)
    counts[int(np.argmax(counts))] += total - int(counts.sum())  # the rounding remainder
    return counts
