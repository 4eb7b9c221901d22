"""Figures for a run directory: the loss curve and inputs beside reconstructions.

Each drawing function draws on ``ax`` (or a new figure when ``ax`` is None) and returns the
figure; :func:`write_run_figures` writes ``loss.png`` and ``reconstructions.png`` of a run.
:func:`loss_units` names what each term of a model's objective measures, for every view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.rundir import Run

# what the reconstruction term of each loss is, per sample (README: "The loss, as in seed 000")
_RECON = {
    "mse": "½‖x − x̂‖² per sample (squared scaled units)",
    "mae": "‖x − x̂‖₁ per sample (scaled units)",
    "bce": "cross-entropy per sample (nats)",
    "ssim": "1 − SSIM per image (unitless)",
}


def loss_units(config) -> dict[str, str]:
    """What each term of the model's objective measures: {"loss": ..., "recon": ..., ...}.

    Parameters
    ----------
    config : ModelConfig
        The model's config (its ``loss`` and ``latent`` fields matter).

    Returns
    -------
    dict of str to str
        A label with units for "loss", "recon", "kl" and the penalties.
    """
    if getattr(config, "latent", "deterministic") == "gaussian":
        recon = "−log p(x|z) per sample (nats)"
        total = "−ELBO per sample (nats)"
    else:
        recon = _RECON.get(config.loss, f"{config.loss} per sample")
        total = recon if not _has_penalty(config) else f"{recon} + penalties"
    return {
        "loss": total,
        "recon": recon,
        "kl": "KL(q(z|x) ‖ N(0, I)) per sample (nats)",
        "sparse": "weighted sparsity KL (loss units)",
        "l1": "weighted L1 of the code (loss units)",
        "contractive": "weighted ‖J_f(x)‖²_F (loss units)",
    }


def _has_penalty(config) -> bool:
    return bool(getattr(config, "penalties", None))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: list[dict], ax=None, *, units: str = "loss", title: str = "Loss"):
    """Training (and validation) loss per epoch; ``units`` labels the y axis."""
    plt = _pyplot()
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 4))
    ax = ax or fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    train = [r["train_loss"] for r in history]
    ax.plot(epochs, train, "o-", ms=4, lw=2, label="training")
    values = list(train)
    if history and "val_loss" in history[0]:
        val = [r["val_loss"] for r in history]
        ax.plot(epochs, val, "s--", ms=4, lw=2, label="validation")
        values += val
    ax.set_title(title, fontsize=12)
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel(units, fontsize=10)
    finite = [v for v in values if np.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 10:
        ax.set_yscale("log")  # only where the curve spans more than a decade
    if len(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _show(ax, row: np.ndarray, image_shape) -> None:
    c, h, w = image_shape
    img = np.clip(row.reshape(c, h, w), 0, 1)
    img = img[0] if c == 1 else img.transpose(1, 2, 0)
    ax.imshow(img, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def image_rows(rows: list[tuple[str, np.ndarray]], image_shape, title: str = "", fig=None):
    """One row of images per (label, (n, D) array), labelled on the left; a grid figure."""
    plt = _pyplot()
    n = max(len(x) for _, x in rows)
    fig = fig or plt.figure(figsize=(1.0 * n + 1.4, 1.05 * len(rows) + (0.5 if title else 0.1)))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, X) in enumerate(rows):
        for i in range(n):
            if i < len(X):
                _show(axes[r, i], X[i], image_shape)
            else:
                axes[r, i].axis("off")
        axes[r, 0].set_ylabel(label, fontsize=10, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def reconstructions(
    X: np.ndarray, X_hat: np.ndarray, image_shape, n: int = 10, fig=None, X_noisy=None
):
    """Rows: inputs, the noisy inputs the model saw (denoising), reconstructions."""
    n = min(n, len(X))
    rows = [("input", X[:n])]
    if X_noisy is not None:
        rows.append(("noisy input", X_noisy[:n]))
    rows.append(("reconstruction", X_hat[:n]))
    title = "Held-out images and their reconstructions (pixel values 0-1)"
    return image_rows(rows, image_shape, title, fig=fig)


def write_run_figures(out: Path, history, model, X_show, image_shape) -> None:
    """loss.png, and reconstructions.png for image data (when the weights are finite)."""
    import torch

    units = loss_units(model.config)["loss"]
    title = f"Loss of '{model.name}' per epoch"
    run = Run(out)
    save_figure(loss_curve(history, units=units, title=title), run.loss_figure)
    if image_shape is not None and bool(torch.isfinite(next(model.parameters())).all()):
        first = getattr(X_show, "first_rows", None)  # streamed data: the first rows read
        X_show = np.asarray(first(10) if first is not None else X_show[:10])
        noisy = noisy_inputs(model, X_show)  # a denoising model is shown denoising
        X_hat = model.reconstruct_scaled(X_show if noisy is None else noisy)
        fig = reconstructions(X_show, X_hat, image_shape, X_noisy=noisy)
        save_figure(fig, run.reconstructions_figure)


def noisy_inputs(model, X: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """The corrupted inputs a denoising model reconstructs from (None without noise)."""
    noise = getattr(model.config, "noise", None)
    if not noise:
        return None
    from ..data.noise import corrupt

    return corrupt(X, noise, seed)


def save_figure(fig, path: str | Path) -> None:
    """Write a PNG atomically and close the figure."""
    from ..io.files import atomic_write

    plt = _pyplot()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
