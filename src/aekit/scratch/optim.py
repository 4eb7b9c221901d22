"""Optimisers written out, with the update rules of ``torch.optim`` so the two sides agree.

Every optimiser updates the parameter arrays in place, keeps its state in the parameters' dtype
and is keyed by parameter name, so ``step(params, grads)`` takes the two dicts the engine uses.
``g`` is the gradient:

- ``"gd"``: ``p -= lr * g`` on the full batch (``torch.optim.SGD(lr=lr)``).
- ``"sgd"``: the same rule on minibatches.
- ``"momentum"``: ``v = mu v + g`` (``v = g`` on the first step), ``p -= lr v``, mu = 0.9
  (``torch.optim.SGD(lr=lr, momentum=0.9)``: dampening 0, no Nesterov).
- ``"adam"``: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
  ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``, ``p -= lr m_hat / (sqrt(v_hat) + eps)``
  with ``t`` the 1-based step count (``torch.optim.Adam`` defaults: betas (0.9, 0.999), eps 1e-8).
"""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


class Optimizer:
    """Base class: stores the learning rate and checks it."""

    def __init__(self, lr: float) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        self.lr = float(lr)

    def step(self, params: Params, grads: Params) -> None:
        """Update every array of ``params`` in place from ``grads`` (same keys)."""
        raise NotImplementedError


class GradientDescent(Optimizer):
    """Plain (stochastic) gradient descent: ``p -= lr * g``."""

    def step(self, params: Params, grads: Params) -> None:
        for name, p in params.items():
            p -= self.lr * grads[name]  # W <- W - eta dL/dW


class Momentum(Optimizer):
    """Heavy-ball momentum as in ``torch.optim.SGD(momentum=mu)``, dampening 0, no Nesterov."""

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = float(momentum)
        self.velocity: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        for name, p in params.items():
            g = grads[name]
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = g.copy()  # v_1 = g_1 (torch's first step)
            else:
                v *= self.momentum  # v_t = mu v_{t-1} + g_t
                v += g
            p -= self.lr * v  # p <- p - lr v_t


class Adam(Optimizer):
    """Adam with bias correction, the defaults and the operation order of ``torch.optim.Adam``."""

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.t = 0
        self.m: Params = {}
        self.v: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bias1 = 1 - b1**self.t  # 1 - b1^t
        bias2_sqrt = math.sqrt(1 - b2**self.t)  # sqrt(1 - b2^t)
        for name, p in params.items():
            g = grads[name]
            if name not in self.m:
                self.m[name] = np.zeros_like(p)
                self.v[name] = np.zeros_like(p)
            m, v = self.m[name], self.v[name]
            m += (1 - b1) * (g - m)  # m = b1 m + (1 - b1) g, written as torch's lerp
            v *= b2  # v = b2 v + (1 - b2) g^2
            v += (1 - b2) * (g * g)
            # p -= lr m_hat / (sqrt(v_hat) + eps), in torch's order:
            # p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            denom = np.sqrt(v)
            denom /= bias2_sqrt
            denom += self.eps
            p -= (self.lr / bias1) * (m / denom)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "sgd": GradientDescent,
    "momentum": Momentum,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float) -> Optimizer:
    """Build the optimiser registered as ``name`` in :data:`OPTIMIZERS`."""
    try:
        cls = OPTIMIZERS[name]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in OPTIMIZERS)
        raise ValueError(f"unknown optimizer {name!r}; choose one of {choices}") from None
    return cls(lr)
