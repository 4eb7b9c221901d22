"""Issue 12, point 2: how good aekit's generated MNIST digits are (run by hand, never by the tests).

Every generator draws ``--n`` (10,000) images; a small conv classifier trained once with aekit's
loop (benchmarks/_classifier.py, >= 99% test accuracy, cached as safetensors) embeds them, and
the score is the Frechet distance ("FD") between the Gaussians of its penultimate features of
the samples and of the 10,000 MNIST test images, beside the entropy (nats) of the samples'
predicted-class histogram (ln 10 = 2.303 when all ten digits appear equally often).

Generators, each trained through ``aekit.train`` on the 60,000 training images (no validation):

- ``dense VAE``: the vae preset, 512-256, latent 32, sampled from its N(0, I) prior;
- ``dense VAE + mixture``: the same VAE, sampled from a Gaussian mixture fitted on its
  posterior means (``aekit fit-density``: a two-stage VAE with a mixture as second stage);
- ``conv VAE``: the conv-vae preset (channels 32, 64, a dense 256), latent 32, prior;
- ``dense AE + mixture``: a deterministic 512-256 autoencoder, latent 16, BCE, sampled from a
  mixture fitted on its codes (what ``aekit sample`` does for a deterministic run);
- ``PCA + mixture``: PCA to the AE's latent size, the same mixture on its scores, decoded by
  the inverse transform (clipped to [0, 1]);
- ``train split``: 10,000 training images, the floor any generator can reach.

Target: aekit's best FD <= half the plain dense VAE's in the same run, and far below PCA's.

    OMP_NUM_THREADS=1 python benchmarks/generation.py
    OMP_NUM_THREADS=1 python benchmarks/generation.py --quick   # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _classifier import load_or_train
from _common import RESULTS, data_dir, save_result

import aekit
from aekit.apps import generation
from aekit.apps.density import CodeDensity
from aekit.data import load_dataset
from aekit.functional.frechet import feature_statistics, frechet_distance
from aekit.views.figures import image_rows, save_figure


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="samples per generator")
    p.add_argument("--vae-epochs", type=int, default=20)
    p.add_argument("--conv-epochs", type=int, default=4)
    p.add_argument("--ae-epochs", type=int, default=20)
    p.add_argument("--ae-latent", type=int, default=16)
    p.add_argument("--components", type=int, default=10, help="mixture components")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--runs", help="keep the runs in this folder (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="keep finished runs found in --runs")
    p.add_argument("--quick", action="store_true", help="smoke run: small data, 1 epoch each")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.limit = min(args.n, 1000), args.limit or 2000
        args.vae_epochs = args.conv_epochs = args.ae_epochs = 1
    return args


def load_mnist(split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("mnist", data_dir=data_dir(), split=split, limit=limit)
    return ds.X / np.float32(255), ds.labels


class Scorer:
    """FD and class entropy of image sets against the test images' classifier features."""

    def __init__(self, classifier, X_test: np.ndarray) -> None:
        self.classifier = classifier
        self.test_stats = feature_statistics(classifier.embed(X_test)[0])

    def __call__(self, X: np.ndarray) -> dict:
        feats, probs = self.classifier.embed(np.clip(X, 0, 1).astype(np.float32))
        counts = np.bincount(probs.argmax(1), minlength=10)
        share = counts / counts.sum()
        entropy = 0.0 - float(np.sum(share[share > 0] * np.log(share[share > 0])))
        return {
            "fd": frechet_distance(*feature_statistics(feats), *self.test_stats),
            "class_entropy_nats": entropy,
            "class_counts": counts.tolist(),
            "mean_max_prob": float(probs.max(1).mean()),
        }


def train_run(args, out: Path, model: str, epochs: int, **options) -> float:
    """Train into ``out`` and return the seconds; with --reuse, a finished run is kept."""
    if args.reuse and (out / "model.safetensors").is_file():
        history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        print(f"reusing {out} ({len(history)} epochs)", flush=True)
        return sum(r["seconds"] for r in history)
    t0 = time.perf_counter()
    aekit.train(
        "mnist", out=out, model=model, data_dir=data_dir(), limit=args.limit, val_fraction=0.0,
        model_options=options, epochs=epochs, batch_size=100, lr=1e-3, seed=args.seed,
        device="cpu",
    )  # fmt: skip
    return time.perf_counter() - t0


