"""Convolutional autoencoders (seeds 001 and 003): stride-2 convolutions down, transposed up.

Encoder: Conv2d(kernel 4, stride 2, padding 1) + ReLU per entry of ``channels`` (each halves
H and W), flatten, optional dense ``hidden`` layers, then the code layer. Decoder: the mirror,
dense layers up to the feature map, ConvTranspose2d(kernel 4, stride 2, padding 1) + ReLU
(each doubles H and W), the last one to C channels, then the output activation (sigmoid for
images in [0, 1]). Inputs and outputs are flat rows (N, C*H*W) like every aekit model;
``image_shape`` (C, H, W) says how to fold them. Any C works, and any H, W that
2 ** len(channels) divides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ..activations import ACTIVATIONS, activation_module
from ..base import Autoencoder
from ..config import ModelConfig, check_choice, sizes

KERNEL, STRIDE, PADDING = 4, 2, 1  # out = in / 2 exactly for even in, and back with the transpose


@dataclass
class ConvConfig(ModelConfig):
    """Settings of a convolutional autoencoder (and every field of :class:`ModelConfig`).

    ``channels`` are the feature maps of the stride-2 convolutions (input side first),
    ``hidden`` optional dense widths between the last feature map and the code, ``activation``
    the nonlinearity after every layer but the code and the output.
    """

    channels: tuple[int, ...] = (32, 64)
    hidden: tuple[int, ...] = ()
    activation: str = "relu"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channels = sizes(self.channels, "channels")
        self.hidden = sizes(self.hidden, "hidden")
        check_choice("activation", self.activation, ACTIVATIONS)
        if not self.channels:
            raise ConfigError("a convolutional model needs at least one entry in channels")
        if self.image_shape is None:
            raise ConfigError(
                "a convolutional model needs image data: give image_shape (C, H, W) "
                "(image data sets such as mnist carry it)"
            )
        _, h, w = self.image_shape
        factor = 2 ** len(self.channels)
        if h % factor or w % factor:
            raise ConfigError(
                f"images of {h}x{w} cannot be halved {len(self.channels)} times: use H and W "
                f"divisible by {factor} (image files: --resize "
                f"{max(factor, h // factor * factor)}x{max(factor, w // factor * factor)}), "
                "or fewer channels entries"
            )

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(C_last, H / 2^n, W / 2^n): the last feature map."""
        _, h, w = self.image_shape  # type: ignore[misc]
        factor = 2 ** len(self.channels)
        return self.channels[-1], h // factor, w // factor


class ConvAutoencoder(Autoencoder):
    """Stride-2 Conv2d + ReLU down, ConvTranspose2d up, on flat (N, C*H*W) rows.

    State-dict layout: ``encoder.{k}`` are the convolutions, then the dense layers, with the
    code layer (Linear) last; ``decoder.{k}`` the dense layers, then the transposed
    convolutions; a Gaussian latent adds ``logvar.weight/bias``.
    """

    config_class = ConvConfig

    def __init__(self, config: ConvConfig, name: str = "conv") -> None:
        super().__init__(config, name)
        c_in = config.image_shape[0]
        maps = (c_in, *config.channels)
        flat = math.prod(config.feature_shape)
        widths = (flat, *config.hidden, config.latent_dim)
        self.n_conv = len(config.channels)
        self.encoder = nn.ModuleList(
            [nn.Conv2d(a, b, KERNEL, STRIDE, PADDING) for a, b in _pairs(maps)]
            + [nn.Linear(a, b) for a, b in _pairs(widths)]
        )
        self.decoder = nn.ModuleList(
            [nn.Linear(a, b) for a, b in _pairs(widths[::-1])]
            + [nn.ConvTranspose2d(a, b, KERNEL, STRIDE, PADDING) for a, b in _pairs(maps[::-1])]
        )
        self.act = activation_module(config.activation)
        self._init_latent(widths[-2])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, *self.config.image_shape)  # (N, C*H*W) -> (N, C, H, W)
        for conv in self.encoder[: self.n_conv]:
            h = self.act(conv(h))  # (N, c, h, w) -> (N, c', h/2, w/2)
        h = h.flatten(1)
        for layer in self.encoder[self.n_conv : -1]:
            h = self.act(layer(h))
        return h

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        n_dense = len(self.decoder) - self.n_conv
        h = z
        for layer in self.decoder[:n_dense]:
            h = self.act(layer(h))
        h = h.reshape(-1, *self.config.feature_shape)
        for k, deconv in enumerate(self.decoder[n_dense:]):
            h = deconv(h)  # (N, c, h, w) -> (N, c', 2h, 2w)
            if k < self.n_conv - 1:
                h = self.act(h)
        return h.flatten(1)  # (N, C, H, W) -> (N, C*H*W)


def _pairs(sizes: tuple[int, ...]):
    """Consecutive (in, out) sizes of a stack of layers."""
    return zip(sizes[:-1], sizes[1:], strict=True)
