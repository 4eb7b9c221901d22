"""Learned image compression vs JPEG, WebP and PNG on all 10,000 MNIST test images (issue 11).

aekit: the "compress" preset (conv encoder, quantised 128-wide code, factorized entropy
model), trained on the 60,000 MNIST train images through aekit's loop: one base model at
``--base-beta`` for ``--epochs`` epochs, then one copy fine-tuned for ``--finetune`` epochs
at each beta of ``--betas`` (in ``--jobs`` processes of one thread). Each model compresses
the 10,000 test images into ONE .aek file with :func:`aekit.compress`; bpp counts every byte
of that file (header included) over 10,000 x 784 pixels; the file is decoded with
:func:`aekit.decompress` and must equal the model's own reconstruction bit for bit. Each model
also writes one file per residual step of ``--steps`` (``aekit.compress(..., step=q)``: every
pixel within q/2, lossless at q = 1), decoded bit for bit as
:func:`aekit.apps.compression.reconstruction` computes it. aekit's curve is the upper envelope
of all its points (a user picks the beta and step that give the best PSNR at a rate).

Beside it, in the same run, Pillow: JPEG per image and as one 2800 x 2800 mosaic of all the
images (one header: JPEG's best case; optimize=True), WebP per image, PNG per image and as
the mosaic (lossless). Every codec is scored on its 8-bit output (aekit's reconstructions
rounded to 8 bits, as the PNGs ``aekit decompress`` writes): PSNR of the mean squared error
over the set (peak 255) and mean SSIM (torchmetrics' Gaussian window). Targets: aekit's PSNR
at least 3 dB above JPEG-mosaic's at every rate both curves reach (linear interpolation in
bpp), and above WebP-per-image's at every rate both reach.

    OMP_NUM_THREADS=1 python benchmarks/compression.py            # ~20-30 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/compression.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, data_dir, save_result

JPEG_QUALITIES = (5, 10, 20, 30, 50, 75, 90)
WEBP_QUALITIES = (0, 10, 30, 50, 80)


def load(split: str, limit: int | None) -> np.ndarray:
    from aekit.data import load_dataset

    X = load_dataset("mnist", data_dir=data_dir(), split=split).X
    return X[:limit] if limit else X  # raw 0..255, float32


def scores(decoded_u8: np.ndarray, X: np.ndarray) -> dict:
    from aekit.functional.rate import mean_psnr, mean_ssim

    a = decoded_u8.reshape(len(X), -1)
    psnr = mean_psnr(a, X, 255.0)  # float64 sums
    return {
        "psnr": psnr if np.isfinite(psnr) else None,  # None: lossless (JSON has no inf)
        "ssim": mean_ssim(a.astype(np.float32), X, (1, 28, 28), 255.0),  # float32: 2x faster
    }


# ---- aekit ---------------------------------------------------------------------------------


def train(model, X_raw: np.ndarray, epochs: int, seed: int, lr: float) -> float:
    from aekit.training import TrainConfig, fit

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    config = TrainConfig(epochs=epochs, seed=seed, lr=lr)
    fit(model, model.scaler.transform(X_raw), config=config)
    return time.perf_counter() - t0


def base_model(args, X_train: np.ndarray, path: Path) -> float:
    import aekit
    from aekit.data import Scaler

    torch.manual_seed(args.seed)
    model = aekit.build_model(
        "compress", 784, image_shape=(1, 28, 28), beta=args.base_beta, latent_dim=args.latent_dim
    )
    model.scaler = Scaler.fit(X_train, "image", max_value=255.0)
    seconds = train(model, X_train, args.epochs, args.seed, args.lr)
    aekit.save(model, path)
    return seconds


def finetune_and_measure(job: tuple) -> list[dict]:
    """One beta: fine-tune a copy of the base model, compress the test set (the code alone,
    then with a residual layer at each step), decode, check, score."""
    import aekit
    from aekit.apps.compression import reconstruction
    from aekit.nn.latent.quantized import QuantizedSettings

    torch.set_num_threads(1)
    base, beta, epochs, seed, lr, train_limit, test_limit, steps = job
    X_train, X_test = load("train", train_limit), load("test", test_limit)
    model = aekit.load(base)
    # the rate weight: the latent reads its settings each step
    model.config.latent_settings = QuantizedSettings(rate_weight=beta)
    seconds = train(model, X_train, epochs, seed, lr) if epochs else 0.0
    model.eval()
    rows = []
    for step in [None, *steps]:
        t0 = time.perf_counter()
        data = aekit.compress(model, X_test, step=step)
        t1 = time.perf_counter()
        X_hat = aekit.decompress(model, data)
        t2 = time.perf_counter()
        exact = bool(np.array_equal(X_hat, reconstruction(model, X_test, step)))
        u8 = np.clip(np.rint(X_hat), 0, 255).astype(np.uint8)
        rows.append(
            {
                "codec": "aekit",
                "beta": beta,
                "step": step,
                "bytes": len(data),
                "bpp": 8 * len(data) / X_test.size,
                **scores(u8, X_test),
                "max_abs_error": float(np.abs(X_hat.astype(np.float64) - X_test).max()),
                "bit_exact": exact,
                "finetune_seconds": seconds,
                "encode_images_per_s": len(X_test) / (t1 - t0),
                "decode_images_per_s": len(X_test) / (t2 - t1),
            }
        )
    return rows


# ---- Pillow -------------------------------------------------------------------------------


def pillow_bytes(image: np.ndarray, fmt: str, **options) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **options)
    return buf.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def mosaic(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> one (rows * 28, 100 * 28) image, N padded with black to a multiple of 100."""
    n = len(images)
    cols = 100 if n >= 100 else n
    rows = -(-n // cols)
    padded = np.zeros((rows * cols, 28, 28), np.uint8)
    padded[:n] = images
    return padded.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def unmosaic(image: np.ndarray, n: int) -> np.ndarray:
    rows, cols = image.shape[0] // 28, image.shape[1] // 28
    tiles = image.reshape(rows, 28, cols, 28).transpose(0, 2, 1, 3).reshape(-1, 28, 28)
    return tiles[:n]


def baselines(X: np.ndarray) -> list[dict]:
    images = X.reshape(-1, 28, 28).astype(np.uint8)
    big = mosaic(images)
    runs = [("jpeg-mosaic", "JPEG", q, dict(quality=q, optimize=True)) for q in JPEG_QUALITIES]
    runs += [("jpeg-per-image", "JPEG", q, dict(quality=q, optimize=True)) for q in (10, 50, 90)]
    runs += [("webp-per-image", "WEBP", q, dict(quality=q, method=6)) for q in WEBP_QUALITIES]
    runs += [("png-per-image", "PNG", None, dict(optimize=True)), ("png-mosaic", "PNG", None, {})]
    out = []
    for codec, fmt, q, options in runs:
        t0 = time.perf_counter()
        if codec.endswith("mosaic"):
            data = pillow_bytes(big, fmt, **options)
            n_bytes, decoded = len(data), unmosaic(pillow_decode(data), len(images))
        else:
            blobs = [pillow_bytes(im, fmt, **options) for im in images]
            n_bytes, decoded = sum(map(len, blobs)), np.stack([pillow_decode(b) for b in blobs])
        row = {"codec": codec, "quality": q, "bytes": n_bytes, "bpp": 8 * n_bytes / X.size}
        row.update(scores(decoded, X), seconds=time.perf_counter() - t0)
        out.append(row)
        print(f"{codec:15s} q={q!s:4s} {row['bpp']:.3f} bpp PSNR {row['psnr']} dB", flush=True)
    return out


def timed_baselines(test_limit: int | None, reuse: str | None) -> tuple[list[dict], float]:
    """Pillow's rows, measured here, or read from an earlier result of the same images
    (``--pillow-from``: Pillow's codecs are deterministic, so only aekit is re-measured)."""
    if reuse:
        import json

        old = json.loads(Path(reuse).read_text())
        return [r for r in old["rows"] if r["codec"] != "aekit"], old["baseline_seconds"]
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = baselines(load("test", test_limit))
    return rows, time.perf_counter() - t0


# ---- targets and figure ----------------------------------------------------------------------


def curve(rows: list[dict], codec: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codec's finite-PSNR points on its upper envelope (no point beaten by a cheaper one):
    the rates a user reaches by picking the best setting, sorted by bpp."""
    pts = sorted((r["bpp"], r["psnr"], r["ssim"]) for r in rows if r["codec"] == codec)
    front = []
    for pt in pts:
        if pt[1] is not None and (not front or pt[1] > front[-1][1]):
            front.append(pt)
    return tuple(np.array(v) for v in zip(*front, strict=True))  # type: ignore[return-value]


def lossless_bpp(rows: list[dict], codec: str) -> float | None:
    rates = [r["bpp"] for r in rows if r["codec"] == codec and r["psnr"] is None]
    return min(rates) if rates else None


def min_gap(rows: list[dict], other: str) -> dict:
    """min over the rates both curves reach of PSNR_aekit(r) - PSNR_other(r) (linear in bpp).

    Once aekit reaches lossless coding, every higher rate counts as reached: there aekit's PSNR
    is at least its best finite point's (np.interp holds the last value), a lower bound.
    """
    ra, pa, _ = curve(rows, "aekit")
    rb, pb, _ = curve(rows, other)
    top = rb[-1] if lossless_bpp(rows, "aekit") is not None else ra[-1]
    lo, hi = max(ra[0], rb[0]), min(top, rb[-1])
    if lo > hi:
        return {"overlap_bpp": None, "min_gap_db": None, "at_bpp": None}
    grid = np.unique(
        np.concatenate([[lo, hi], ra[(ra >= lo) & (ra <= hi)], rb[(rb >= lo) & (rb <= hi)]])
    )
    gaps = np.interp(grid, ra, pa) - np.interp(grid, rb, pb)
    k = int(np.argmin(gaps))
    return {
        "overlap_bpp": [float(lo), float(hi)],
        "min_gap_db": float(gaps[k]),
        "at_bpp": float(grid[k]),
        "gaps_db": {f"{r:.3f}": float(g) for r, g in zip(grid, gaps, strict=True)},
    }


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    codecs = ["aekit", "jpeg-mosaic", "jpeg-per-image", "webp-per-image"]
    for codec in codecs:
        r, p, s = curve(rows, codec)
        label = codec if codec != "aekit" else "aekit (envelope of every beta and step)"
        axes[0].plot(r, p, "o-", label=label)
        axes[1].plot(r, s, "o-", label=label)
    code_only = [r for r in rows if r["codec"] == "aekit" and r.get("step") is None]
    for ax, key in zip(axes, ("psnr", "ssim"), strict=True):
        pts = sorted((r["bpp"], r[key]) for r in code_only)
        ax.plot(*zip(*pts, strict=True), "x:", c="grey", label="aekit, code alone (per beta)")
    lossless = lossless_bpp(rows, "aekit")
    if lossless is not None:
        for ax in axes:
            ax.axvline(lossless, ls="--", c="C0")
        axes[0].annotate("aekit lossless", (lossless, axes[0].get_ylim()[0]), rotation=90)
    for codec in ("png-per-image", "png-mosaic"):
        for row in rows:
            if row["codec"] == codec:
                for ax in axes:
                    ax.axvline(row["bpp"], ls=":", c="grey")
                axes[0].annotate(codec, (row["bpp"], axes[0].get_ylim()[0]), rotation=90)
    for ax, what in zip(axes, ("PSNR (dB, 8-bit output)", "SSIM"), strict=True):
        ax.set_xlabel("bits per pixel (every byte)")
        ax.set_ylabel(what)
        ax.set_xlim(0, 4)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("MNIST test (10,000 images): rate-distortion")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ---- main ---------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--betas", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1, 3, 10])
    p.add_argument("--base-beta", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=3, help="epochs of the base model")
    p.add_argument("--finetune", type=int, default=1, help="epochs at each beta")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent-dim", type=int, default=128)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2,000 train / 1,000 test images, 1 epoch")
    p.add_argument("--name", default="compression")
    p.add_argument("--pillow-from", help="reuse the Pillow rows of this earlier result file")
    p.add_argument(
        "--steps",
        type=float,
        nargs="*",
        default=[32, 16, 8, 4, 2, 1],
        help="residual steps (pixel levels) coded with every beta's model; 1 = lossless",
    )
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    train_limit, test_limit = (2000, 1000) if args.quick else (None, None)
    if args.quick:
        args.epochs, args.finetune, args.betas, args.steps = 1, 1, [0.1, 1.0], [16, 1]
    torch.set_num_threads(1)
    X_train = load("train", train_limit)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool,
    ):
        # Pillow's codecs in a worker while the base model trains here
        pillow = pool.submit(timed_baselines, test_limit, args.pillow_from)
        base = Path(tmp) / "base"
        base_seconds = base_model(args, X_train, base)
        print(f"base model: {args.epochs} epochs in {base_seconds:.0f} s", flush=True)
        jobs = [
            (base, b, args.finetune, args.seed, args.lr, train_limit, test_limit, args.steps)
            for b in args.betas
        ]
        rows, baseline_seconds = [], 0.0
        for beta_rows in pool.map(finetune_and_measure, jobs):
            rows.extend(beta_rows)
            for row in beta_rows:
                print(
                    f"aekit beta={row['beta']:<6g} step={row['step']!s:5s} {row['bpp']:.3f} bpp "
                    f"{row['psnr'] or float('inf'):.2f} dB SSIM {row['ssim']:.4f} "
                    f"exact={row['bit_exact']}",
                    flush=True,
                )
        pillow_rows, baseline_seconds = pillow.result()
        rows = pillow_rows + rows
    X_test = load("test", test_limit)
    targets = {
        "jpeg_mosaic_plus_3db": min_gap(rows, "jpeg-mosaic"),
        "above_webp_per_image": min_gap(rows, "webp-per-image"),
    }
    targets["met_jpeg"] = (targets["jpeg_mosaic_plus_3db"]["min_gap_db"] or -1) >= 3
    targets["met_webp"] = (targets["above_webp_per_image"]["min_gap_db"] or -1) > 0
    targets["all_bit_exact"] = all(r["bit_exact"] for r in rows if r["codec"] == "aekit")
    targets["aekit_lossless_bpp"] = lossless_bpp(rows, "aekit")
    targets["within_half_a_step"] = all(
        r["max_abs_error"] <= r["step"] / 2 for r in rows if r["codec"] == "aekit" and r["step"]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure(rows, RESULTS / f"{args.name}.png")
    path = save_result(
        args.name,
        {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "images": len(X_test),
            "base_train_seconds": base_seconds,
            "baseline_seconds": baseline_seconds,
            "rows": rows,
            "targets": targets,
        },
    )
    for key, value in targets.items():
        print(
            key,
            value
            if not isinstance(value, dict)
            else {k: v for k, v in value.items() if k != "gaps_db"},
        )
    print(f"wrote {path} and {RESULTS / (args.name + '.png')}")


if __name__ == "__main__":
    main()
