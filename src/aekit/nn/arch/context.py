"""A learned context model for lossless and near-lossless image coding (``--model lossless``).

Each image (C, H, W) of integers 0 .. L - 1 (L = 2^bits) is coded over ``scales``: x^0 = x,
and x^(l+1) = x^l[:, ::s, ::s], its subsampling by ``block`` s, coarsest first. At each
scale the image is padded to a multiple of s and split into P = s * s * C planes: plane
(dy, dx, c) holds the pixels x^l[c, s i + dy, s j + dx], a grid (H_l / s, W_l / s)
(pixel_unshuffle). The planes of phase (0, 0) ARE the coarser scale x^(l+1), already
decoded (only at the coarsest scale are they coded, from nothing); the others are coded one
after the other in a coarse-to-fine order (:func:`plane_order`: the centres of ever smaller
squares, then their edges; colour channels in turn within a phase), so every plane sees
decoded pixels on every side. One network pass over the whole batch gives the distribution
of every pixel of the next plane; there is no pixel loop, and decoding takes about
(P - C) * scales passes, each at a fraction of the image's size.

One network serves every scale. It sees the planes decoded so far (values scaled to
[-1, 1], the others 0), which planes are known, which pixels are inside the image (not
padding), the step q (one constant map, log2 q / bits) and the scale (l / (scales - 1));
3x3 convolutions of ``width`` maps, ``depth`` of them with residual connections, then a 1x1
head giving, for every plane, a mixture of ``mixtures``
discretised logistics (PixelCNN++'s parametrisation: weights, means, log scales). At step q
the symbols are k = floor((x + floor(q / 2)) / q) in 0 .. G, decoded as x_tilde =
min(q k, L - 1), so every pixel lies within q/2 of x; symbol k's probability is the
mixture's mass over the integers that round to k (:func:`step_bins`), and the context the
network sees is x_tilde. At q = 1 the coding is lossless.

Trained by the one loop (``aekit train --model lossless``): each batch draws a scale (as
often as it holds pixels, s^-2l), each sample a plane of it and a step (``steps``, half the
draws q = 1), and the loss is the plane's bits per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import Autoencoder
from ..config import ModelConfig

LOG_SCALE_MIN = -7.0
DETAIL_GAIN = 32.0  # the details the network sees: 4 levels of 255 -> 1
START_LOG_SCALE = -3.0  # an anchored model's middle first log scale (units of [-1, 1]: ~6 levels)


@dataclass
class ContextConfig(ModelConfig):
    """Settings of the context model (and the fields of :class:`ModelConfig`, of which the
    code's do not apply): ``block`` s (s * s phases), ``width`` maps, ``depth`` 3x3 layers,
    ``mixtures`` logistics per pixel, ``bits`` per value, ``steps`` trained on; ``anchor``:
    the mixture's means are offsets from the mean of each pixel's decoded neighbours
    (:meth:`ContextModel.anchor`; False: the models before it, whose means are absolute);
    ``free``: of an anchored model's components, how many keep an absolute mean (the last
    ones; 0: the models of session 16, every mean anchored)."""

    block: int = 2
    scales: int = 4
    width: int = 64
    depth: int = 6
    mixtures: int = 5
    bits: int = 8
    steps: tuple[int, ...] = (1,)
    channels: int | tuple[int, ...] | None = None  # the CLI's --channels N: the width
    anchor: bool = False
    free: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels is not None:
            maps = np.atleast_1d(self.channels)
            if len(maps) != 1:
                raise ConfigError("lossless takes one --channels number (its width)")
            self.width, self.channels = int(maps[0]), None
        self.block, self.width, self.depth = int(self.block), int(self.width), int(self.depth)
        self.scales = int(self.scales)
        self.mixtures, self.bits = int(self.mixtures), int(self.bits)
        self.steps = tuple(int(v) for v in np.atleast_1d(self.steps))
        if self.block not in (2, 4, 8) or self.width < 1 or self.depth < 2:
            raise ConfigError("lossless needs block 2, 4 or 8, width >= 1 and depth >= 2")
        if not 1 <= self.scales <= 12:
            raise ConfigError("lossless needs 1 to 12 scales")
        if not 1 <= self.mixtures <= 32 or not 1 <= self.bits <= 16:
            raise ConfigError("lossless needs 1 to 32 mixtures and 1 to 16 bits per value")
        if not self.steps or any(not 1 <= q < 2**self.bits for q in self.steps):
            raise ConfigError(f"lossless steps must be integers 1 .. {2**self.bits - 1}")
        if self.image_shape is None:
            raise ConfigError(
                "a convolutional model needs image data: give image_shape (C, H, W) "
                "(image data sets such as mnist carry it)"
            )
        if self.latent != "deterministic" or self.penalties or self.corruption is not None:
            raise ConfigError("lossless has no code: no latent kind, penalties or corruption")
        self.anchor = bool(self.anchor)
        self.free = int(self.free) if self.anchor else 0  # unanchored: every mean is absolute
        if not 0 <= self.free < self.mixtures:
            raise ConfigError("an anchored lossless model keeps 0 .. mixtures - 1 free means")

    def legacy_dict(self) -> dict:
        """The record the .aek model hash is taken on: without ``anchor`` (``free``) for a model
        without one, as before it existed, so that earlier files still decode."""
        out = super().legacy_dict()
        if not self.anchor:
            del out["anchor"]
        if not self.free:
            del out["free"]
        return out


def plane_order(block: int, channels: int) -> list[tuple[int, int, int]]:
    """(dy, dx, c) of every plane in coding order: coarse to fine, channels within a phase."""
    phases, done, h = [(0, 0)], {(0, 0)}, block
    while h > 1:
        h //= 2
        grid = range(0, block, 2 * h)
        centres = [(a + h, b + h) for a in grid for b in grid]
        edges = [(a, b + h) for a in grid for b in grid] + [(a + h, b) for a in grid for b in grid]
        for p in centres + edges:
            if p not in done:
                phases.append(p)
                done.add(p)
    return [(dy, dx, c) for dy, dx in phases for c in range(channels)]


def step_symbols(x, step: int):
    """The symbols k = floor((x + floor(q / 2)) / q) of integers x at step q: the cell of k
    holds the q integers nearest to q k (the lower ones on a tie: q k - q/2 .. q k + q/2 - 1
    for an even q), so that |x - q k| <= q/2."""
    return (x + step // 2) // step


def step_bins(step: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) integer of each symbol k at step q (:func:`step_symbols`), k = 0 .. G."""
    k = step_symbols(np.arange(levels), step)
    first = np.searchsorted(k, np.arange(k[-1] + 1), side="left")
    last = np.searchsorted(k, np.arange(k[-1] + 1), side="right") - 1
    return first, last


