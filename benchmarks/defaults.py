"""Issue 16, point 3: the CLI's defaults against PCA at the same code size, on any data.

Each row trains ``aekit train`` with its defaults only (code size 16; the default dense model,
then ``--model linear``) as a separate process, scores the run with ``aekit eval --json`` on
held-out rows (test MSE in the data's own units, the scaler undone) and sets PCA with 16
components fitted on the same training rows beside it, scored on the same rows in the same
units. Rows:

- MNIST's first 300, 1,000, 5,000 and 60,000 training images (``--data mnist --limit N``:
  pixel values 0..255), scored on all 10,000 test images;
- the built-in digits (1,797 x 64, values 0..16), a seeded 80/20 split (seed 0), as a table;
- ADBench 18_Ionosphere, 26_optdigits and 41_Waveform as plain data (labels unused), a seeded
  80/20 split (seed 0).

Targets: dense at or below PCA on every row and at least 20% below it on MNIST with 5,000
images or more; linear within 2% of PCA on every row. Wall-clock seconds of each training
command (a fresh process: the import of aekit included) are reported.

    OMP_NUM_THREADS=1 python benchmarks/defaults.py          # results/defaults.json
    OMP_NUM_THREADS=1 python benchmarks/defaults.py --quick  # digits and Ionosphere only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, data_dir, save_result
from sklearn.decomposition import PCA

K = 16
MNIST_SIZES = (300, 1_000, 5_000, 60_000)
TABLES = ("18_Ionosphere", "26_optdigits", "41_Waveform")


def aekit_cli(*args: str) -> tuple[str, float]:
    """Run ``python -m aekit ARGS`` in a fresh process: (stdout, wall-clock seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "aekit", *args], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"aekit {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout, seconds


def pca_mse(X_train: np.ndarray, X_test: np.ndarray) -> tuple[float, float]:
    """(test MSE of PCA-16 fitted on X_train, seconds), in the data's units."""
    t0 = time.perf_counter()
    pca = PCA(min(K, *X_train.shape), random_state=0).fit(X_train.astype(np.float64))
    R = pca.inverse_transform(pca.transform(X_test.astype(np.float64)))
    return float(np.mean((R - X_test) ** 2)), time.perf_counter() - t0


def split(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 80/20 split of the rows."""
    order = np.random.default_rng(seed).permutation(len(X))
    n_train = int(round(0.8 * len(X)))
    return X[order[:n_train]], X[order[n_train:]]


def rows(quick: bool):
    """(name, train args for aekit, eval args, X_train, X_test) per row."""
    from aekit.data import load_dataset

    tmp = Path(tempfile.mkdtemp(prefix="aekit-defaults-"))
    tables = {"digits": load_dataset("digits").X}
    for name in TABLES[:1] if quick else TABLES:
        tables[name] = np.load(data_dir() / "adbench" / f"{name}.npz")["X"].astype(np.float32)
    for name, X in tables.items():
        X_train, X_test = split(X)
        np.save(tmp / f"{name}-train.npy", X_train)
        np.save(tmp / f"{name}-test.npy", X_test)
        train = ["--data", str(tmp / f"{name}-train.npy")]
        yield name, train, ["--data", str(tmp / f"{name}-test.npy")], X_train, X_test
    if quick:
        return
    d = str(data_dir())
    test = load_dataset("mnist", data_dir=d, split="test").X
    for n in MNIST_SIZES:
        X_train = load_dataset("mnist", data_dir=d, split="train", limit=n).X
        train = ["--data", "mnist", "--data-dir", d, "--limit", str(n)]
        evaluate = ["--data", "mnist", "--data-dir", d, "--split", "test"]
        yield f"mnist-{n}", train, evaluate, X_train, test


def measure(name, train, evaluate, X_train, X_test, out: Path) -> dict:
    pca, pca_s = pca_mse(X_train, X_test)
    row = {"data": name, "n_train_rows": len(X_train), "n_test_rows": len(X_test)}
    row.update({"pca_mse": pca, "pca_seconds": pca_s})
    for model in ("dense", "linear"):
        run = out / f"{name}-{model}"
        extra = [] if model == "dense" else ["--model", "linear"]
        _, seconds = aekit_cli("train", *train, *extra, "--latent-dim", str(K), "--out",
                               str(run), "--quiet")  # fmt: skip
        metrics = json.loads(aekit_cli("eval", str(run), *evaluate, "--json")[0])
        cfg = json.loads((run / "config.json").read_text())
        row[model] = {
            "test_mse": metrics["mse"],
            "units": metrics["units"],
            "ratio_to_pca": metrics["mse"] / pca,
            "train_seconds": seconds,
            "epochs_budget": cfg["training"]["epochs"],
            "epochs_run": len((run / "metrics.jsonl").read_text().splitlines()),
            "init": cfg["init"]["kind"],
            "output_activation": cfg["model"]["config"]["output_activation"],
        }
    mnist_big = name.startswith("mnist") and row["n_train_rows"] >= 5_000
    row["dense_pass"] = row["dense"]["ratio_to_pca"] <= (0.8 if mnist_big else 1.0)
    row["linear_pass"] = row["linear"]["ratio_to_pca"] <= 1.02
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits and Ionosphere only")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, train, evaluate, X_train, X_test in rows(args.quick):
            row = measure(name, train, evaluate, X_train, X_test, Path(tmp))
            results.append(row)
            d, lin = row["dense"], row["linear"]
            print(
                f"{name:14s} n={row['n_train_rows']:6d}  PCA-16 {row['pca_mse']:.5g}  "
                f"dense {d['test_mse']:.5g} ({d['ratio_to_pca']:.3f}x, {d['train_seconds']:.0f} s"
                f", {d['epochs_run']}/{d['epochs_budget']} ep)  linear {lin['test_mse']:.5g} "
                f"({lin['ratio_to_pca']:.3f}x, {lin['train_seconds']:.0f} s)",
                flush=True,
            )
    summary = {
        "dense_all_pass": all(r["dense_pass"] for r in results),
        "linear_all_pass": all(r["linear_pass"] for r in results),
    }
    print(json.dumps(summary))
    name = "defaults_quick" if args.quick else "defaults"
    print(f"wrote {save_result(name, {'rows': results, **summary})}")


if __name__ == "__main__":
    main()
