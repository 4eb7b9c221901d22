"""Seed 004's L1 penalty on the code: lambda sum_j |z_j|, averaged over the batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...functional.losses import l1_code
from ..parts import PartSettings, number, set_fields


@dataclass(frozen=True)
class L1Settings(PartSettings):
    """``weight`` lambda of lambda sum_j |z_j| (0: off)."""

    weight: float = 0.0

    FLAT = {"l1_weight": "weight"}

    def __post_init__(self) -> None:
        set_fields(self, weight=number("l1_weight", self.weight))

    @staticmethod
    def check(config) -> None:
        """Any code can be penalised."""


class L1Code(nn.Module):
    name = "l1"
    Settings = L1Settings

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = float(weight)

    @classmethod
    def from_settings(cls, settings: L1Settings) -> L1Code:
        return cls(settings.weight)

    def forward(self, model, x_in, code: torch.Tensor, generator=None) -> torch.Tensor:
        return self.weight * l1_code(code)