def generators(args, runs: Path, X_train: np.ndarray):
    """(name, what, seconds of training + fitting, samples (n, 784)) for each generator."""
    n, seed, k = args.n, args.seed, args.components
    idx = np.random.default_rng(seed).choice(len(X_train), min(n, len(X_train)), replace=False)
    yield "train split", "floor: training images", 0.0, X_train[idx]

    vae = runs / "vae"
    s = train_run(args, vae, "vae", args.vae_epochs, hidden=(512, 256), latent_dim=32)
    what = "vae 512-256, latent 32, prior"
    yield "dense VAE", what, s, generation.sample_run(vae, n, seed, "prior")[0]
    t0 = time.perf_counter()
    generation.fit_density(vae, n_components=k, seed=seed, limit=args.limit, device="cpu")
    s += time.perf_counter() - t0
    what = f"the same VAE, {k}-component mixture on its posterior means"
    yield "dense VAE + mixture", what, s, generation.sample_run(vae, n, seed, "density")[0]

    conv = runs / "conv-vae"
    s = train_run(args, conv, "conv-vae", args.conv_epochs, hidden=(256,), latent_dim=32)
    what = "conv-vae 32-64 + dense 256, latent 32, prior"
    yield "conv VAE", what, s, generation.sample_run(conv, n, seed, "prior")[0]

    ae = runs / "ae"
    latent = args.ae_latent
    opts = dict(hidden=(512, 256), latent_dim=latent, loss="bce")
    s = train_run(args, ae, "dense", args.ae_epochs, **opts)
    t0 = time.perf_counter()
    generation.fit_density(ae, n_components=k, seed=seed, limit=args.limit, device="cpu")
    s += time.perf_counter() - t0
    what = f"dense 512-256, latent {latent}, BCE; {k}-component mixture on its codes"
    yield "dense AE + mixture", what, s, generation.sample_run(ae, n, seed)[0]

    yield "PCA + mixture", *pca_mixture(X_train, latent, k, n, seed)


def pca_mixture(X: np.ndarray, latent: int, k: int, n: int, seed: int):
    from sklearn.decomposition import PCA

    t0 = time.perf_counter()
    pca = PCA(latent, random_state=seed).fit(X)
    density = CodeDensity.fit(pca.transform(X), k, seed=seed)
    s = time.perf_counter() - t0
    samples = np.clip(pca.inverse_transform(density.sample(n, seed)), 0, 1)
    return f"PCA({latent}), {k}-component mixture on its scores", s, samples


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    X_train, _ = load_mnist("train", args.limit)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs or tmp)
        for name, what, seconds, samples in generators(args, runs, X_train):
            made.append((name, what, seconds, samples))
            print(f"{name:22s} {seconds:6.0f} s", flush=True)
    # the classifier comes last: a first run trains it (cached), after the generators
    X_full, y_full = load_mnist("train")
    X_test, y_test = load_mnist("test")
    classifier, clf_info = load_or_train(X_full, y_full, X_test, y_test)
    scorer = Scorer(classifier, X_test)
    rows, shown = [], []
    for name, what, seconds, samples in made:
        row = {"generator": name, "what": what, "seconds": round(seconds, 1), **scorer(samples)}
        rows.append(row)
        shown.append((name, samples[:12]))
        print(f"{name:22s} FD {row['fd']:9.3f}  entropy {row['class_entropy_nats']:.3f}")
    suffix = "_smoke" if args.quick or args.limit else ""
    fig = image_rows(shown, (1, 28, 28), "12 samples of each generator (seed 0)")
    save_figure(fig, RESULTS / f"generation_samples{suffix}.png")
    save_result(f"generation{suffix}", summary(args, rows, clf_info))


def summary(args, rows: list[dict], clf_info: dict) -> dict:
    fd = {r["generator"]: r["fd"] for r in rows}
    aekit_rows = [r for r in rows if r["generator"] not in ("train split", "PCA + mixture")]
    best = min(aekit_rows, key=lambda r: r["fd"])
    ratio = best["fd"] / fd["dense VAE"]
    print(f"best aekit generator: {best['generator']} (FD {best['fd']:.3f}), "
          f"{ratio:.3f} x the dense VAE's; PCA + mixture {fd['PCA + mixture']:.3f}")  # fmt: skip
    return {
        # where runs were kept is this machine's business: record only whether a folder was given
        "settings": {**vars(args), "runs": "a folder given" if args.runs else None},
        "classifier": clf_info,
        "max_class_entropy_nats": math.log(10),
        "rows": rows,
        "best": best["generator"],
        "best_fd_over_dense_vae_fd": ratio,
        "best_fd_over_pca_mixture_fd": best["fd"] / fd["PCA + mixture"],
        "target_met": ratio <= 0.5 and best["fd"] < fd["PCA + mixture"],
    }


if __name__ == "__main__":
    main()
