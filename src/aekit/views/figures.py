"""Figures for a run directory: the loss curve and inputs beside reconstructions.

Each function draws on ``ax`` (or a new figure when ``ax`` is None) and returns the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: list[dict], ax=None):
    """Training (and validation) loss per epoch."""
    plt = _pyplot()
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 3.5))
    ax = ax or fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", ms=3, label="train")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [r["val_loss"] for r in history], "o-", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def reconstructions(X: np.ndarray, X_hat: np.ndarray, image_shape, n: int = 10, fig=None):
    """Top row inputs, bottom row reconstructions, for the first ``n`` images."""
    plt = _pyplot()
    n = min(n, len(X))
    c, h, w = image_shape
    fig = fig or plt.figure(figsize=(1.1 * n, 2.4))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, data in enumerate((X, X_hat)):
            img = np.clip(data[i].reshape(c, h, w), 0, 1)
            img = img[0] if c == 1 else img.transpose(1, 2, 0)
            axes[row, i].imshow(img, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> None:
    """Write a PNG atomically and close the figure."""
    from ..io.files import atomic_write

    plt = _pyplot()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
