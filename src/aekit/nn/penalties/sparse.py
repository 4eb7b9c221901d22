"""Seed 003's sparsity penalty: lambda sum_j KL(rho || rho_hat_j) on a sigmoid code."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ...functional.losses import sparsity_kl
from ..parts import PartSettings, number, set_fields


@dataclass(frozen=True)
class SparseSettings(PartSettings):
    """``weight`` lambda (0: off) and ``target`` rho in (0, 1), the mean activation asked for."""

    weight: float = 0.0
    target: float = 0.05

    FLAT = {"sparse_weight": "weight", "sparse_target": "target"}

    def __post_init__(self) -> None:
        set_fields(self, weight=number("sparse_weight", self.weight))
        set_fields(self, target=number("sparse_target", self.target))
        if not 0 < self.target < 1:
            raise ConfigError(f"sparse_target must lie in (0, 1), got {self.target}")

    @staticmethod
    def check(config) -> None:
        if config.latent != "deterministic" or config.latent_activation != "sigmoid":
            raise ConfigError(
                "the sparsity KL needs code activations in (0, 1): use a deterministic latent "
                "with latent_activation sigmoid (or the l1 penalty instead)"
            )


class SparseKL(nn.Module):
    name = "sparse"
    Settings = SparseSettings

    def __init__(self, weight: float, target: float) -> None:
        super().__init__()
        self.weight, self.target = float(weight), float(target)

    @classmethod
    def from_settings(cls, settings: SparseSettings) -> SparseKL:
        # the config has checked that the code is a sigmoid's, in (0, 1)
        return cls(settings.weight, settings.target)

    def forward(self, model, x_in, code: torch.Tensor, generator=None) -> torch.Tensor:
        return self.weight * sparsity_kl(code, self.target)
