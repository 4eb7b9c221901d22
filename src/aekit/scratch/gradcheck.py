"""Finite-difference check of the engine's analytic gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .engine import Autoencoder

TINY = np.finfo(np.float64).tiny


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b||_2 / (||a||_2 + ||b||_2)`` over all entries, 0 when both are zero.

    It lies in [0, 1], is symmetric, and is not blown up by single entries that happen to be
    near zero (an element-wise ratio is), while a wrong sign or scale still shows as ~1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / max(scale, TINY))


def numerical_gradients(
    model: Autoencoder, X: np.ndarray, kind: str = "mse", eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """Central differences ``(L(p + eps) - L(p - eps)) / (2 eps)`` for every parameter entry.

    Each entry is perturbed in place and restored to its exact original value.
    """
    grads = {}
    for name, p in model.params.items():
        g = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + eps
            plus = model.loss(X, kind)
            p[idx] = orig - eps
            minus = model.loss(X, kind)
            p[idx] = orig
            g[idx] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads


def gradcheck(model: Autoencoder, X: np.ndarray, kind: str = "mse", eps: float = 1e-6) -> float:
    """Relative error between the analytic and the finite-difference gradients.

    Parameters
    ----------
    model : Autoencoder
        A float64 model (float32 rounding swamps a finite difference); it is left unchanged.
    X : array of shape (N, D_in)
        The batch the loss is evaluated on.
    kind : {"mse", "bce"}
        The loss.
    eps : float
        Step of the central differences.

    Returns
    -------
    float
        :func:`relative_error` of the two gradients, every parameter's entries concatenated:
        ``||g_fd - g||_2 / (||g_fd||_2 + ||g||_2)``. About 1e-9 for a correct float64
        gradient, of order 1 for a wrong one. The whole vector is the reference scale on
        purpose: a finite difference's error is absolute (about ``ulp(L) / eps``), so a
        per-parameter ratio would flag a correct parameter whose gradient is merely tiny,
        while a per-parameter comparison at 1e-10 is what the tests against torch do.
    """
    if model.dtype != np.float64:
        raise ValueError(
            f"gradcheck needs a float64 model, got {model.dtype}: float32 rounding swamps "
            "finite differences"
        )
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    analytic = model.gradients(X, kind)
    numeric = numerical_gradients(model, X, kind, eps)
    names = list(model.params)
    return relative_error(
        np.concatenate([numeric[k].ravel() for k in names]),
        np.concatenate([analytic[k].ravel() for k in names]),
    )
