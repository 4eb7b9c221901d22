"""Penalties on the code: sparsity KL (seed 003), L1 (seed 004), contractive Jacobian (seed 004).

A penalty is an ``nn.Module`` built from the model config (``from_config`` returns None when
its weight is 0, i.e. the penalty is off) and called as ``penalty(model, x_in, code,
generator)`` to give its weighted term; the model adds every term to its loss under the
penalty's ``name``. The maths lives in :mod:`aekit.functional.losses`. A new penalty is one new
file here, a row in :data:`PENALTIES` and its weight field in the model config.
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
    built = (cls.from_config(config) for cls in PENALTIES.values())
    return nn.ModuleList(p for p in built if p is not None)


__all__ = [
    "PENALTIES",
    "Contractive",
    "L1Code",
    "SparseKL",
    "build_penalties",
    "jacobian_frobenius_sq",
    "resolve_method",
]
