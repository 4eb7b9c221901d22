"""Denoising: aekit's denoisers beside the classical ones, on MNIST digits and on photographs.

All methods of one noise in the same run, on the same noisy test images (one seed):

- the noisy input; Gaussian blur, total variation (Chambolle) and non-local means
  (scikit-image), each with its parameter tuned on noisy *validation* images, never on the
  test images; BM3D (``pip install bm3d``) told the true sigma; PCA projection (MNIST: the
  whole image; photos: 8x8 patches, overlapping, averaged), its size tuned on validation;
- aekit ``dncnn`` trained on clean images with ``--noise`` of the test noise (clean data);
  ``blindspot`` trained on one noisy copy of the same training images alone (noisy data only);
  and ``dncnn`` trained on that noisy copy alone by SURE (PURE for Poisson) with the noise
  stated (``--self-supervised sure --noise ...``: noisy data only, known noise).

Noises: Gaussian SIGMA of 255 (``gaussian:15``), additive and unclipped, or Poisson with PEAK
counts at white (``poisson:30``: y = Poisson(PEAK x) / PEAK; the classical methods run on its
Anscombe transform, where the noise is about Gaussian with sigma 1, and come back through the
closed-form approximation of its exact unbiased inverse, Makitalo & Foi 2011).

Data:

- ``mnist``: training on the first ``--train`` MNIST training images, validation (tuning and
  the validation rows) on the next ``--val``, test on the first ``--test`` test images.
- ``photos``: scikit-image's bundled photographs, greyscale, 8-bit. Training: 40x40 tiles of
  astronaut, chelsea, hubble_deep_field, immunohistochemistry, brick, grass, gravel, moon,
  clock, page and text; validation: coffee and coins (whole); test, held out: camera, rocket,
  motorcycle_left and retina (resized to 512x512), whole.

Every output is clipped and rounded to 8 bits before PSNR and SSIM (data range 255; mean per
image); seconds are wall-clock for denoising the test images (training apart, in
``train_seconds``). The aekit rows also report their scores on the validation images.

    cd benchmarks
    OMP_NUM_THREADS=1 python denoising.py --data mnist --batch-size 32 \
        --noises gaussian:25 gaussian:15 gaussian:50 poisson:30
    OMP_NUM_THREADS=1 python denoising.py --data photos --batch-size 16 --epochs 30 \
        --bs-epochs 30 --noises gaussian:25
    # SURE (noisy data only, the noise known), on the same noisy images as the runs above
    OMP_NUM_THREADS=1 python denoising.py --data mnist --batch-size 32 \
        --noises gaussian:25 gaussian:15 gaussian:50 poisson:30 --models sure --no-peers --tag sure
    OMP_NUM_THREADS=1 python denoising.py --data photos --batch-size 16 --epochs 30 \
        --noises gaussian:25 --models sure --no-peers --tag sure
    # (and --noises gaussian:15 --tag sure_sigmas: the noisy images of --tag sigmas' sigma 15)
    python denoising.py --table results/denoising_mnist.json   # the tables of a result
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_dir, save_result

PHOTO_TRAIN = (
    "astronaut",
    "chelsea",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "moon",
    "clock",
    "page",
    "text",
)
PHOTO_VAL = ("coffee", "coins")
PHOTO_TEST = ("camera", "rocket", "motorcycle_left", "retina")
TILE = 40


# ---- scoring -------------------------------------------------------------------------------


def to8(X) -> np.ndarray:
    return np.clip(np.rint(np.asarray(X, np.float64) * 255), 0, 255)


def scores(clean, out) -> dict:
    """Mean PSNR and SSIM over images (lists of images of any sizes, or arrays)."""
    from skimage.metrics import structural_similarity

    psnr, ssim = [], []
    for c, o in zip(clean, out, strict=True):
        ref, est = to8(c), to8(o)
        mse = max(float(((ref - est) ** 2).mean()), 1e-10)
        psnr.append(10 * np.log10(255**2 / mse))
        ssim.append(structural_similarity(ref, est, data_range=255))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


def per_image(fn, X) -> list:
    return [fn(x) for x in X]


# ---- noise ---------------------------------------------------------------------------------


def parse_noise(text: str) -> tuple[str, float]:
    kind, _, level = text.partition(":")
    if kind not in ("gaussian", "poisson") or not level:
        raise SystemExit(f"noise {text!r}: use gaussian:SIGMA (of 255) or poisson:PEAK")
    return kind, float(level)


def add_noise(X, kind: str, level: float, rng) -> list:
    if kind == "gaussian":
        return [(x + level / 255 * rng.standard_normal(x.shape)).astype(np.float32) for x in X]
    return [(rng.poisson(np.clip(x, 0, None) * level) / level).astype(np.float32) for x in X]


def aekit_noise(kind: str, level: float) -> str:
    return f"gaussian:{level:g}/255" if kind == "gaussian" else f"poisson:{level:g}"


def anscombe(counts):
    return 2 * np.sqrt(np.maximum(counts, 0) + 3 / 8)


def inverse_anscombe(d):
    """Makitalo & Foi's closed-form approximation of the exact unbiased inverse."""
    d = np.maximum(d, 1e-6)
    s = np.sqrt(1.5)
    return np.maximum(d**2 / 4 + s / (4 * d) - 11 / (8 * d**2) + 5 * s / (8 * d**3) - 1 / 8, 0)


