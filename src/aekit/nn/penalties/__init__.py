"""Penalties on the code: sparsity KL (seed 003), L1 (seed 004), contractive Jacobian (seed 004).

A penalty is an ``nn.Module`` with its own settings (``Settings``, a frozen dataclass whose
``weight`` 0 means off, and whose ``check(config)`` refuses a model it cannot apply to), built
by ``from_settings`` from the entry of the model config's ``penalties`` under its ``name``, and
called as ``penalty(model, x_in, code, generator)`` to give its weighted term; the model adds
every term to its loss under that name. The maths lives in :mod:`aekit.functional.losses`. A
new penalty is one new file here and a row in :data:`PENALTIES`.
"""

from __future__ import annotations

from torch import nn

from .contractive import Contractive, jacobian_frobenius_sq, resolve_method
from .l1 import L1Code
from .sparse import SparseKL

PENALTIES: dict[str, type] = {
    SparseKL.name: SparseKL,
    L1Code.name: L1Code,
    Contractive.name: Contractive,
}


def build_penalties(config) -> nn.ModuleList:
    """The penalties a config turns on, in :data:`PENALTIES` order."""
    on = config.penalties
    return nn.ModuleList(
        cls.from_settings(on[name]) for name, cls in PENALTIES.items() if name in on
    )


__all__ = [
    "PENALTIES",
    "Contractive",
    "L1Code",
    "SparseKL",
    "build_penalties",
    "jacobian_frobenius_sq",
    "resolve_method",
]
