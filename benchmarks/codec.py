"""The spatial codec (``--model codec``) beside JPEG, WebP, JPEG XL, AVIF and PNG (issue 22).

Two sets, each codec in the same run on the same images, every byte of every file counted:

- ``mnist``: the codec trained on the first ``--train-limit`` MNIST train images (whole
  28x28), tested on the first ``--test-limit`` test images compressed into ONE .aek file
  per rate (:func:`aekit.apps.codec.compress_images`); JPEG per image and as one mosaic of
  all images (its best case: one header), WebP per image, JPEG XL (``imagecodecs``) and
  AVIF (Pillow's libavif) per image and as the mosaic, PNG and lossless JPEG XL / WebP.
- ``photos``: scikit-image's bundled colour photographs. The codec trains on random 64x64
  crops of TRAIN_PHOTOS only and is tested on TEST_PHOTOS whole (other photographs: nothing
  was chosen on them), one .aek file for the three; the other codecs per image.

Every decoded image is scored as 8 bits (aekit's rounded, as the PNGs ``aekit decompress``
writes): PSNR of the mean squared error over all pixels of the set (peak 255), bpp = 8 *
bytes / pixels. aekit's points are its rate knob q = 0, 0.5, ..., K - 1 of one trained
model (one model, every rate). Reported: each curve, the least PSNR gap to WebP and JPEG over
the rates both reach, the Bjontegaard delta rate (BD-rate, cubic fit of log-rate in PSNR
over the overlapping PSNR range; negative = aekit needs fewer bits) against JPEG XL and
AVIF, lossless bpp, and encode/decode speed in megapixels per second at a middle rate.

    OMP_NUM_THREADS=2 python benchmarks/codec.py --set mnist --epochs 10
    OMP_NUM_THREADS=2 python benchmarks/codec.py --set photos --epochs 30 --crops 4000
    ... --transform gdn --channels 48 --latent 64     # the GDN transforms instead of the DCT start
    python benchmarks/codec.py --set mnist --quick          # a smoke run, minutes
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from _common import data_dir, save_result

TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry")
TEST_PHOTOS = ("rocket", "motorcycle", "retina")
VALIDATION = "chelsea"  # --validation: held out of TRAIN_PHOTOS, where settings are chosen
JPEG_Q = (5, 10, 20, 30, 50, 70, 85, 95)
WEBP_Q = (0, 10, 30, 50, 70, 85, 95)
JXL_DISTANCE = (12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.25)
AVIF_Q = (5, 15, 30, 45, 60, 75, 85, 95)


# ---- data -----------------------------------------------------------------------------------


def photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8."""
    import skimage.data as d

    img = d.stereo_motorcycle()[0] if name == "motorcycle" else getattr(d, name)()
    return np.ascontiguousarray(img[..., :3])


def crops(names, n: int, size: int, seed: int) -> np.ndarray:
    """n random size x size crops (with random flips) of the photos, rows (n, 3*size*size)."""
    rng = np.random.default_rng(seed)
    images = [photo(v) for v in names]
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(img.shape[0] - size + 1), rng.integers(img.shape[1] - size + 1)
        tile = img[y : y + size, x : x + size].transpose(2, 0, 1)
        out[i] = tile[:, :, ::-1] if rng.random() < 0.5 else tile
    return out.reshape(n, -1)


def mnist(split: str, limit: int) -> np.ndarray:
    from aekit.data import load_dataset

    return load_dataset("mnist", data_dir=data_dir(), split=split).X[:limit].reshape(-1, 28, 28)


# ---- scoring --------------------------------------------------------------------------------


def score(codec: str, setting, n_bytes: int, decoded, originals, seconds: float) -> dict:
    sq = sum(
        float(np.sum((d.astype(np.float64) - o) ** 2))
        for d, o in zip(decoded, originals, strict=True)
    )
    values = sum(o.size for o in originals)
    pixels = sum(o.shape[0] * o.shape[1] for o in originals)  # (H, W[, C]) arrays
    mse = sq / values
    row = {
        "codec": codec,
        "setting": setting,
        "bytes": int(n_bytes),
        "bpp": 8.0 * n_bytes / pixels,
        "psnr": None if mse == 0 else 10 * float(np.log10(255.0**2 / mse)),
        "seconds": seconds,
        "megapixels": pixels / 1e6,
    }
    print(f"{codec:16s} {setting!s:8s} {row['bpp']:.4f} bpp  PSNR {row['psnr']}", flush=True)
    return row


