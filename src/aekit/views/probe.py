"""Figures of the seed-002 probe (:mod:`aekit.apps.probe`): templates and reconstructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import _pyplot, image_rows, save_figure

NAMES = {"classifier": "classifier", "autoencoder": "tied autoencoder"}


def templates(weights: dict[str, np.ndarray], image_shape, n: int = 32, cols: int = 8, fig=None):
    """The first ``n`` rows w_i of each W as images, one panel per model, side by side.

    Each template has its own symmetric colour scale (red > 0 > blue): a template's sign
    pattern is what h_i = sigma(w_i . x + b_i) responds to.
    """
    plt = _pyplot()
    n = min(n, max(len(W) for W in weights.values()))
    cols = min(cols, n)
    rows = -(-n // cols)
    fig = fig or plt.figure(figsize=(2 * cols * 0.9 + 0.6, rows * 0.95 + 0.8))
    panels = fig.subfigures(1, len(weights), wspace=0.04)
    for panel, (name, W) in zip(np.atleast_1d(panels), weights.items(), strict=True):
        axes = panel.subplots(rows, cols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if i >= min(n, len(W)):
                ax.axis("off")
                continue
            w = W[i].reshape(image_shape)[0]
            lim = float(np.abs(w).max()) or 1.0
            ax.imshow(w, cmap="bwr", vmin=-lim, vmax=lim)
        panel.suptitle(f"{NAMES.get(name, name)}: rows w_i of W", fontsize=11)
    return fig


def write_probe_figures(
    out: Path, shown: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], X, image_shape, n=10
) -> None:
    """templates.png and reconstructions.png; ``shown[name] = (W, X_hat, P_W x)``."""
    weights = {name: W for name, (W, _, _) in shown.items()}
    save_figure(templates(weights, image_shape), Path(out) / "templates.png")
    rows = [("input x", X[:n])]
    rows += [(f"{NAMES[k]}\nα Wᵀh + β", v[1][:n]) for k, v in shown.items()]
    rows += [(f"{NAMES[k]}\nP_W x", v[2][:n]) for k, v in shown.items()]
    title = "Test images synthesised from each model's W (pixel values clipped to 0-1)"
    save_figure(image_rows(rows, image_shape, title), Path(out) / "reconstructions.png")
