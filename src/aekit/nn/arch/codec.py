"""A fully convolutional image codec: learned transforms around a spatial quantised latent.

Two transforms (``transform``): "dct", the preset's, a block transform that starts at the DCT
and a post-filter that starts at zero (:mod:`aekit.nn.arch.block_transform`: near JPEG's
quality after hundreds of steps, which CPU minutes give), and "gdn", as below (the transform
of Balle et al.'s models, which needs a GPU's millions of steps to pay off).

GDN analysis g_a: ``stages`` Conv2d(kernel 5, stride 2) layers, GDN after every one but the last
(Balle et al. 2016's generalized divisive normalization), ``channels`` maps inside and
``latent_dim`` = M maps in the code; synthesis g_s: the mirror, ConvTranspose2d(kernel 5,
stride 2) with inverse GDN. The code is a grid (N, M, H / 2^s, W / 2^s), so its size and its
rate grow with the image; its entropy model is the ``hyperprior`` latent
(:mod:`aekit.nn.latent.hyperprior`: mean-scale Gaussian, side information, gain units for
every rate of ``lambdas``).

Any H x W: an image is padded (edge pixels replicated) to a multiple of 2^s before g_a, and
g_s's output is cropped back; rate per pixel counts the image's own pixels. Grey (C = 1) and
colour (C = 3) are the same code path. Training rows (N, C*H*W) fold by ``image_shape`` like
every aekit model; :meth:`ConvCodec.reconstruct_images` and :mod:`aekit.apps.codec` take
images of any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..base import Autoencoder
from ..config import ModelConfig
from .block_transform import BlockAnalysis, BlockSynthesis

# CompressAI's lambdas for MSE (bmshj2018 qualities 1-8): about 0.1 to 1.8 bpp on Kodak
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


@dataclass
class CodecConfig(ModelConfig):
    """Settings of the spatial codec (and the fields of :class:`ModelConfig`: ``latent_dim``
    is M, the code's channels; ``latent`` is "hyperprior"). ``channels`` maps inside the
    transforms, ``stages`` stride-2 layers (the code's grid is 2^stages smaller than the
    image), ``hyper_channels`` the side information's channels, ``lambdas`` the rates one
    model is trained for (its knob q runs over 0 .. len(lambdas) - 1). ``transform`` "gdn"
    or "dct"; a "dct" codec's code has C * 4^stages channels (``latent_dim`` None: that many),
    ``post_channels`` its post-filter's maps (0: none), and ``channels`` is not used.
    ``gain_prior``: the hyperprior's mean and scale are predicted at unit gain and follow the
    knob's gain (:meth:`HyperpriorLatent.mean_scale`; opt-in: not the preset's default, see
    benchmarks/README.md, section codec.py)."""

    channels: int = 64
    stages: int = 3
    hyper_channels: int = 64
    lambdas: tuple[float, ...] = LAMBDAS
    transform: str = "gdn"  # the default of files written before "dct" existed
    post_channels: int = 0
    gain_prior: bool = False  # the default of files written before it existed

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ConfigError(
                f"unknown codec transform {self.transform!r}; choose one of {', '.join(TRANSFORMS)}"
            )
        if self.transform == "dct" and self.image_shape is not None:
            coefficients = int(self.image_shape[0]) * 4 ** int(self.stages)
            if self.latent_dim is None:
                self.latent_dim = coefficients
            elif int(self.latent_dim) != coefficients:
                raise ConfigError(
                    f"a dct codec's code has C * 4^stages = {coefficients} channels (one per "
                    f"coefficient of a block), not latent_dim {self.latent_dim}: drop it"
                )
        elif self.latent_dim is None:
            self.latent_dim = 96
        super().__post_init__()
        self.post_channels = int(self.post_channels)
        if not isinstance(self.gain_prior, bool):
            raise ConfigError("codec gain_prior is true or false")
        if self.post_channels < 0:
            raise ConfigError("codec post_channels must be 0 (no post-filter) or more")
        if isinstance(self.channels, (tuple, list)):  # the CLI's --channels N
            if len(self.channels) != 1:
                raise ConfigError("codec takes one --channels number (the transforms' maps)")
            self.channels = self.channels[0]
        self.channels, self.stages = int(self.channels), int(self.stages)
        self.hyper_channels = int(self.hyper_channels)
        self.lambdas = tuple(float(v) for v in self.lambdas)
        if self.channels < 1 or self.hyper_channels < 2 or not 1 <= self.stages <= 6:
            raise ConfigError("codec needs channels >= 1, hyper_channels >= 2, 1 <= stages <= 6")
        if not self.lambdas or any(not (v > 0 and math.isfinite(v)) for v in self.lambdas):
            raise ConfigError("codec lambdas must be positive numbers, at least one")
        if list(self.lambdas) != sorted(self.lambdas) or len(set(self.lambdas)) < len(self.lambdas):
            raise ConfigError("codec lambdas must increase (low rate first)")
        if self.image_shape is None:
            raise ConfigError(
                "a convolutional model needs image data: give image_shape (C, H, W) "
                "(image data sets such as mnist carry it)"
            )
        if self.latent != "hyperprior" or self.loss != "mse":
            raise ConfigError("codec is a hyperprior latent trained on squared error: loss mse")
        if self.output_activation != "identity":
            raise ConfigError("codec's synthesis is linear at the end: output activation identity")
        if self.corruption is not None:
            raise ConfigError("codec takes no input corruption")

    def legacy_dict(self) -> dict:
        """The record the .aek model hash is taken on: a "gdn" codec's as before "dct" existed,
        so that its earlier files still decode."""
        out = super().legacy_dict()
        if not self.gain_prior:  # as before it existed
            del out["gain_prior"]
        if self.transform == "gdn":
            del out["transform"], out["post_channels"]
        return out


TRANSFORMS = ("dct", "gdn")


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (inverse: times the root); beta and
    gamma kept positive by a softplus of their parameters."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.full((channels,), math.log(math.expm1(1.0))))
        gamma = torch.full((channels, channels), math.log(math.expm1(1e-4)))
        gamma.fill_diagonal_(math.log(math.expm1(0.1)))
        self.gamma = nn.Parameter(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        gamma = F.softplus(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, F.softplus(self.beta) + 1e-6)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class ConvCodec(Autoencoder):
    """g_a (``encoder``), the hyperprior latent, g_s (``decoder``); no dense code."""

    config_class = CodecConfig
    has_code = False
    fully_convolutional = True

    def __init__(self, config: CodecConfig, name: str = "codec") -> None:
        super().__init__(config, name)
        c_in, n, m, s = config.image_shape[0], config.channels, config.latent_dim, config.stages
        self._size = tuple(config.image_shape[1:])
        if config.transform == "dct":
            self.encoder = nn.ModuleList([BlockAnalysis(c_in, 2**s)])
            self.decoder = nn.ModuleList([BlockSynthesis(c_in, 2**s, config.post_channels)])
            self._init_latent(m)
            return
        maps = (c_in, *[n] * (s - 1), m)
        self.encoder = nn.ModuleList()
        for k, (a, b) in enumerate(zip(maps[:-1], maps[1:], strict=True)):
            self.encoder.append(nn.Conv2d(a, b, 5, 2, 2))
            if k < s - 1:
                self.encoder.append(GDN(b))
        back = maps[::-1]
        self.decoder = nn.ModuleList()
        for k, (a, b) in enumerate(zip(back[:-1], back[1:], strict=True)):
            self.decoder.append(nn.ConvTranspose2d(a, b, 5, 2, 2, output_padding=1))
            if k < s - 1:
                self.decoder.append(GDN(b, inverse=True))
        self._init_latent(m)

    @property
    def factor(self) -> int:
        return 2**self.config.stages

    def pixels_of(self, x: torch.Tensor) -> int:
        """The pixels (H * W) of one image of the batch being priced."""
        return self._size[0] * self._size[1]

    def analysis(self, images: torch.Tensor) -> torch.Tensor:
        """y = g_a(x) for images (N, C, H, W) of any size (padded to a multiple of 2^s)."""
        h, w = images.shape[-2:]
        pad = (0, -w % self.factor, 0, -h % self.factor)
        t = F.pad(images, pad, mode="replicate") if any(pad) else images
        for layer in self.encoder:
            t = layer(t)
        return t

    def synthesis(self, y_hat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """x_hat = g_s(y_hat) cropped to the image's (H, W)."""
        t = y_hat
        for layer in self.decoder:
            t = layer(t)
        return t[..., : size[0], : size[1]]

    # the Autoencoder interface, on rows of the training shape
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x.reshape(-1, *self.config.image_shape))

    def decode_logits(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y_hat, self._size).flatten(1)

    def reconstruct_images(self, images: torch.Tensor, q: float | None = None) -> torch.Tensor:
        """What the codec decodes for images (N, C, H, W) at knob q (default: the highest
        rate), without the entropy coder."""
        latent = self.latent
        knob = torch.full((len(images),), latent.levels - 1 if q is None else float(q))
        with torch.no_grad():
            coded = latent.analyse(self.analysis(images), knob.to(images.device))
            y_hat = latent.synthesis_input(coded["k"], coded["mu"], knob.to(images.device))
            return self.synthesis(y_hat, images.shape[-2:])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, C*H*W)
        return self.reconstruct_images(x.reshape(-1, *self.config.image_shape)).flatten(1)

    def _no_code(self, *args, **kwargs):
        raise ConfigError(
            f"model {self.name!r} is a spatial codec and has no code vector (its code is a "
            "grid as large as the image); use it to compress and decompress (aekit compress), "
            "not to encode, decode or sample"
        )

    encode = decode = posterior = _no_code
