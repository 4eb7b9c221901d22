"""Seed 004's L1 penalty on the code: lambda sum_j |z_j|, averaged over the batch."""

from __future__ import annotations

import torch
from torch import nn

from ...functional.losses import l1_code


class L1Code(nn.Module):
    name = "l1"

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = float(weight)

    @classmethod
    def from_config(cls, config) -> L1Code | None:
        return cls(config.l1_weight) if config.l1_weight > 0 else None

    def forward(self, model, x_in, code: torch.Tensor, generator=None) -> torch.Tensor:
        return self.weight * l1_code(code)
