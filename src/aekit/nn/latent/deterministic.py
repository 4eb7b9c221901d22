"""The deterministic latent of seed 000: the code is z = s(W h + b), decoded once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...functional.losses import reconstruction_loss
from ..activations import activation_module
from ..parts import PartSettings


@dataclass(frozen=True)
class DeterministicSettings(PartSettings):
    """The deterministic latent has no settings of its own (its activation is the model's
    ``latent_activation``, which the code penalties read too)."""


class DeterministicLatent(nn.Module):
    """z = s_code(code_layer(h)); the objective is the reconstruction loss of g(z)."""

    Settings = DeterministicSettings

    def __init__(self, config, width: int) -> None:
        super().__init__()
        self.config = config
        self.act = activation_module(config.latent_activation)

    @staticmethod
    def check_config(config) -> None:
        """Every code penalty and corruption applies: nothing to refuse."""

    def encode(self, model, h: torch.Tensor) -> torch.Tensor:  # (N, F) -> (N, D_latent)
        return self.act(model.encoder[-1](h))

    def forward(self, model, h: torch.Tensor, x: torch.Tensor, generator=None) -> dict:
        """The record for features h of the (corrupted) input, scored against the clean x."""
        code = self.encode(model, h)
        logits = model.decode_logits(code)
        x_hat = model.output(logits)
        recon = reconstruction_loss(self.config.loss, x_hat, logits, x, self.config.image_shape)
        return {"loss": recon, "recon": recon, "code": code, "x_hat": x_hat}
