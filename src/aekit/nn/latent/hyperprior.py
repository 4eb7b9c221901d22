"""The mean-scale hyperprior: a spatial quantised latent priced by a Gaussian whose mean and
scale are side information, with gain units so that one model covers every rate.

The analysis transform gives a grid y (N, M, h, w). A rate knob q in [0, K - 1] (K = the
number of ``lambdas``) picks per-channel gains a_q, b_q (Cui et al. 2021): log a_q and log b_q
interpolate linearly between the K trained gain vectors, so every q in between is a rate
too. The encoder codes y' = a_q y:

    z = h_a(y')                       (N, Z, h/4, w/4): the side information
    z_hat = m + round(z - m)          priced by a factorized prior (Balle et al. 2018), the
                                      same module as the ``quantized`` latent's
    mu, sigma = h_s(z_hat)            (Minnen et al. 2018's mean and scale)
    k = round(y' - mu)                the integers the bitstream carries
    P(k) = Phi((k + 1/2) / sigma) - Phi((k - 1/2) / sigma)

and the decoder reads y_hat = b_q (mu + k). In training, rounding is replaced by uniform noise
in the rate (Balle et al. 2017) and by a straight-through rounding in what the decoder reads
(the mean-scale models' usual choice); each image of a batch draws its own lambda index k_i,
and the objective is

    loss = mean_i [ R_i + lambda_{k_i} 255^2 MSE_i ]

with R_i the bits of y and z per pixel of image i and MSE_i its mean squared error on data in
[0, 1] (CompressAI's convention, so that published lambdas mean what they mean there). The
record's "rate" is the batch's mean R in bits per pixel, "recon" its mean MSE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..parts import PartSettings
from .quantized import LIKELIHOOD_BOUND, FactorizedPrior

SCALE_MIN = 0.11  # the least scale sigma (CompressAI's bound)
START_STEPS, START_LR, START_BATCH = 300, 1e-2, 32  # start_from: z's prior fitted to z
SCALE_TABLE = np.exp(np.linspace(np.log(SCALE_MIN), np.log(256.0), 64))  # coding's scales


def scale_index(sigma: torch.Tensor) -> torch.Tensor:
    """The index of the table scale a coder uses for sigma: the least table scale >= sigma
    (a larger scale costs a little rate, never a symbol outside the table's support)."""
    table = torch.as_tensor(SCALE_TABLE, dtype=torch.float64, device=sigma.device)
    return torch.searchsorted(table, sigma.double().contiguous()).clamp_max(len(SCALE_TABLE) - 1)


def gaussian_likelihood(k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(k) of the zero-mean Gaussian of scale sigma integrated over [k - 1/2, k + 1/2],
    computed on the far side (|k|) so that the tails keep their precision."""
    v = k.abs()
    upper = torch.special.ndtr((0.5 - v) / sigma)
    lower = torch.special.ndtr((-0.5 - v) / sigma)
    p = upper - lower
    return p + (LIKELIHOOD_BOUND - p).clamp_min(0).detach()


def _conv(a: int, b: int, kernel: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(a, b, kernel, stride, kernel // 2)


def _deconv(a: int, b: int, kernel: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(a, b, kernel, 2, kernel // 2, output_padding=1)


@dataclass(frozen=True)
class HyperpriorSettings(PartSettings):
    """No settings of its own: the rates it is trained for are the codec's ``lambdas``, and
    its side information's width the codec's ``hyper_channels`` (:class:`CodecConfig`)."""


class HyperpriorLatent(nn.Module):
    """Gains, hyper analysis h_a, hyper synthesis h_s and the side information's prior."""

    Settings = HyperpriorSettings

    spatial = True  # the code is a grid (N, M, h, w), its size the image's

    def __init__(self, config, width: int) -> None:
        super().__init__()
        self.config = config
        m, z = config.latent_dim, config.hyper_channels
        lambdas = np.asarray(config.lambdas, dtype=np.float64)
        self.register_buffer("lambdas", torch.as_tensor(lambdas, dtype=torch.float32))
        # gains start near sqrt(lambda): the quantiser's step shrinks as lambda grows
        start = 0.5 * np.log(lambdas / np.exp(np.log(lambdas).mean()))
        start = torch.as_tensor(start, dtype=torch.float32)[:, None].repeat(1, m)
        self.log_gain_enc = nn.Parameter(start.clone())
        self.log_gain_dec = nn.Parameter(-start.clone())
        self.h_a = nn.Sequential(
            _conv(m, z, 3, 1), nn.LeakyReLU(), _conv(z, z, 5, 2), nn.LeakyReLU(), _conv(z, z, 5, 2)
        )
        self.h_s = nn.Sequential(
            _deconv(z, z), nn.LeakyReLU(), _deconv(z, z * 3 // 2), nn.LeakyReLU(),
            _conv(z * 3 // 2, 2 * m, 3, 1),
        )  # fmt: skip
        self.prior = FactorizedPrior(z)

    @staticmethod
    def check_config(config) -> None:
        if not hasattr(config, "lambdas") or not hasattr(config, "hyper_channels"):
            raise ConfigError(
                "the hyperprior latent needs a spatial codec's transforms: use the codec preset "
                "(model codec)"
            )
        if config.penalties:
            raise ConfigError("a hyperprior latent is priced by its rate: use no code penalty")

    @property
    def gain_prior(self) -> bool:
        """Whether the side information's mean and scale are at unit gain and follow the knob
        (the codec's ``gain_prior``); else h_s predicts those of y' = a_q y directly."""
        return bool(getattr(self.config, "gain_prior", False))

    @property
    def levels(self) -> int:
        """K, the number of trained rates: the knob q runs over [0, K - 1]."""
        return len(self.lambdas)

    def gains(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_q, b_q) (N, M, 1, 1) for knobs q (N,): log-linear between the trained gains."""
        q = q.to(self.log_gain_enc.dtype).clamp(0, self.levels - 1)
        lo = q.floor().long().clamp_max(max(self.levels - 2, 0))
        t = (q - lo)[:, None]
        hi = (lo + 1).clamp_max(self.levels - 1)

        def mix(table):
            return ((1 - t) * table[lo] + t * table[hi]).exp()[:, :, None, None]

        return mix(self.log_gain_enc), mix(self.log_gain_dec)

    def lambda_of(self, q: torch.Tensor) -> torch.Tensor:
        """lambda at knob q (log-linear between the trained lambdas)."""
        q = q.to(self.lambdas.dtype).clamp(0, self.levels - 1)
        log = self.lambdas.log()
        lo = q.floor().long().clamp_max(max(self.levels - 2, 0))
        hi = (lo + 1).clamp_max(self.levels - 1)
        t = q - lo
        return ((1 - t) * log[lo] + t * log[hi]).exp()

    @torch.no_grad()
    def start_from(self, model, x: torch.Tensor, steps: int = START_STEPS, seed: int = 0,
                   statistics: bool = True) -> dict:  # fmt: skip
        """A data start (before training; decoding and old files are unaffected): the entropy
        model begins at the code's statistics instead of random ones.

        On rows x (N, D) of training images, y = g_a(x) is computed once. With ``statistics``,
        h_s's mean bias is set to each channel's mean and its scale bias to the
        softplus-inverse of the channel's spread (its RMS about the mean), both at unit gain
        (a ``gain_prior`` codec's knob carries them to every rate). Then z's factorized prior
        takes ``steps`` Adam steps (learning rate START_LR) on z's bits alone, z = h_a(a_q y)
        at random knobs with uniform noise for rounding, so that the side information starts
        priced at its own spread (the prior starts about +-10 wide: some 4 bits a value).
        Without ``gain_prior`` this start hurts (h_s then learns the knob from z, which the
        fitted prior makes cheap and uninformative; benchmarks/README.md, codec.py), so
        :func:`aekit.apps.train` applies it to gain-prior codecs only. Returns the statistics
        and z's rate at the last step (bits per pixel)."""
        y = model.features(x)
        mean = y.mean((0, 2, 3))
        spread = (y - mean[None, :, None, None]).pow(2).mean((0, 2, 3)).sqrt()
        m = self.config.latent_dim
        if statistics:
            last = self.h_s[-1]
            excess = (spread - SCALE_MIN).clamp_min(1e-3)
            last.bias[:m] = mean
            last.bias[m:] = excess + torch.log(-torch.expm1(-excess))  # softplus^-1
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(self.prior.parameters(), lr=START_LR)
        rate = float("nan")
        with torch.enable_grad():
            for _ in range(steps):
                pick = torch.randint(len(y), (min(START_BATCH, len(y)),), generator=generator)
                q = torch.rand(len(pick), generator=generator) * (self.levels - 1)
                a, _ = self.gains(q.to(y.device))
                z = self.hyper_analysis(y[pick] * a).detach()
                z = z + torch.rand(z.shape, generator=generator).to(z.device) - 0.5
                loss = -torch.log2(self.z_likelihood(z)).sum() / (len(pick) * model.pixels_of(x))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                rate = float(loss.detach())
        return {"mean": mean, "spread": spread, "rate": rate}

    # ---- the side information ----------------------------------------------------------

    def hyper_analysis(self, y_gained: torch.Tensor) -> torch.Tensor:
        """z = h_a(y') with y' padded (replicated) to a multiple of 4 on each side."""
        h, w = y_gained.shape[-2:]
        pad = (0, -w % 4, 0, -h % 4)
        return self.h_a(F.pad(y_gained, pad, mode="replicate") if any(pad) else y_gained)

    def mean_scale(self, z_hat: torch.Tensor, size: tuple[int, int], q: torch.Tensor | None = None):
        """(mu, sigma) (N, M, h, w) from z_hat, cropped to the code's grid ``size``. With the
        codec's ``gain_prior``, h_s predicts them at unit gain and they follow the knob q (N,):
        mu = a_q mu_1, sigma = SCALE_MIN + a_q softplus(s), so that one start (and what the
        side information learns at one rate) holds at every rate."""
        out = self.h_s(z_hat)[..., : size[0], : size[1]]
        mu, s = out.chunk(2, dim=1)
        if not self.gain_prior:
            return mu, SCALE_MIN + F.softplus(s)
        if q is None:
            raise ConfigError("a gain_prior codec's mean and scale need the knob q")
        a, _ = self.gains(q.to(mu.device))
        return a * mu, SCALE_MIN + a * F.softplus(s)

    def quantise_z(self, z: torch.Tensor) -> torch.Tensor:
        """z_hat = m + clip(round(z - m)) per channel (the prior's table range)."""
        n, c, h, w = z.shape
        rows = z.permute(0, 2, 3, 1).reshape(-1, c)
        # contiguous: a convolution may compute a strided input another way (other bits)
        return self.prior.quantise(rows).reshape(n, h, w, c).permute(0, 3, 1, 2).contiguous()

    def z_likelihood(self, z_hat: torch.Tensor) -> torch.Tensor:
        n, c, h, w = z_hat.shape
        rows = z_hat.permute(0, 2, 3, 1).reshape(-1, c)
        return self.prior.likelihood(rows).reshape(n, h * w * c)

    # ---- coding: what the bitstream writes and reads ----------------------------------

    @torch.no_grad()
    def side(self, y: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y' = a_q y, z_hat): what the coder needs before the side information's mean and
        scale."""
        a, _ = self.gains(q)
        y_gained = y * a
        z = self.hyper_analysis(y_gained)
        return y_gained, self.quantise_z(z)

    @torch.no_grad()
    def analyse(self, y: torch.Tensor, q: torch.Tensor) -> dict:
        """The integers of an image batch's code at knobs q: z_hat, the symbols k (N, M, h,
        w) of y', and the scale indices the coder uses; y from the analysis transform."""
        a, _ = self.gains(q)
        y_gained = y * a
        z_hat = self.quantise_z(self.hyper_analysis(y_gained))
        mu, sigma = self.mean_scale(z_hat, y.shape[-2:], q)
        k = torch.round(y_gained - mu)
        return {"z_hat": z_hat, "k": k, "mu": mu, "sigma": sigma}

    @torch.no_grad()
    def synthesis_input(self, k: torch.Tensor, mu: torch.Tensor, q: torch.Tensor):
        """y_hat = b_q (mu + k): what the synthesis transform reads."""
        _, b = self.gains(q)
        return (mu + k) * b

    # ---- the latent kind's interface ---------------------------------------------------

    def forward(self, model, y: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """The record for features y (N, M, h, w) of clean images x (N, D)."""
        n = len(y)
        if self.training:
            # every rate in every batch of at least K images, from a random first one
            start = torch.randint(self.levels, (1,), device=y.device)
            index = (torch.arange(n, device=y.device) + start) % self.levels
        else:  # a fixed spread of rates: validation losses repeat
            index = torch.arange(n, device=y.device) % self.levels
        q = index.to(y.dtype)
        a, b = self.gains(q)
        y_gained = y * a
        z = self.hyper_analysis(y_gained)
        if self.training:
            noise = torch.rand(z.shape, generator=generator, dtype=z.dtype, device=z.device)
            z_hat = z + (noise - 0.5)
        else:
            z_hat = self.quantise_z(z)
        mu, sigma = self.mean_scale(z_hat, y.shape[-2:], q)
        residual = y_gained - mu
        rounded = residual + (torch.round(residual) - residual).detach()  # straight through
        if self.training:
            noise = torch.rand(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            priced = residual + (noise - 0.5)
        else:
            priced = torch.round(residual)
        bits_y = -torch.log2(gaussian_likelihood(priced, sigma)).flatten(1).sum(1)
        bits_z = -torch.log2(self.z_likelihood(z_hat)).sum(1)
        pixels = model.pixels_of(x)
        rate = (bits_y + bits_z) / pixels  # (N,) bits per pixel
        x_hat = model.decode_logits((mu + rounded) * b)
        mse = ((x_hat - x) ** 2).mean(1)  # (N,)
        lam = self.lambdas[index].to(mse.dtype)
        loss = (rate + lam * (255.0**2) * mse).mean()
        return {
            "loss": loss,
            "recon": mse.mean(),
            "rate": rate.mean(),
            "code": (mu + rounded).flatten(1),
            "x_hat": x_hat,
        }
