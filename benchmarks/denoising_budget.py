"""Longer budgets for the two aekit denoisers that had not converged in denoising.py.

The same data, noise and scoring as ``denoising.py`` (MNIST, first 2,000 train / 200 test
images, Gaussian sigma 25/255 unclipped, seed 0, PSNR and SSIM on 8-bit outputs): the dense
``denoising`` preset at 100 epochs, ``blindspot`` (noisy training images only) at 40 epochs
with 5% and 15% of pixels masked. Prints one line per model; writes no result file.

    cd benchmarks && OMP_NUM_THREADS=1 python denoising_budget.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_dir
from denoising import scores


def main() -> None:
    import aekit
    from aekit.data import load_dataset

    rng = np.random.default_rng(0)
    sigma = 25 / 255
    train = load_dataset("mnist", data_dir=data_dir(), split="train", limit=2050)
    test = load_dataset("mnist", data_dir=data_dir(), split="test", limit=200)
    X_train = (train.X[:2000] / 255).reshape(-1, 28, 28).astype(np.float32)
    val = (train.X[2000:] / 255).reshape(-1, 28, 28).astype(np.float32)
    clean = (test.X / 255).reshape(-1, 28, 28).astype(np.float32)
    noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
    rng.standard_normal(val.shape)  # the validation draw of denoising.py: the same streams
    noisy_train = (X_train + sigma * rng.standard_normal(X_train.shape)).astype(np.float32)
    runs = [
        ("dense denoising, 100 epochs", "denoising", X_train, {"noise": "gaussian:25/255"}, 100),
        ("blindspot p=0.05, 40 epochs", "blindspot", noisy_train, {}, 40),
        ("blindspot p=0.15, 40 epochs", "blindspot", noisy_train, {"blindspot": 0.15}, 40),
    ]
    for label, preset, data, options, epochs in runs:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = aekit.train(data, out=Path(tmp) / "r", model=preset, epochs=epochs,
                              scale="none", progress=False, model_options=options)  # fmt: skip
            fit = time.perf_counter() - t0
            out = aekit.denoise(run.out, noisy, units="as-is")
            print(label, scores(clean, out), f"train {fit:.0f} s", flush=True)


if __name__ == "__main__":
    main()
