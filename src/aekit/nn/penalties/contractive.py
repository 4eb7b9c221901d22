"""Seed 004's contractive penalty lambda ||J_f(x)||_F^2, with J_f = d code / d x.

Three ways to compute it: "closed" (one dense encoder layer: sum_j s'(a_j)^2 ||W_j||^2),
"exact" (autograd, one backward pass per code unit), "projection" (E_v ||v^T J||^2 for
v ~ N(0, I), unbiased, one backward pass per draw); "auto" takes closed where it applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ...functional.losses import contractive_closed_form
from ..parts import PartSettings, number, set_fields, whole

METHODS = ("auto", "closed", "exact", "projection")


@dataclass(frozen=True)
class ContractiveSettings(PartSettings):
    """``weight`` lambda (0: off), ``method`` of the Jacobian (auto, closed, exact,
    projection) and ``samples``, the random projections of "projection"."""

    weight: float = 0.0
    method: str = "auto"
    samples: int = 1

    FLAT = {
        "contractive_weight": "weight",
        "contractive_method": "method",
        "contractive_samples": "samples",
    }

    def __post_init__(self) -> None:
        set_fields(self, weight=number("contractive_weight", self.weight))
        set_fields(self, samples=whole("contractive_samples", self.samples, 1))
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown contractive method {self.method!r}; choose one of {', '.join(METHODS)}"
            )

    @staticmethod
    def check(config) -> None:
        """Any encoder has a Jacobian; "closed" is checked against the built model."""


class Contractive(nn.Module):
    name = "contractive"
    Settings = ContractiveSettings

    def __init__(self, weight: float, method: str, samples: int) -> None:
        super().__init__()
        self.weight, self.method, self.samples = float(weight), method, int(samples)

    @classmethod
    def from_settings(cls, settings: ContractiveSettings) -> Contractive:
        return cls(settings.weight, settings.method, settings.samples)

    def forward(self, model, x_in, code: torch.Tensor, generator=None) -> torch.Tensor:
        jac = jacobian_frobenius_sq(
            model, x_in, self.method, samples=self.samples, generator=generator, code=code
        )
        return self.weight * jac


def resolve_method(model, method: str) -> str:
    """ "auto" -> "closed" where the encoder is one dense layer, else "exact"."""
    closed = model.closed_form_weight() is not None
    if method == "auto":
        return "closed" if closed else "exact"
    if method == "closed" and not closed:
        raise ConfigError(
            "the closed-form contractive penalty needs an encoder of one dense layer "
            "(hidden = ()); use contractive_method exact or projection"
        )
    return method


def jacobian_frobenius_sq(
    model,
    x: torch.Tensor,
    method: str = "exact",
    *,
    samples: int = 1,
    generator: torch.Generator | None = None,
    code: torch.Tensor | None = None,
) -> torch.Tensor:
    """1/N sum_i ||J_f(x_i)||_F^2 with J_f = d code / d x, the code of ``model.encode``.

    "closed": sum_j s'(a_j)^2 ||W_j||^2 for one dense layer (``code`` reused if given);
    "exact": one backward pass per code unit; "projection": E_v ||v^T J||^2 = ||J||_F^2 for
    v ~ N(0, I), averaged over ``samples`` draws (unbiased, one backward pass per draw).
    Differentiable when grad mode is on (the penalty trains), plain numbers under no_grad.
    """
    method = resolve_method(model, method)
    if method == "closed":
        code = model.encode(x) if code is None else code
        weight = model.closed_form_weight()
        return contractive_closed_form(code, weight, model.config.latent_activation)
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        z = model.encode(xr)  # rows are independent, so d(sum_i z_ij)/dx_i = dz_ij/dx_i
        if method == "exact":
            directions = [_unit(z, j) for j in range(z.shape[1])]
        else:
            directions = [
                torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
                for _ in range(samples)
            ]
        total = z.new_zeros(())
        for v in directions:
            (g,) = torch.autograd.grad(z, xr, v, create_graph=create_graph, retain_graph=True)
            total = total + g.pow(2).sum()  # sum_i ||v_i^T J(x_i)||^2
    scale = 1 if method == "exact" else len(directions)
    return total / (scale * len(x))


def _unit(z: torch.Tensor, j: int) -> torch.Tensor:
    v = torch.zeros_like(z)
    v[:, j] = 1
    return v
