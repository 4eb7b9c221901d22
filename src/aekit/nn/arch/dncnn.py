"""A fully convolutional residual denoiser (DnCNN, Zhang et al. 2017), small by default.

``depth`` Conv2d(kernel 3, padding 1) layers, ``width`` feature maps each, the activation after
every one but the last; no stride, no dense layer, no bottleneck. The stack predicts the noise
n_hat = f(x_tilde) and the model returns x_hat = x_tilde - n_hat (residual learning), so an
untrained model starts near the identity. With ``residual`` False the stack's output is the
estimate itself, x_hat = f(x_tilde): the blindspot preset, since a residual blind-spot model
learns to correct the neighbours' mean it is shown in place of a masked pixel, and when it
denoises, the pixel's own noisy value stands in that place. There is no code: :meth:`encode`
and :meth:`decode` refuse in one line, and the model's objective is the reconstruction loss
alone (with the config's corruption: ``noise`` on clean data, ``blindspot`` on noisy data, or
``sure`` on noisy data of a known noise: :mod:`aekit.nn.sure`).

Training rows are (N, C*H*W) folded by ``image_shape``, like every aekit model; the weights
work at any H, W, which :meth:`DnCNN.reconstruct_images` takes ((N, C, H, W) of any size:
what :func:`aekit.denoise` uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ..activations import ACTIVATIONS, activation_module
from ..base import Autoencoder
from ..config import ModelConfig, check_choice


@dataclass
class DnCNNConfig(ModelConfig):
    """Settings of the residual denoiser (and the fields of :class:`ModelConfig`, of which
    ``latent_dim`` and the code's penalties do not apply): ``depth`` conv layers of ``width``
    maps, ``activation`` between them, ``residual`` x - f(x) (else f(x))."""

    depth: int = 5
    width: int = 32
    activation: str = "relu"
    residual: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.depth, self.width = int(self.depth), int(self.width)
        if not isinstance(self.residual, bool):
            raise ConfigError(f"residual is true or false, got {self.residual!r}")
        if self.depth < 2 or self.width < 1:
            raise ConfigError("dncnn needs depth >= 2 conv layers and width >= 1 feature maps")
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.image_shape is None:
            raise ConfigError(
                "a convolutional model needs image data: give image_shape (C, H, W) "
                "(image data sets such as mnist carry it)"
            )
        if self.output_activation != "identity":
            raise ConfigError(
                "dncnn subtracts its noise estimate from the input: its output activation is "
                "identity (images are clipped to their range when denoised)"
            )
        if self.latent != "deterministic" or self.loss not in ("mse", "mae", "ssim"):
            raise ConfigError("dncnn has no code: use a deterministic latent and loss mse or mae")
        if self.penalties:
            raise ConfigError("dncnn has no code to penalise: drop the code penalties")


class DnCNN(Autoencoder):
    """x_hat = x_tilde - f(x_tilde), f a stack of 3x3 convolutions (``layers.{k}``); or
    x_hat = f(x_tilde) with ``residual`` False (the blind-spot preset)."""

    config_class = DnCNNConfig
    has_code = False
    fully_convolutional = True

    def __init__(self, config: DnCNNConfig, name: str = "dncnn") -> None:
        super().__init__(config, name)
        c = config.image_shape[0]
        maps = (c, *[config.width] * (config.depth - 1), c)
        self.layers = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(maps[:-1], maps[1:], strict=True)
        )
        self.act = activation_module(config.activation)
        self.penalties = nn.ModuleList()
        if config.residual:
            with torch.no_grad():  # start at the identity: the noise estimate is 0
                self.layers[-1].weight.mul_(0.1)
                self.layers[-1].bias.zero_()

    def reconstruct_images(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W), any H and W: x - f(x) (or f(x), not residual)."""
        h = x
        for k, conv in enumerate(self.layers):
            h = conv(h)
            if k < len(self.layers) - 1:
                h = self.act(h)
        return x - h if self.config.residual else h

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, C*H*W)
        return self.reconstruct_images(x.reshape(-1, *self.config.image_shape)).flatten(1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The record for a batch x (N, D_in): corrupt, denoise, score (no code)."""
        from ...functional.losses import reconstruction_loss
        from ..base import eval_generator

        gen = None if self.training else eval_generator(x.device)
        if getattr(self.corruption, "scores_model", False):  # sure: x is the noisy data
            recon, x_hat = self.corruption.risk(self.reconstruct, x, gen)
            return {"loss": recon, "recon": recon, "x_hat": x_hat, "code": x_hat[:, :0]}
        x_in, scored = (x, None) if self.corruption is None else self.corruption(x, gen)
        x_hat = self.reconstruct(x_in)
        recon = reconstruction_loss(self.config.loss, x_hat, x_hat, x, self.config.image_shape)
        record = {"loss": recon, "recon": recon, "x_hat": x_hat, "code": x_hat[:, :0]}
        return record if scored is None else self.score_only(record, x, scored)

    def _no_code(self, *args, **kwargs):
        raise ConfigError(
            f"model {self.name!r} is fully convolutional and has no code: use it to reconstruct "
            "or denoise (aekit denoise), not to encode, decode or sample"
        )

    encode = decode = posterior = _no_code
