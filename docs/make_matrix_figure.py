"""Train the seed's matrix autoencoder with the NumPy engine on the built-in digits; draw it.

Writes docs/img/matrix_digits.png (held-out inputs above their reconstructions, and the loss
per epoch) and prints the losses that docs/matrix-autoencoder.md quotes. NumPy, scikit-learn
(for the data) and matplotlib only; no torch. About two seconds on a laptop core.

    PYTHONPATH=src python docs/make_matrix_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from aekit.scratch import Autoencoder  # noqa: E402

OUT = Path(__file__).resolve().parent / "img" / "matrix_digits.png"
EPOCHS = 60


def train() -> tuple[Autoencoder, list[float], np.ndarray, float, float]:
    """The seed's model 64-16-64 (sigmoid code, sigmoid output) trained by Adam on 1,500 digits."""
    X = load_digits().data / 16.0  # (1797, 64) in [0, 1]
    X_train, X_test = X[:1500], X[1500:]
    model = Autoencoder(64, 16, encoder_activation="sigmoid", decoder_activation="sigmoid", seed=0)
    before = model.loss(X_test)  # 1/(2N) ||X - X_hat||_F^2 at initialisation
    history = model.fit(X_train, epochs=EPOCHS, batch_size=64, optimizer="adam", lr=1e-2)
    return model, history, X_test, before, model.loss(X_test)


def draw(model: Autoencoder, history: list[float], X_test: np.ndarray, n: int = 10):
    """Top: n held-out digits over their reconstructions. Bottom: the loss per epoch."""
    fig = plt.figure(figsize=(8, 4.4))
    grid = fig.add_gridspec(3, n, height_ratios=[1, 1, 2.2], hspace=0.12, wspace=0.08)
    X_hat = model.forward(X_test[:n])
    for i in range(n):
        for row, images in enumerate((X_test, X_hat)):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(images[i].reshape(8, 8), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(("$X$", r"$\hat{X}$")[row], fontsize=11)
    ax = fig.add_subplot(grid[2, :])
    ax.plot(range(1, len(history) + 1), history, "o-", ms=2.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    formula = r"$L = \frac{1}{2N}\,\|X - \hat{X}\|_F^2$, mean over the epoch's batches"
    ax.text(0.98, 0.88, formula, transform=ax.transAxes, ha="right", fontsize=10)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.suptitle(
        "NumPy engine: 64-16-64 sigmoid autoencoder, Adam; held-out digits (top) and "
        "reconstructions",
        fontsize=10,
        y=0.95,
    )
    return fig


def main() -> None:
    model, history, X_test, before, after = train()
    for epoch in (1, 2, 5, 10, 20, 40, EPOCHS):
        print(f"epoch {epoch:3d}  training loss {history[epoch - 1]:.4f}")
    print(f"held-out loss: {before:.4f} at initialisation, {after:.4f} after training")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw(model, history, X_test).savefig(OUT, dpi=100, bbox_inches="tight")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