def per_image(codec: str, setting, images, encode, decode) -> dict:
    t0 = time.perf_counter()
    blobs = [encode(im) for im in images]
    t1 = time.perf_counter()
    decoded = [decode(b) for b in blobs]
    t2 = time.perf_counter()
    row = score(codec, setting, sum(map(len, blobs)), decoded, images, t2 - t0)
    row.update(encode_s=t1 - t0, decode_s=t2 - t1)
    return row


def pillow(fmt: str, mode: str = "RGB", **options):
    from PIL import Image

    def encode(im):
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format=fmt, **options)
        return buf.getvalue()

    def decode(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert(mode))

    return encode, decode


def mosaic(images: np.ndarray) -> np.ndarray:
    n, h, w = images.shape
    cols = min(100, n)
    rows = -(-n // cols)
    pad = np.zeros((rows * cols, h, w), np.uint8)
    pad[:n] = images
    return pad.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def unmosaic(big: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    rows, cols = big.shape[0] // h, big.shape[1] // w
    return big.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(-1, h, w)[:n]


def peers(images: list[np.ndarray], grey_set: np.ndarray | None) -> list[dict]:
    """Every other codec on the same images (uint8 (H, W) or (H, W, 3))."""
    import imagecodecs as ic

    rows = []
    m = "L" if images[0].ndim == 2 else "RGB"
    for q in JPEG_Q:
        rows.append(per_image("jpeg", q, images, *pillow("JPEG", m, quality=q, optimize=True)))
    for q in WEBP_Q:
        rows.append(per_image("webp", q, images, *pillow("WEBP", m, quality=q, method=6)))
    for d in JXL_DISTANCE:
        rows.append(
            per_image(
                "jpegxl", d, images, lambda im, d=d: ic.jpegxl_encode(im, distance=d, effort=7),
                ic.jpegxl_decode,
            )
        )  # fmt: skip
    for q in AVIF_Q:  # Pillow's AVIF (libavif): imagecodecs codes grey AVIF losslessly only
        rows.append(per_image("avif", q, images, *pillow("AVIF", m, quality=q, speed=4)))
    rows.append(per_image("png", "lossless", images, *pillow("PNG", m, optimize=True)))
    rows.append(per_image("webp", "lossless", images, *pillow("WEBP", m, lossless=True, method=6)))
    rows.append(
        per_image("jpegxl", "lossless", images,
                  lambda im: ic.jpegxl_encode(im, lossless=True, effort=7), ic.jpegxl_decode)
    )  # fmt: skip
    if grey_set is not None:  # one mosaic of every image: one header, the peers' best case
        n, h, w = grey_set.shape
        big = mosaic(grey_set)
        mosaics = [
            ("jpeg-mosaic", q, *pillow("JPEG", "L", quality=q, optimize=True)) for q in JPEG_Q
        ]
        mosaics += [
            ("jpegxl-mosaic", d, lambda im, d=d: ic.jpegxl_encode(im, distance=d, effort=7),
             ic.jpegxl_decode) for d in JXL_DISTANCE
        ]  # fmt: skip
        mosaics += [("avif-mosaic", q, *pillow("AVIF", "L", quality=q, speed=4)) for q in AVIF_Q]
        for codec, setting, enc, dec in mosaics:
            t0 = time.perf_counter()
            data = enc(big)
            decoded = unmosaic(dec(data), n, h, w)
            rows.append(score(codec, setting, len(data), list(decoded), list(grey_set),
                              time.perf_counter() - t0))  # fmt: skip
    return rows


# ---- aekit ----------------------------------------------------------------------------------


def build(c: int, size: int, args):
    from aekit.data import Scaler
    from aekit.nn import build_model

    torch.manual_seed(args.seed)
    widths = dict(channels=args.channels, latent_dim=args.latent)  # gdn's; dct's follow C, B
    model = build_model(
        "codec", c * size * size, image_shape=(c, size, size), stages=args.stages,
        hyper_channels=args.hyper, transform=args.transform, gain_prior=args.gain_prior == "on",
        **(dict(lambdas=tuple(args.lambdas)) if args.lambdas else {}),
        **(widths if args.transform == "gdn" else dict(post_channels=args.post_channels)),
    )  # fmt: skip
    model.scaler = Scaler("image", np.zeros(1), np.array([1 / 255.0]))
    return model


def train(model, rows: np.ndarray, args) -> float:
    from aekit.data.units import Units
    from aekit.training import TrainConfig, fit

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    config = TrainConfig(epochs=args.epochs, seed=args.seed, lr=args.lr, batch_size=args.batch)
    if args.start != "random":  # the entropy model from the code's statistics (hyperprior.py)
        first = torch.as_tensor(model.scaler.transform(rows[:512]), dtype=torch.float32)
        t = time.perf_counter()
        start = model.latent.start_from(model, first, steps=args.start_steps, seed=args.seed,
                                        statistics=args.start == "data")  # fmt: skip
        print(f"start: {start['rate']:.3f} bpp after {args.start_steps} steps, "
              f"{time.perf_counter() - t:.0f} s", flush=True)  # fmt: skip
    fit(model, model.scaler.transform(rows), config=config)
    model.units = Units("uint8", np.zeros(1), np.full(1, 255.0), 255.0, True)
    return time.perf_counter() - t0


def aekit_rows(model, images: list[np.ndarray]) -> list[dict]:
    """One .aek file of every test image per knob q; decoded bit for bit as computed."""
    from aekit.apps import codec

    chw = [im[None] if im.ndim == 2 else im.transpose(2, 0, 1) for im in images]
    chw = [v.astype(np.float32) for v in chw]
    levels = model.latent.levels
    rows = []
    for q in np.linspace(0, levels - 1, 2 * (levels - 1) + 1):
        t0 = time.perf_counter()
        data = codec.compress_images(model, chw, quality=float(q))
        t1 = time.perf_counter()
        out = codec.decompress_images(model, data)
        t2 = time.perf_counter()
        ref = codec.reconstruction(model, chw, quality=float(q))
        exact = all(np.array_equal(a, b) for a, b in zip(list(out), list(ref), strict=True))
        decoded = [np.rint(v).astype(np.uint8) for v in list(out)]
        decoded = [
            d[0] if im.ndim == 2 else d.transpose(1, 2, 0)
            for d, im in zip(decoded, images, strict=True)
        ]
        row = score("aekit", round(float(q), 2), len(data), decoded, images, t2 - t0)
        row.update(encode_s=t1 - t0, decode_s=t2 - t1, bit_exact=exact)
        rows.append(row)
    return rows


# ---- summaries ------------------------------------------------------------------------------


def front(rows, codec):
    pts = sorted(
        (r["bpp"], r["psnr"]) for r in rows if r["codec"] == codec and r["psnr"] is not None
    )
    out = []
    for p in pts:
        if not out or p[1] > out[-1][1]:
            out.append(p)
    return np.array([p[0] for p in out]), np.array([p[1] for p in out])


def min_gap(rows, other, lo_bpp=0.0, hi_bpp=np.inf) -> dict:
    ra, pa = front(rows, "aekit")
    rb, pb = front(rows, other)
    if len(ra) < 2 or len(rb) < 2:
        return {"overlap_bpp": None}
    lo, hi = max(ra[0], rb[0], lo_bpp), min(ra[-1], rb[-1], hi_bpp)
    if lo > hi:
        return {"overlap_bpp": None}
    grid = np.linspace(lo, hi, 200)
    gaps = np.interp(grid, ra, pa) - np.interp(grid, rb, pb)
    k = int(np.argmin(gaps))
    return {
        "overlap_bpp": [float(lo), float(hi)],
        "min_gap_db": float(gaps[k]),
        "at_bpp": float(grid[k]),
    }


def bd_rate(rows, anchor) -> float | None:
    """Bjontegaard delta rate of aekit against ``anchor``, percent (negative: fewer bits)."""
    ra, pa = front(rows, "aekit")
    rb, pb = front(rows, anchor)
    if len(ra) < 4 or len(rb) < 4:
        return None
    lo, hi = max(pa.min(), pb.min()), min(pa.max(), pb.max())
    if lo >= hi:
        return None
    fa, fb = np.polyfit(pa, np.log(ra), 3), np.polyfit(pb, np.log(rb), 3)
    ia, ib = np.polyint(fa), np.polyint(fb)
    da = (np.polyval(ia, hi) - np.polyval(ia, lo)) / (hi - lo)
    db = (np.polyval(ib, hi) - np.polyval(ib, lo)) / (hi - lo)
    return float((np.exp(da - db) - 1) * 100)


def speeds(rows) -> dict:
    """Megapixels per second, encode and decode, at each codec's middle setting."""
    out = {}
    for codec in sorted({r["codec"] for r in rows if "encode_s" in r}):
        rs = [r for r in rows if r["codec"] == codec and "encode_s" in r and r["psnr"] is not None]
        if rs:
            r = rs[len(rs) // 2]
            out[codec] = {
                "setting": r["setting"],
                "encode_mp_s": r["megapixels"] / r["encode_s"],
                "decode_mp_s": r["megapixels"] / r["decode_s"],
            }
    return out


def lossless(rows) -> dict:
    return {r["codec"]: r["bpp"] for r in rows if r["setting"] == "lossless"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--set", choices=("mnist", "photos"), required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-limit", type=int, default=60000, help="mnist training images")
    p.add_argument("--test-limit", type=int, default=10000, help="mnist test images")
    p.add_argument("--crops", type=int, default=4000, help="photos: training crops")
    p.add_argument("--crop", type=int, default=64, help="photos: the crops' side in pixels")
    p.add_argument("--channels", type=int, default=None, help="default: 64 photos, 48 mnist")
    p.add_argument("--latent", type=int, default=None, help="M; default: 96 photos, 48 mnist")
    p.add_argument("--stages", type=int, default=None, help="default: 3 photos, 2 mnist")
    p.add_argument("--hyper", type=int, default=None, help="default: 64 photos, 32 mnist")
    p.add_argument("--transform", choices=("dct", "gdn"), default="dct")
    p.add_argument("--post-channels", type=int, default=0, help="dct: the post-filter's maps")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--start", choices=("data", "prior", "random"), default="random",
                   help="the hyperprior's start: from the code's statistics, or random")
    p.add_argument("--lambdas", type=float, nargs="+", default=None,
                   help="the rates one model is trained for (default: the codec's eight)")
    p.add_argument("--start-steps", type=int, default=300, help="the entropy model's fit")
    p.add_argument("--gain-prior", choices=("on", "off"), default="off",
                   help="the hyperprior's mean and scale follow the knob's gain")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--validation", action="store_true",
                   help="photos: train without chelsea and test on it (choose settings here)")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    photos = args.set == "photos"
    for name, a, b in (
        ("channels", 64, 48),
        ("latent", 96, 48),
        ("stages", 3, 2),
        ("hyper", 64, 32),
    ):
        if getattr(args, name) is None:
            setattr(args, name, a if photos else b)
    if args.quick:
        args.epochs, args.train_limit, args.test_limit, args.crops = 1, 500, 200, 300
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if args.set == "mnist":
        train_rows = mnist("train", args.train_limit).reshape(-1, 784)
        test = list(mnist("test", args.test_limit).astype(np.uint8))
        model = build(1, 28, args)
        grey = np.stack(test)
    elif args.validation:  # choices are made here: chelsea held out of the training photos
        names = [v for v in TRAIN_PHOTOS if v != VALIDATION]
        train_rows = crops(names, args.crops, args.crop, args.seed)
        test = [photo(VALIDATION)]
        model = build(3, args.crop, args)
        grey = None
    else:
        train_rows = crops(TRAIN_PHOTOS, args.crops, args.crop, args.seed)
        test = [photo(v) for v in TEST_PHOTOS]
        model = build(3, args.crop, args)
        grey = None
    seconds = train(model, train_rows, args)
    print(f"trained {seconds:.0f} s", flush=True)
    model.eval()
    rows = aekit_rows(model, test) + peers(test, grey)
    summary = {
        "train_seconds": seconds,
        "bit_exact": all(r.get("bit_exact", True) for r in rows),
        "min_gap_webp": min_gap(rows, "webp", 0.1, 2.0),
        "min_gap_jpeg": min_gap(rows, "jpeg", 0.1, 2.0),
        "bd_rate_vs_jpegxl": bd_rate(rows, "jpegxl"),
        "bd_rate_vs_avif": bd_rate(rows, "avif"),
        "lossless_bpp": lossless(rows),
        "speed": speeds(rows),
    }
    if grey is not None:
        summary["min_gap_jpegxl_mosaic"] = min_gap(rows, "jpegxl-mosaic")
        summary["min_gap_avif_mosaic"] = min_gap(rows, "avif-mosaic")
        summary["bd_rate_vs_jpegxl_mosaic"] = bd_rate(rows, "jpegxl-mosaic")
        summary["bd_rate_vs_avif_mosaic"] = bd_rate(rows, "avif-mosaic")
    print(summary, flush=True)
    name = f"codec_{args.set}{'_val' if args.validation else ''}"
    name += f"{'_quick' if args.quick else ''}{args.tag}"
    save_result(name, {"args": vars(args), "summary": summary, "rows": rows,
                       "test_images": ([VALIDATION] if args.validation else list(TEST_PHOTOS))
                       if grey is None else len(test),
                       "train_photos": list(TRAIN_PHOTOS) if grey is None else None,
                       "seconds": time.perf_counter() - t0})  # fmt: skip


if __name__ == "__main__":
    main()
