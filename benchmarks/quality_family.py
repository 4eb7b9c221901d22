"""Issue 4, point 8: the autoencoder family's quality on MNIST (run by hand, never by the tests).

Items (``--items``, default all; each writes benchmarks/results/quality_family_<item>.json):

- ``vae``: a dense VAE on dynamically binarised MNIST (a fresh Bernoulli draw of the training
  images every epoch), trained for at most ``--minutes`` each, once on the ELBO and once on the
  IWAE bound (``--iwae``); scored by the importance-sampled NLL (``--samples`` >= 1000) on the
  full test split, binarised once with seed 0. Target: NLL <= 88.5 nats within one hour.
- ``conv``: the conv preset, latent 16, 20 epochs, by default with one dense layer of 256
  before the code and the BCE loss (``--conv-hidden``, ``--conv-loss``; the plain preset with
  MSE reached 0.00735, this 0.00643). Target: test MSE <= 0.0065 per pixel.
- ``denoise``: a denoising conv model trained on gaussian:0.5:clip noise; test digits with the
  same noise (seed 0). Target: mean PSNR vs clean >= 19.5 dB. Reported beside it, on the same
  noisy images: scikit-image's TV denoising (Chambolle) at its best weight and non-local means
  at its best h (both chosen on the test images, which flatters them).
- ``sparse``: rho = 0.05 on a sigmoid code. Targets: mean code activation within 20% of rho,
  test MSE <= 1.25x the same model trained without the penalty.
- ``contractive``: Targets: mean ||J_f(x)||_F^2 on test data at most half of the same model
  without the penalty, test MSE <= 1.25x.

    python benchmarks/quality_family.py --items conv sparse
    python benchmarks/quality_family.py --items vae --limit 2000 --epochs 1 --samples 10  # smoke
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from _common import data_dir, mnist, save_result

import aekit
from aekit.apps import generation as variational
from aekit.data.noise import binarize, corrupt
from aekit.functional.losses import reconstruction_metrics
from aekit.nn import MODELS, build_model, jacobian_frobenius_sq
from aekit.training import TrainConfig, TrainState, evaluate_loss, fit, make_optimizer

IMAGE = (1, 28, 28)
NOISE = "gaussian:0.5:clip"


def train_run(args, model: str, epochs: int, lr: float | None = None, **options):
    """Train through aekit.train (the CLI's path) on MNIST's training split: (model, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = aekit.train(
            "mnist",
            out=f"{tmp}/run",
            model=model,
            data_dir=data_dir(),
            limit=args.limit,
            val_fraction=0.0,
            progress=not args.quiet,
            model_options=options,
            epochs=epochs,
            batch_size=args.batch_size,
            lr=lr or args.lr,
            seed=args.seed,
        )
        return run.model, time.perf_counter() - t0


def test_images(args) -> np.ndarray:
    return mnist("test")[: args.test_limit]


def mse_of(model, X: np.ndarray) -> float:
    return float(np.mean((model.reconstruct_scaled(X).astype(np.float64) - X) ** 2))


# ---- vae ----------------------------------------------------------------------------------------


def objective_name(k: int) -> str:
    return "elbo" if k == 1 else f"iwae-{k}"


def train_vae(args, iwae: int):
    """Dynamic binarisation: one fit() call per epoch, each on a fresh Bernoulli draw."""
    torch.manual_seed(args.seed)
    model = build_model(
        "vae",
        784,
        hidden=args.vae_hidden,
        latent_dim=args.vae_latent,
        kl_warmup=args.kl_warmup,
        iwae_samples=iwae,
        image_shape=IMAGE,
    )
    X = mnist("train")[: args.limit]
    opt = make_optimizer("adam", model.parameters(), args.vae_lr)
    state, t0, budget = TrainState(), time.perf_counter(), args.minutes * 60
    fixed = args.epochs or args.vae_epochs  # a fixed plan; else as many epochs as the budget holds
    epoch = 0
    while fixed is None or epoch < fixed:
        elapsed = time.perf_counter() - t0
        if epoch and elapsed * (epoch + 1) / epoch > budget:  # the next epoch would overrun
            break
        # geometric decay from lr to lr / 10 over the plan: its epochs, or else the budget's time
        progress = epoch / max(1, fixed - 1) if fixed else min(1.0, elapsed / budget)
        for group in opt.param_groups:
            group["lr"] = args.vae_lr * 0.1**progress
        X_bin = binarize(X, seed=args.seed * 1_000_003 + epoch)
        config = TrainConfig(epochs=epoch + 1, batch_size=args.vae_batch_size, seed=args.seed)
        state = fit(
            model, X_bin, config=config, optimizer=opt, state=state, progress=not args.quiet
        )
        epoch += 1
        if args.quiet and epoch % 25 == 0:  # a heartbeat for logs
            print(
                f"  {objective_name(iwae)} epoch {epoch}: {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    return model, state, time.perf_counter() - t0


def vae_row(args, k: int) -> dict:
    """Train one VAE (k = 1: ELBO, k > 1: IWAE-k) and score it by importance sampling."""
    if args.threads:
        torch.set_num_threads(args.threads)
    X_test = binarize(test_images(args), seed=0)
    model, state, seconds = train_vae(args, k)
    t0 = time.perf_counter()
    nll = variational.nll(model, X_test, args.samples, seed=0)
    row = {
        "objective": objective_name(k),
        "epochs_run": state.epoch,
        "train_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "test_bound": evaluate_loss(model.eval(), torch.from_numpy(X_test)),
        "test_nll": nll,
        "nll_samples": args.samples,
        "nll_seconds": time.perf_counter() - t0,
    }
    row["pass"] = nll <= 88.5 and seconds <= 3600
    print(f"vae {row['objective']}: NLL {nll:.2f} nats in {seconds:.0f} s ({_ok(row)})")
    print(json.dumps(row), flush=True)  # each row as soon as it is known
    return row


def bench_vae(args) -> dict:
    """The objectives one after another, or with ``--parallel`` side by side, one process each
    (``--threads`` torch threads apiece: 1 each shares the 2 cores evenly)."""
    if args.parallel:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(len(args.iwae), mp_context=get_context("spawn")) as pool:
            rows = list(pool.map(vae_row, [args] * len(args.iwae), args.iwae))
    else:
        rows = [vae_row(args, k) for k in args.iwae]
    settings = {k: getattr(args, k) for k in ("vae_hidden", "vae_latent", "kl_warmup", "vae_lr")}
    settings.update(parallel=args.parallel, minutes=args.minutes)
    return {"target": "NLL <= 88.5 nats, trained within 3600 s", "settings": settings, "rows": rows}


# ---- conv and denoising ---------------------------------------------------------------------


def bench_conv(args) -> dict:
    epochs = args.epochs or 20
    options = dict(latent_dim=16, channels=args.channels, hidden=args.conv_hidden)
    model, seconds = train_run(args, "conv", epochs, loss=args.conv_loss, **options)
    mse = mse_of(model, test_images(args))
    row = {"epochs": epochs, "train_seconds": seconds, "test_mse": mse}
    row["pass"] = mse <= 0.0065 and epochs <= 20
    print(f"conv latent 16: test MSE {mse:.5f} per pixel ({_ok(row)})")
    settings = {**options, "loss": args.conv_loss, "lr": args.lr}
    return {"target": "test MSE <= 0.0065 within 20 epochs", "settings": settings, **row}


def psnr(images: np.ndarray, clean: np.ndarray) -> float:
    t = torch.from_numpy
    return reconstruction_metrics(t(images.astype(np.float32)), t(clean))["psnr"]


def classical(noisy: np.ndarray, clean: np.ndarray) -> dict:
    """TV (Chambolle) and non-local means, each at the best of a small grid of strengths."""
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    imgs = noisy.reshape(-1, 28, 28).astype(np.float64)
    out = {}
    for name, fn, grid in (
        (
            "tv_chambolle",
            lambda im, w: denoise_tv_chambolle(im, weight=w),
            (0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
        ),
        (
            "nl_means",
            lambda im, h: denoise_nl_means(im, h=h, patch_size=5, patch_distance=6),
            (0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
        ),
    ):
        scores = {
            w: psnr(np.stack([fn(im, w) for im in imgs]).reshape(len(imgs), -1), clean)
            for w in grid
        }
        best = max(scores, key=scores.get)
        out[name] = {"best_strength": best, "psnr": scores[best], "grid": scores}
        print(f"  {name}: {scores[best]:.2f} dB at strength {best}")
    return out


def bench_denoise(args) -> dict:
    epochs = args.epochs or 20
    options = dict(latent_dim=args.denoise_latent, channels=args.channels, noise=NOISE)
    options.update(hidden=args.conv_hidden, loss=args.conv_loss)
    model, seconds = train_run(args, "conv", epochs, **options)
    clean = test_images(args)
    noisy = corrupt(clean, NOISE, seed=0)
    ours = psnr(model.reconstruct_scaled(noisy), clean)
    row = {"epochs": epochs, "train_seconds": seconds, "noisy_psnr": psnr(noisy, clean)}
    row.update({"psnr": ours, "pass": ours >= 19.5})
    print(f"denoising conv: {ours:.2f} dB (noisy input {row['noisy_psnr']:.2f} dB) ({_ok(row)})")
    try:
        row["classical"] = classical(noisy[: args.classical_limit], clean[: args.classical_limit])
    except ImportError:
        row["classical"] = "scikit-image is not installed: pip install scikit-image"
    target = f"mean PSNR >= 19.5 dB on noise {NOISE} (seed 0)"
    return {"target": target, "settings": options, **row}


# ---- penalties -------------------------------------------------------------------------------


def pair(args, preset: str, weight_field: str, weight: float, **options):
    """The preset with its penalty weight, and the same model and seed without the penalty."""
    epochs = args.epochs or 20
    lr = args.penalty_lr  # sigmoid codes learn slowly at 1e-3
    return [
        train_run(args, preset, epochs, lr, **{**options, weight_field: w})[0]
        for w in (weight, 0.0)
    ]


def bench_sparse(args) -> dict:
    rho = 0.05
    opts = dict(latent_dim=args.sparse_latent, hidden=(256,), sparse_target=rho)
    weight = _weight(args.sparse_weight, "sparse", "sparse_weight")
    model, plain = pair(args, "sparse", "sparse_weight", weight, **opts)
    X = test_images(args)
    activation = float(model.encode_scaled(X).mean())
    ratio = mse_of(model, X) / mse_of(plain, X)
    row = {"mean_activation": activation, "test_mse": mse_of(model, X), "mse_ratio": ratio}
    row["pass"] = abs(activation - rho) <= 0.2 * rho and ratio <= 1.25
    print(
        f"sparse: mean activation {activation:.4f} (rho {rho}), MSE ratio {ratio:.3f} ({_ok(row)})"
    )
    settings = {**opts, "sparse_weight": weight}
    return {"target": "|mean - rho| <= 0.2 rho, MSE <= 1.25x", "settings": settings, **row}


def mean_jacobian(model, X: np.ndarray, batch: int = 1000) -> float:
    t = torch.from_numpy(X)
    with torch.no_grad():
        total = sum(
            float(jacobian_frobenius_sq(model, t[i : i + batch], "auto")) * len(t[i : i + batch])
            for i in range(0, len(t), batch)
        )
    return total / len(t)


def bench_contractive(args) -> dict:
    opts = dict(latent_dim=args.contractive_latent)
    weight = _weight(args.contractive_weight, "contractive", "contractive_weight")
    model, plain = pair(args, "contractive", "contractive_weight", weight, **opts)
    X = test_images(args)
    j, j0 = mean_jacobian(model, X), mean_jacobian(plain, X)
    ratio = mse_of(model, X) / mse_of(plain, X)
    row = {"jacobian": j, "jacobian_plain": j0, "jacobian_ratio": j / j0, "mse_ratio": ratio}
    row["pass"] = j / j0 <= 0.5 and ratio <= 1.25
    print(f"contractive: ||J||^2 {j:.3f} vs {j0:.3f}, MSE ratio {ratio:.3f} ({_ok(row)})")
    settings = {**opts, "contractive_weight": weight}
    return {"target": "||J||^2 halved, MSE <= 1.25x", "settings": settings, **row}


ITEMS = {
    "vae": bench_vae,
    "conv": bench_conv,
    "denoise": bench_denoise,
    "sparse": bench_sparse,
    "contractive": bench_contractive,
}


def _weight(given: float | None, preset: str, field: str) -> float:
    """The penalty weight asked for, else the preset's."""
    return MODELS[preset].defaults[field] if given is None else given


def _ok(row: dict) -> str:
    return "PASS" if row["pass"] else "FAIL"


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",")) if text else ()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", nargs="+", choices=list(ITEMS), default=list(ITEMS))
    p.add_argument("--epochs", type=int, help="override every item's epochs (smoke runs)")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, help="use only the first N test images")
    p.add_argument("--classical-limit", type=int, help="test images for the classical filters")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--channels", type=_sizes, default=(32, 64), help="conv feature maps")
    p.add_argument(
        "--conv-hidden", type=_sizes, default=(256,), help="dense widths before the code"
    )
    p.add_argument("--conv-loss", choices=("mse", "bce"), default="bce")
    p.add_argument("--denoise-latent", type=int, default=64)
    p.add_argument("--sparse-latent", type=int, default=64)
    p.add_argument("--penalty-lr", type=float, default=3e-3, help="lr of sparse, contractive")
    p.add_argument("--sparse-weight", type=float, help="default: the sparse preset's")
    p.add_argument("--contractive-latent", type=int, default=64)
    p.add_argument("--contractive-weight", type=float, help="default: the preset's")
    p.add_argument("--vae-hidden", type=_sizes, default=(512, 256))
    p.add_argument("--vae-latent", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--vae-batch-size", type=int, default=100)
    p.add_argument(
        "--vae-epochs",
        type=int,
        help="a fixed number of epochs, the lr decaying over them (default: as many as --minutes"
        " holds, the lr decaying with the time spent)",
    )
    p.add_argument("--kl-warmup", type=int, default=10)
    p.add_argument("--minutes", type=float, default=58.0, help="training budget per VAE")
    p.add_argument("--iwae", type=int, nargs="+", default=[1, 3], help="1 = ELBO; k > 1 IWAE")
    p.add_argument("--samples", type=int, default=1000, help="importance samples for the NLL")
    p.add_argument("--parallel", action="store_true", help="train the --iwae objectives at once")
    p.add_argument("--tag", help="write quality_family_<item>_<tag>.json (a side experiment)")
    p.add_argument("--threads", type=int, help="torch threads per VAE (default: torch's)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    for item in args.items:
        result = {"item": item, "limit": args.limit, "test_limit": args.test_limit}
        result.update(ITEMS[item](args))
        smoke = args.limit or args.test_limit or args.epochs  # never over a full result
        name = f"quality_family_{item}" + (f"_{args.tag}" if args.tag else "")
        name += "_smoke" if smoke else ""
        print(f"wrote {save_result(name, result)}")


if __name__ == "__main__":
    main()
