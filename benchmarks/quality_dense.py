"""Issue 2, point 10: reconstruction quality on MNIST's test split.

- the linear autoencoder, latent 16, against PCA with 16 components fitted on the train split
  (target: test MSE within 1% of PCA's, 0.02686 per pixel);
- the dense autoencoder 784-512-256-16-256-512-784 (ReLU, sigmoid output), at most 20 epochs
  (target: test MSE <= 0.0080 per pixel).

Both are trained through ``aekit.train`` exactly as ``aekit train`` would, on all 60,000
training images (no validation split), and scored with ``aekit.evaluate`` on the test split.

    python benchmarks/quality_dense.py      # writes benchmarks/results/quality_dense.json
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import data_dir, load_result, mnist, save_result
from sklearn.decomposition import PCA

import aekit

RUNS = {
    "linear": dict(
        model="linear", model_options={"latent_dim": 16}, epochs=60, batch_size=256, lr=2e-3
    ),
    "dense": dict(
        model="dense",
        # the sigmoid output this benchmark measured (aekit.train's "auto" is now the identity
        # for a plain dense model, which starts from PCA)
        model_options={"latent_dim": 16, "hidden": (512, 256), "output_activation": "sigmoid"},
        epochs=20,
        batch_size=64,
        lr=1e-3,
    ),
}
TARGETS = {"linear": "within 1% of PCA", "dense": 0.0080}


def pca_test_mse(k: int = 16) -> float:
    X_train, X_test = mnist("train").astype(np.float64), mnist("test").astype(np.float64)
    pca = PCA(k, svd_solver="full").fit(X_train)
    return float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))


def train_and_score(name: str, out: str) -> dict:
    options = dict(RUNS[name])
    t0 = time.perf_counter()
    run = aekit.train(
        "mnist", out=out, data_dir=data_dir(), val_fraction=0.0, progress=True, **options
    )
    seconds = time.perf_counter() - t0
    metrics = aekit.evaluate(out, "mnist", data_dir=data_dir(), split="test")
    return {
        "model": name,
        "settings": {k: v for k, v in options.items()},
        "epochs_run": run.state.epoch,
        "train_seconds": seconds,
        "test": metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args()
    pca = pca_test_mse()
    print(f"PCA(16) test MSE per pixel: {pca:.5f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            row = train_and_score(name, f"{tmp}/{name}")
            mse = row["test"]["scaled_mse"]  # MNIST in [0, 1]: the image scaler's space
            row["pass"] = mse <= 1.01 * pca if name == "linear" else mse <= TARGETS[name]
            if name == "linear":
                row["ratio_to_pca"] = mse / pca
            rows.append(row)
            print(
                f"{name:7s} test MSE {mse:.5f} per pixel (target {TARGETS[name]}; "
                f"{'PASS' if row['pass'] else 'FAIL'}) in {row['train_seconds']:.0f} s"
            )
    previous = load_result("quality_dense") or {}
    kept = [r for r in previous.get("rows", []) if r["model"] not in args.models]
    path = save_result("quality_dense", {"pca16_test_mse": pca, "rows": kept + rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