class ContextModel(Autoencoder):
    """The planes' distributions, one network pass per plane (``layers``, ``head``)."""

    config_class = ContextConfig
    has_code = False
    fully_convolutional = True

    def __init__(self, config: ContextConfig, name: str = "lossless") -> None:
        super().__init__(config, name)
        c, s = config.image_shape[0], config.block
        self.order = plane_order(s, c)
        p = len(self.order)
        # plane (dy, dx, c) is channel c * s * s + dy * s + dx of pixel_unshuffle's output
        index = [cc * s * s + dy * s + dx for dy, dx, cc in self.order]
        self.register_buffer("index", torch.tensor(index), persistent=False)
        self.inp = nn.Conv2d((4 if config.anchor else 3) * p + 2, config.width, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Conv2d(config.width, config.width, 3, padding=1) for _ in range(config.depth - 1)
        )
        self.head = nn.Conv2d(config.width, 3 * config.mixtures * p, 1)
        if config.anchor:  # every mean near the anchor, the scales a spread around e^-3
            k = config.mixtures
            with torch.no_grad():
                self.head.weight.mul_(0.01)  # near zero; every gradient alive
                bias = self.head.bias.view(p, 3 * k)
                bias.zero_()
                bias[:, 2 * k :] = START_LOG_SCALE + torch.linspace(-1.5, 1.5, k) * (k > 1)
        self.penalties = nn.ModuleList()

    @property
    def levels(self) -> int:
        return 2**self.config.bits

    @property
    def planes(self) -> int:
        return len(self.order)

    def first_plane(self, scale: int) -> int:
        """The first plane coded at ``scale``: below the coarsest, the phase (0, 0) planes
        are the coarser scale's image, known."""
        return 0 if scale == self.config.scales - 1 else self.config.image_shape[0]

    def subsample(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        """The image at ``scale``: every block^scale-th pixel (N, C, H_l, W_l)."""
        f = self.config.block**scale
        return x[..., ::f, ::f]

    # ---- layout ----------------------------------------------------------------------------

    def fold(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) -> planes (N, P, h, w) in coding order, and the inside mask (1, P, h, w)."""
        s = self.config.block
        n, c, hh, ww = x.shape
        ph, pw = -hh % s, -ww % s
        inside = F.pad(torch.ones(1, c, hh, ww, dtype=x.dtype, device=x.device), (0, pw, 0, ph))
        x = F.pad(x, (0, pw, 0, ph))
        return F.pixel_unshuffle(x, s)[:, self.index], F.pixel_unshuffle(inside, s)[:, self.index]

    def unfold(self, planes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The inverse of :meth:`fold`: (N, P, h, w) -> (N, C, H, W)."""
        out = torch.empty_like(planes)
        out[:, self.index] = planes
        return F.pixel_shuffle(out, self.config.block)[..., : size[0], : size[1]]

    # ---- the network -----------------------------------------------------------------------

    def params(self, values, known, inside, step: torch.Tensor, plane: torch.Tensor, scale=0):
        """Mixture parameters (N, 3 K, h, w) of ``plane`` (N,) given the known planes'
        values (N, P, h, w) in 0 .. L - 1 (ignored where ``known`` is 0), steps (N,) and
        the scale (0: the image itself, 1: its subsampling by ``block``, ...)."""
        scaled = (values * (2.0 / (self.levels - 1)) - 1.0) * known
        q = (torch.log2(step.to(values.dtype)) / self.config.bits)[:, None, None, None]
        one = known[:, :1]
        level = torch.full_like(one, scale / max(self.config.scales - 1, 1))
        maps = [scaled, known, inside.expand_as(known), q.expand_as(one), level]
        if self.config.anchor:  # and each decoded pixel's detail: its value less its anchor
            centres = self.anchor(scaled, known * inside)
            maps.insert(1, (scaled - centres) * known * DETAIL_GAIN)
        h = F.relu(self.inp(torch.cat(maps, 1)))
        for conv in self.layers:
            h = h + F.relu(conv(h))
        out = self.head(h).unflatten(1, (self.planes, 3 * self.config.mixtures))
        out = out[torch.arange(len(plane), device=out.device), plane]
        if not self.config.anchor:
            return out
        k = self.config.mixtures  # the means: the anchor plus a bounded offset
        a = k - self.config.free  # anchored; the last `free` absolute, as unanchored
        centre = centres[torch.arange(len(plane)), plane]
        mu = centre[:, None] + 0.5 * torch.tanh(out[:, k : k + a])
        free = 1.1 * torch.tanh(out[:, k + a : 2 * k])
        return torch.cat([out[:, :k], mu, free, out[:, 2 * k :]], 1)

    def anchor(self, scaled: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Each pixel's centre (N, P, h, w) in [-1, 1]: the mean of its eight neighbours in the
        image (the planes unfolded) that are decoded and inside it, 0 where none is."""
        c = self.config.image_shape[0]
        size = (scaled.shape[2] * self.config.block, scaled.shape[3] * self.config.block)
        img, w = self.unfold(scaled * weight, size), self.unfold(weight, size)
        ring = torch.ones(c, 1, 3, 3, dtype=img.dtype, device=img.device)
        ring[:, :, 1, 1] = 0.0
        num = F.conv2d(img, ring, padding=1, groups=c)
        den = F.conv2d(w, ring, padding=1, groups=c)
        mean = torch.where(den > 0, num / den.clamp_min(1e-6), torch.zeros_like(num))
        s = self.config.block
        return F.pixel_unshuffle(mean, s)[:, self.index]

    def _split(self, params):
        k = self.config.mixtures
        logit, mu, log_s = params[:, :k], params[:, k : 2 * k], params[:, 2 * k :]
        mu = mu if self.config.anchor else torch.tanh(mu) * 1.1  # anchored: params() did it
        return logit, mu, log_s.clamp_min(LOG_SCALE_MIN)

    def log2_mass(self, params, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """log2 of the mixture's mass over the integers first .. last (per pixel, (N, h, w))."""
        logit, mu, log_s = self._split(params)
        top, half = self.levels - 1, 1.0 / (self.levels - 1)
        lo = (first.unsqueeze(1) * (2.0 / top) - 1.0 - half - mu) * torch.exp(-log_s)
        up = (last.unsqueeze(1) * (2.0 / top) - 1.0 + half - mu) * torch.exp(-log_s)
        at_top, at_bottom = last.unsqueeze(1) >= top, first.unsqueeze(1) <= 0
        zero, never = torch.zeros_like(up), torch.full_like(up, -1e30)
        # mass = sigmoid(up) - sigmoid(lo) = sigmoid(-lo) - sigmoid(-up): take the form whose
        # larger term is the smaller tail (the mirror above the mean), so that a bin many
        # scales above the mean keeps its mass and its gradient in float32
        mirror = (up + lo) > 0
        log_a = torch.where(mirror, torch.where(at_bottom, zero, F.logsigmoid(-lo)),
                            torch.where(at_top, zero, F.logsigmoid(up)))  # fmt: skip
        log_b = torch.where(mirror, torch.where(at_top, never, F.logsigmoid(-up)),
                            torch.where(at_bottom, never, F.logsigmoid(lo)))  # fmt: skip
        gap = (log_b - log_a).clamp_max(-1e-12)
        log_bin = log_a + torch.log(-torch.expm1(gap))
        return torch.logsumexp(log_bin + F.log_softmax(logit, 1), 1) / math.log(2.0)

    def probabilities(self, params, step: int) -> torch.Tensor:
        """(M, G + 1) float64 probabilities of the symbols at ``step`` for params (M, 3 K):
        differences of the mixture's CDF at the symbols' edges."""
        logit, mu, log_s = (t.double() for t in self._split(params))
        first, _ = step_bins(step, self.levels)
        top = self.levels - 1
        edges = torch.as_tensor((first[1:] - 0.5) * (2.0 / top) - 1.0, dtype=torch.float64)
        w = torch.softmax(logit, 1)  # (M, K)
        z = edges[None, None, :] - mu[..., None]  # (M, K, G), in place from here: memory-bound
        z.mul_(torch.exp(-log_s)[..., None]).sigmoid_()
        cdf = torch.bmm(w[:, None, :], z)[:, 0]  # (M, 1, K) @ (M, K, G) -> (M, G)
        zeros, ones = torch.zeros_like(cdf[:, :1]), torch.ones_like(cdf[:, :1])
        return torch.diff(torch.cat([zeros, cdf, ones], 1), dim=1).clamp_min(0.0)

    # ---- training --------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The record for a batch x (N, C*H*W) scaled to [0, 1]: bits per pixel of a random
        plane at a random step per sample."""
        from ..base import eval_generator

        gen = None if self.training else eval_generator("cpu")
        n, top, s2 = len(x), self.levels - 1, self.config.block**2
        images = torch.round(x.reshape(n, *self.config.image_shape).clamp(0, 1) * top)
        # one scale per batch, as often as it holds pixels (s^-2l), so the bits add up
        weights = torch.tensor([float(s2) ** -v for v in range(self.config.scales)])
        scale = int(torch.multinomial(weights, 1, generator=gen)[0])
        planes, inside = self.fold(self.subsample(images, scale))
        start = self.first_plane(scale)
        rank = torch.randint(start, self.planes, (n,), generator=gen).to(x.device)
        steps = torch.tensor(self.config.steps, device=x.device)
        pick = torch.randint(0, 2 * len(steps), (n,), generator=gen).to(x.device)
        step = torch.where(pick < len(steps), torch.ones_like(pick), steps[pick % len(steps)])
        sq = step[:, None, None, None].to(x.dtype)
        k = torch.div(planes + torch.div(sq, 2, rounding_mode="floor"), sq, rounding_mode="floor")
        tilde = (k * sq).clamp_max(top)
        known = (torch.arange(self.planes, device=x.device)[None] < rank[:, None]).to(x.dtype)
        known = known[:, :, None, None].expand_as(planes)
        params = self.params(tilde, known, inside, step, rank, scale)
        k_here = k[torch.arange(n), rank]
        first, last = self._bin_ends(k_here, step)
        bits = -self.log2_mass(params, first, last)
        w = inside[0, rank]
        loss = (bits * w).sum() / w.sum().clamp_min(1.0)
        return {"loss": loss, "recon": loss, "x_hat": x, "code": x[:, :0]}

    def _bin_ends(self, k: torch.Tensor, step: torch.Tensor):
        """The first and last integers of symbols k (N, h, w) at steps (N,): :func:`step_bins`
        (looked up, as the coder does)."""
        first, last = torch.zeros_like(k), torch.zeros_like(k)
        for v in torch.unique(step).tolist():
            f, lst = (torch.as_tensor(t, dtype=k.dtype, device=k.device)
                      for t in step_bins(int(v), self.levels))  # fmt: skip
            sel = (step == v)[:, None, None]
            kk = k.long().clamp_max(len(f) - 1)
            first, last = torch.where(sel, f[kk], first), torch.where(sel, lst[kk], last)
        return first, last

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _no_code(self, *args, **kwargs):
        raise ConfigError(
            f"model {self.name!r} is a context model with no code: use it to compress "
            "losslessly or to a step (aekit compress --step), not to encode, decode or sample"
        )

    encode = decode = posterior = _no_code
