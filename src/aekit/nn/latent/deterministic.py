"""The deterministic latent of seed 000: the code is z = s(W h + b), decoded once."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...functional.losses import reconstruction_loss
from ..activations import activation_module

# settings that only a Gaussian latent reads, with the values that mean "off"
GAUSSIAN_ONLY = (("beta", 1.0), ("kl_warmup", 0), ("free_bits", 0.0), ("iwae_samples", 1))


class DeterministicLatent(nn.Module):
    """z = s_code(code_layer(h)); the objective is the reconstruction loss of g(z)."""

    def __init__(self, config, width: int) -> None:
        super().__init__()
        self.config = config
        self.act = activation_module(config.latent_activation)

    @staticmethod
    def check_config(config) -> None:
        extras = [name for name, off in GAUSSIAN_ONLY if getattr(config, name) != off]
        if extras:
            verb = "applies" if len(extras) == 1 else "apply"
            raise ConfigError(
                f"{', '.join(extras)} {verb} to a Gaussian latent only: use latent gaussian "
                "(the vae and conv-vae models)"
            )

    def encode(self, model, h: torch.Tensor) -> torch.Tensor:  # (N, F) -> (N, D_latent)
        return self.act(model.encoder[-1](h))

    def forward(self, model, h: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """The record for features h of the (corrupted) input, scored against the clean x."""
        code = self.encode(model, h)
        logits = model.decode_logits(code)
        x_hat = model.output(logits)
        recon = reconstruction_loss(self.config.loss, x_hat, logits, x, self.config.image_shape)
        return {"loss": recon, "recon": recon, "code": code, "x_hat": x_hat}
