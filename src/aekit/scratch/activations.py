"""Element-wise activations and their derivatives, side by side in one table.

Each derivative takes both the pre-activation ``a`` and the output ``y = f(a)`` so that it can
use whichever is cheaper (``sigmoid' = y (1 - y)``, ``tanh' = 1 - y^2``, ``relu' = [a > 0]``),
exactly the quantities torch's autograd saves. Every function keeps the dtype of its input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

Array = np.ndarray


def identity(a: Array) -> Array:
    """Return ``a`` itself (no copy)."""
    return a


def relu(a: Array) -> Array:
    """``max(a, 0)``."""
    return np.maximum(a, 0)


def sigmoid(a: Array) -> Array:
    """``1 / (1 + exp(-a))`` without overflow: ``exp`` only ever sees ``-|a|``."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Activation(NamedTuple):
    """An activation ``fn(a)`` and its derivative ``grad(a, y)`` with ``y = fn(a)``."""

    fn: Callable[[Array], Array]
    grad: Callable[[Array, Array], Array]


# name         f(a)                  f'(a), given a and y = f(a)
ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(identity, lambda a, y: np.ones_like(a)),  # 1
    "relu": Activation(relu, lambda a, y: (a > 0).astype(a.dtype)),  # [a > 0] (0 at the kink)
    "sigmoid": Activation(sigmoid, lambda a, y: y * (1 - y)),  # s(a) (1 - s(a))
    "tanh": Activation(np.tanh, lambda a, y: 1 - y * y),  # 1 - tanh(a)^2
}


def get_activation(name: str) -> Activation:
    """Look ``name`` up in :data:`ACTIVATIONS`; raise ``ValueError`` naming the choices."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; choose one of {choices}") from None