def on_noise(fn, kind: str, level: float):
    """fn(image, parameter, sigma) made a function of (noisy image, parameter): directly for
    Gaussian noise; for Poisson through the Anscombe transform (scaled to about [0, 1])."""
    if kind == "gaussian":
        return lambda y, p: fn(y, p, level / 255)
    top = anscombe(level)

    def vst(y, p):
        z = anscombe(y * level) / top  # noise sigma about 1 / top
        return inverse_anscombe(fn(z, p, 1 / top) * top) / level

    return vst


# ---- the classical peers -------------------------------------------------------------------


def classical() -> dict:
    """name -> (fn(image, parameter, sigma), candidate parameters, whether under a VST)."""
    import bm3d
    from skimage.filters import gaussian
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    one = bm3d.BM3DProfile()
    one.num_threads = 1  # its default takes every core
    return {
        "gaussian blur": (lambda x, s, sigma: gaussian(x, sigma=s), [0.5, 0.7, 1.0, 1.4], False),
        "total variation": (
            lambda x, w, sigma: denoise_tv_chambolle(x, weight=w * sigma / (25 / 255)),
            [0.04, 0.07, 0.1, 0.15],
            True,
        ),
        "non-local means": (
            lambda x, h, sigma: denoise_nl_means(
                x, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True
            ),
            [0.6, 0.8, 1.0],
            True,
        ),
        "bm3d": (lambda x, f, sigma: bm3d.bm3d(x, sigma_psd=f * sigma, profile=one), [1.0], True),
    }


def tune(fn, params, val_clean, val_noisy):
    """The parameter of the best validation PSNR (the only one, without a search)."""
    if len(params) == 1:
        return params[0]

    def psnr(p) -> float:
        return scores(val_clean, per_image(lambda x: fn(x, p), val_noisy))["psnr"]

    return max(params, key=psnr)


def pca_denoiser(train: list, photos: bool):
    """k -> a denoising function: projection on the first k principal components of the clean
    training images (MNIST) or of their 8x8 patches (photos: every overlapping patch of the
    noisy image projected, the patches averaged back)."""
    from sklearn.decomposition import PCA
    from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d

    if not photos:
        flat = np.stack(train).reshape(len(train), -1)
        full = PCA(min(256, len(flat))).fit(flat)

        def whole(k):
            W, m = full.components_[:k], full.mean_
            return lambda x: (((x.reshape(-1) - m) @ W.T) @ W + m).reshape(x.shape)

        return whole, (16, 32, 64, 128, 256)
    rng = np.random.default_rng(1)
    patches = np.concatenate([
        extract_patches_2d(x, (8, 8), max_patches=100, random_state=rng.integers(1 << 30))
        for x in train
    ]).reshape(-1, 64)  # fmt: skip
    full = PCA(48).fit(patches)

    def patchwise(k):
        W, m = full.components_[:k], full.mean_

        def fn(x):
            p = extract_patches_2d(x, (8, 8)).reshape(-1, 64)
            back = ((p - m) @ W.T) @ W + m
            return reconstruct_from_patches_2d(back.reshape(-1, 8, 8), x.shape)

        return fn

    return patchwise, (4, 8, 16, 32)


# ---- data ----------------------------------------------------------------------------------


def grey_photo(name: str) -> np.ndarray:
    import skimage
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    if name == "motorcycle_left":
        img = skimage.io.imread(Path(skimage.data.__file__).parent / "motorcycle_left.png")
    else:
        img = getattr(skimage.data, name)()
    img = np.asarray(img)
    g = rgb2gray(img[..., :3]) if img.ndim == 3 else img / 255.0
    if name == "retina":
        g = resize(g, (512, 512), anti_aliasing=True)
    return (np.rint(g * 255) / 255).astype(np.float32)


