"""Denoising on MNIST at Gaussian sigma 25 (of 255): aekit's denoisers vs the classical ones.

All in one run, on the same noisy test images (unclipped additive Gaussian noise, one seed):
the noisy input, Gaussian blur, total variation and non-local means (scikit-image), BM3D
(``pip install bm3d``), PCA projection, and aekit's ``denoising`` preset (dense), ``dncnn``
(both trained on clean images with ``--noise gaussian:25/255``) and ``blindspot`` (trained on
the noisy training images alone). The classical methods' parameter (and PCA's size) is chosen
on 50 noisy validation images from the training split, never on the test images. Every output
is clipped and rounded to 8 bits before PSNR and SSIM (data range 255); seconds are wall-clock
for denoising the test images (training apart).

    OMP_NUM_THREADS=1 python benchmarks/denoising.py --train 2000 --test 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_dir, save_result


def to8(X: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(X, np.float64) * 255), 0, 255)


def scores(clean: np.ndarray, out: np.ndarray) -> dict:
    from skimage.metrics import structural_similarity

    ref, est = to8(clean), to8(out)
    mse = ((ref - est) ** 2).reshape(len(ref), -1).mean(1)
    psnr = 10 * np.log10(255**2 / np.maximum(mse, 1e-10))
    ssim = [structural_similarity(r, e, data_range=255) for r, e in zip(ref, est, strict=True)]
    return {"psnr": float(psnr.mean()), "ssim": float(np.mean(ssim))}


def per_image(fn, X):
    return np.stack([fn(x) for x in X])


def classical(sigma: float):
    """name -> (function of (image, parameter), candidate parameters)."""
    import bm3d
    from skimage.filters import gaussian
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    return {
        "gaussian blur": (lambda x, s: gaussian(x, sigma=s), [0.5, 0.7, 1.0, 1.4]),
        "total variation": (
            lambda x, w: denoise_tv_chambolle(x, weight=w),
            [0.04, 0.07, 0.1, 0.15, 0.2],
        ),
        "non-local means": (
            lambda x, h: denoise_nl_means(
                x, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True
            ),
            [0.6, 0.8, 1.0, 1.2],
        ),
        "bm3d": (lambda x, f: bm3d.bm3d(x, sigma_psd=f * sigma), [1.0]),
    }


def tune(fn, params, val_clean, val_noisy):
    """The parameter of the best validation PSNR (the only one, without a search)."""
    if len(params) == 1:
        return params[0]

    def psnr(p) -> float:
        return scores(val_clean, per_image(lambda x: fn(x, p), val_noisy))["psnr"]

    return max(params, key=psnr)


def main() -> None:
    import aekit
    from aekit.data import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--sigma", type=float, default=25.0, help="of 255")
    ap.add_argument("--epochs", type=int, default=30, help="for each aekit model")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    sigma = args.sigma / 255
    rng = np.random.default_rng(0)
    train = load_dataset("mnist", data_dir=data_dir(), split="train", limit=args.train + 50)
    test = load_dataset("mnist", data_dir=data_dir(), split="test", limit=args.test)
    X_train = (train.X[: args.train] / 255).reshape(-1, 28, 28).astype(np.float32)
    val = (train.X[args.train :] / 255).reshape(-1, 28, 28).astype(np.float32)
    clean = (test.X / 255).reshape(-1, 28, 28).astype(np.float32)
    noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
    val_noisy = (val + sigma * rng.standard_normal(val.shape)).astype(np.float32)
    noisy_train = (X_train + sigma * rng.standard_normal(X_train.shape)).astype(np.float32)

    rows: dict[str, dict] = {"noisy input": {**scores(clean, noisy), "seconds": 0.0}}
    for name, (fn, params) in classical(sigma).items():
        p = tune(fn, params, val, val_noisy)
        t0 = time.perf_counter()
        out = per_image(lambda x, p=p, fn=fn: fn(x, p), noisy)
        rows[name] = {**scores(clean, out), "seconds": time.perf_counter() - t0, "param": p}
        print(name, rows[name], flush=True)

    from sklearn.decomposition import PCA

    flat = X_train.reshape(len(X_train), -1)

    def pca_psnr(k: int) -> float:
        p = PCA(k).fit(flat)
        out = p.inverse_transform(p.transform(val_noisy.reshape(len(val), -1)))
        return scores(val, out.reshape(val.shape))["psnr"]

    best_k = max((16, 32, 64, 128), key=pca_psnr)
    pca = PCA(best_k).fit(flat)
    t0 = time.perf_counter()
    out = pca.inverse_transform(pca.transform(noisy.reshape(len(noisy), -1))).reshape(clean.shape)
    rows["pca projection"] = {**scores(clean, out), "seconds": time.perf_counter() - t0,
                              "param": best_k}  # fmt: skip
    print("pca", rows["pca projection"], flush=True)

    noise = f"gaussian:{args.sigma:g}/255"
    models = {
        "aekit denoising (dense, clean data)": ("denoising", X_train, {"noise": noise}),
        "aekit dncnn (clean data)": ("dncnn", X_train, {"noise": noise}),
        "aekit blindspot (noisy data only)": ("blindspot", noisy_train, {}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label, (preset, data, options) in models.items():
            t0 = time.perf_counter()
            run = aekit.train(data, out=Path(tmp) / preset, model=preset, epochs=args.epochs,
                              scale="none", progress=False, model_options=options)  # fmt: skip
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = aekit.denoise(run.out, noisy, units="as-is")
            rows[label] = {**scores(clean, out), "seconds": time.perf_counter() - t0,
                           "train_seconds": fit_s, "epochs": run.state.epoch}  # fmt: skip
            print(label, rows[label], flush=True)

    result = {
        "data": f"MNIST: first {args.train} train images (training; the next 50 noisy ones tune "
        f"the classical parameters), first {args.test} test images",
        "noise": f"additive Gaussian, sigma {args.sigma:g}/255, unclipped, seed 0",
        "metric": "PSNR (dB) and SSIM on 8-bit outputs (clipped, rounded), mean per image",
        "epochs": args.epochs,
        "rows": rows,
    }
    print(save_result("denoising" + (f"_{args.tag}" if args.tag else ""), result))


if __name__ == "__main__":
    main()
