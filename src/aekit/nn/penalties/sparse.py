"""Seed 003's sparsity penalty: lambda sum_j KL(rho || rho_hat_j) on a sigmoid code."""

from __future__ import annotations

import torch
from torch import nn

from ...functional.losses import sparsity_kl


class SparseKL(nn.Module):
    name = "sparse"

    def __init__(self, weight: float, target: float) -> None:
        super().__init__()
        self.weight, self.target = float(weight), float(target)

    @classmethod
    def from_config(cls, config) -> SparseKL | None:
        # the config has checked that the code is a sigmoid's, in (0, 1)
        return cls(config.sparse_weight, config.sparse_target) if config.sparse_weight else None

    def forward(self, model, x_in, code: torch.Tensor, generator=None) -> torch.Tensor:
        return self.weight * sparsity_kl(code, self.target)