def photo_data():
    tiles = []
    for name in PHOTO_TRAIN:
        g = grey_photo(name)
        for y in range(0, g.shape[0] - TILE + 1, TILE):
            for x in range(0, g.shape[1] - TILE + 1, TILE):
                tiles.append(g[y : y + TILE, x : x + TILE])
    val = [grey_photo(n) for n in PHOTO_VAL]
    test = [grey_photo(n) for n in PHOTO_TEST]
    return np.stack(tiles), val, test


def mnist_data(n_train: int, n_val: int, n_test: int):
    from aekit.data import load_dataset

    train = load_dataset("mnist", data_dir=data_dir(), split="train", limit=n_train + n_val)
    test = load_dataset("mnist", data_dir=data_dir(), split="test", limit=n_test)
    X = (train.X / 255).reshape(-1, 28, 28).astype(np.float32)
    clean = (test.X / 255).reshape(-1, 28, 28).astype(np.float32)
    return X[:n_train], list(X[n_train:]), list(clean)


# ---- one noise -----------------------------------------------------------------------------


def run_noise(args, spec: str, train, val, test, seed: int) -> dict:
    import aekit

    kind, level = parse_noise(spec)
    rng = np.random.default_rng(seed)
    noisy = add_noise(test, kind, level, rng)
    val_noisy = add_noise(val, kind, level, rng)
    noisy_train = np.stack(add_noise(train, kind, level, rng))

    rows: dict[str, dict] = {"noisy input": {**scores(test, noisy), "seconds": 0.0}}
    peers = {} if args.no_peers else classical()
    for name, (fn, params, vst) in peers.items():
        f = on_noise(fn, kind, level) if vst else (lambda y, p, fn=fn: fn(y, p, None))
        p = tune(f, params, val, val_noisy)
        t0 = time.perf_counter()
        out = per_image(lambda x, p=p, f=f: f(x, p), noisy)
        rows[name] = {**scores(test, out), "seconds": time.perf_counter() - t0, "param": p}
        print(spec, name, rows[name], flush=True)

    if not args.no_peers:
        pca, sizes = pca_denoiser(list(train), args.data == "photos")
        k = max(sizes, key=lambda k: scores(val, per_image(pca(k), val_noisy))["psnr"])
        t0 = time.perf_counter()
        out = per_image(pca(k), noisy)
        rows["pca projection"] = {**scores(test, out), "seconds": time.perf_counter() - t0,
                                  "param": k}  # fmt: skip
        print(spec, "pca projection", rows["pca projection"], flush=True)

    def label(what: str, options: dict) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in options.items())
        return f"aekit {what}" + (f", {shown}" if shown else "")

    models = {}
    for options in args.dncnn if isinstance(args.dncnn, list) else [args.dncnn]:
        models[label("dncnn (clean data)", options)] = (
            "dncnn",
            train,
            {"noise": aekit_noise(kind, level), **options},
            args.epochs,
        )
    models["aekit blindspot (noisy data only)"] = (
        "blindspot",
        noisy_train,
        args.blindspot,
        args.bs_epochs,
    )
    # SURE (PURE for Poisson): dncnn itself, trained on the same noisy copy, the noise stated
    models["aekit dncnn, SURE (noisy data only, known noise)"] = (
        "sure",
        noisy_train,
        {"sure": aekit_noise(kind, level), **args.sure},
        args.sure_epochs or args.epochs,
    )
    models = {k: v for k, v in models.items() if v[0] in args.models}
    validation: dict[str, dict] = {"noisy input": scores(val, val_noisy)}
    for name in () if args.no_peers else ("bm3d", "non-local means"):
        f = on_noise(classical()[name][0], kind, level)
        p = rows[name]["param"]
        validation[name] = scores(val, per_image(lambda x, f=f, p=p: f(x, p), val_noisy))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, (what, data, options, epochs)) in enumerate(models.items()):
            preset = "dncnn" if what == "sure" else what
            t0 = time.perf_counter()
            run = aekit.train(data, out=Path(tmp) / f"{i}", model=preset, epochs=epochs,
                              scale="none", progress=False, model_options=options,
                              seed=seed, batch_size=args.batch_size)  # fmt: skip
            fit_s = time.perf_counter() - t0
            model = aekit.load(run.out)

            def den(x, model=model):
                return aekit.denoise(model, x[None], units="as-is")[0]

            denoisers = {label: den}
            if what == "blindspot":  # the same model, its estimate shrunk by the known noise

                def den_shrink(x, model=model):
                    noise = aekit_noise(kind, level)
                    y = aekit.denoise(model, x[None], units="as-is", noise=noise, shrink=True)
                    return y[0]

                denoisers["aekit blindspot + shrink (noisy data only, known noise)"] = den_shrink
            for name, fn in denoisers.items():
                validation[name] = scores(val, per_image(fn, val_noisy))
                t0 = time.perf_counter()
                out = per_image(fn, noisy)
                rows[name] = {**scores(test, out), "seconds": time.perf_counter() - t0,
                              "train_seconds": fit_s, "epochs": run.state.epoch,
                              "options": options}  # fmt: skip
                print(spec, name, rows[name], "validation", validation[name], flush=True)
    return {"test": rows, "validation": validation}


