"""The reconstruction losses as pure functions: the value and its gradient in one pass."""

from __future__ import annotations

import numpy as np

LOSSES = ("mse", "bce")


def mse(X: np.ndarray, X_hat: np.ndarray) -> tuple[float, np.ndarray]:
    """``L = 1/(2N) ||X - X_hat||_F^2`` and ``delta_out = dL/dX_hat = (X_hat - X)/N``."""
    N = X.shape[0]
    diff = X_hat - X  # (N, D_in)
    value = float(np.vdot(diff, diff)) / (2 * N)
    diff /= N  # delta_out = (X_hat - X)/N, in place: diff is ours   (N, D_in)
    return value, diff


def bce_with_logits(X: np.ndarray, A: np.ndarray, X_hat: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of ``X_hat = sigmoid(A)`` and ``dL/dA``, from the logits ``A``.

    ``L = -(1/N) sum_ij [x log x_hat + (1 - x) log(1 - x_hat)]`` (sum over features, mean over
    samples), evaluated as ``(1/N) sum_ij [max(a, 0) - a x + log(1 + exp(-|a|))]``, which never
    takes the log of 0 nor overflows. ``dL/dA = (X_hat - X)/N``: the sigmoid's derivative
    ``x_hat (1 - x_hat)`` cancels against the denominators of the log's derivative.
    """
    N = X.shape[0]
    value = np.maximum(A, 0) - A * X + np.log1p(np.exp(-np.abs(A)))  # (N, D_in)
    return float(value.sum()) / N, (X_hat - X) / N