def table(paths: list[str]) -> str:
    """Markdown tables of result files: one row per method, one column per noise (test PSNR /
    SSIM, seconds), then the validation PSNR of the rows that have one."""
    import json

    lines = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        noises = list(result["noises"])
        lines += [f"{result['data']}", "", "| method | " + " | ".join(noises) + " |",
                  "|---|" + "---|" * len(noises)]  # fmt: skip
        methods = list(dict.fromkeys(m for n in noises for m in result["noises"][n]["test"]))
        for m in methods:
            cells = []
            for n in noises:
                row = result["noises"][n]["test"].get(m)
                val = result["noises"][n]["validation"].get(m)
                if row is None:
                    cells.append("")
                    continue
                cell = f"{row['psnr']:.2f} / {row['ssim']:.3f} / {row['seconds']:.1f} s"
                cells.append(cell + (f" (val {val['psnr']:.2f})" if val else ""))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("mnist", "photos"), default="mnist")
    ap.add_argument("--noises", nargs="+", default=["gaussian:25"])
    ap.add_argument("--train", type=int, default=2000, help="MNIST training images")
    ap.add_argument("--val", type=int, default=50, help="MNIST validation images")
    ap.add_argument("--test", type=int, default=200, help="MNIST test images")
    ap.add_argument("--epochs", type=int, default=20, help="dncnn's epochs")
    ap.add_argument("--bs-epochs", type=int, default=40, help="blindspot's epochs")
    ap.add_argument("--dncnn", type=json.loads, default={}, help="dncnn options, JSON")
    ap.add_argument("--blindspot", type=json.loads, default={}, help="blindspot options, JSON")
    ap.add_argument("--sure", type=json.loads, default={}, help="SURE dncnn options, JSON")
    ap.add_argument("--sure-epochs", type=int, help="SURE dncnn's epochs (default --epochs)")
    ap.add_argument("--batch-size", type=int, default=128, help="for each aekit model")
    ap.add_argument("--models", nargs="+", default=["dncnn", "blindspot", "sure"])
    ap.add_argument(
        "--no-peers",
        action="store_true",
        help="aekit's models alone (the same noisy images: the noise of each spec is drawn "
        "first, from the same seed), to set beside a run with the peers",
    )
    ap.add_argument("--tag", default="")
    ap.add_argument("--table", nargs="+", metavar="JSON", help="print result files as tables")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.data == "mnist":
        train, val, test = mnist_data(args.train, args.val, args.test)
        about = (f"MNIST: first {args.train} train images (training), the next {args.val} "
                 f"(validation), first {args.test} test images")  # fmt: skip
    else:
        train, val, test = photo_data()
        about = (f"scikit-image photos, greyscale 8-bit: training {len(train)} tiles "
                 f"{TILE}x{TILE} of {', '.join(PHOTO_TRAIN)}; validation "
                 f"{', '.join(PHOTO_VAL)}; test (held out) {', '.join(PHOTO_TEST)} "
                 "(retina resized to 512x512)")  # fmt: skip
    result = {
        "data": about,
        "metric": "PSNR (dB) and SSIM on 8-bit outputs (clipped, rounded), mean per image",
        "noise": "Gaussian sigma of 255, additive, unclipped; Poisson(PEAK x) / PEAK",
        "noises": {},
    }
    name = f"denoising_{args.data}" + (f"_{args.tag}" if args.tag else "")
    for i, spec in enumerate(args.noises):
        result["noises"][spec] = run_noise(args, spec, train, val, test, seed=i)
        print(save_result(name, result), flush=True)  # after each noise: partial results stay


if __name__ == "__main__":
    main()
