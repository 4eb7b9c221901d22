"""The learned context model (``--model lossless``) beside PNG, lossless WebP and lossless JPEG
XL (issue 22, point 3): lossless and near-lossless (every pixel within q/2) bits per pixel,
every byte of every file counted, all codecs in the same run on the same images.

- ``mnist``: trained on the first ``--train-limit`` MNIST train images; tested on the
  10,000 test images as ONE .aek file per step q (1 = lossless, 2, 4, 8), the peers per
  image and as one mosaic of all images (their best case: one header).
- ``photos`` (greyscale, 8 bit: Pillow's "L" of the colour ones): trained on random 64x64
  crops of TRAIN_PHOTOS, tested whole on TEST_PHOTOS (one .aek file for the three) and on
  scikit-image's ``lfw_subset`` (200 faces of 25x25, one .aek file; peers per image and as
  a mosaic). Nothing was chosen on the test images.
- ``--validate``: the selection runs. MNIST: trained on train images 0 .. 54,999, scored
  (lossless) on 55,000 .. 56,999 (held out); photos: scored on VALIDATION_PHOTOS. Only the model's
  estimate (its ideal code length) is reported, one line per run appended to
  ``results/lossless_selection.jsonl``.

    OMP_NUM_THREADS=1 python benchmarks/lossless.py --set mnist --epochs 8
    OMP_NUM_THREADS=1 python benchmarks/lossless.py --set photos --epochs 8 --crops 4000
    OMP_NUM_THREADS=1 python benchmarks/lossless.py --set mnist --validate --epochs 2 --width 32
"""

from __future__ import annotations

import argparse
import json
import time

import imagecodecs as ic
import numpy as np
import torch
from _common import RESULTS, save_result
from codec import mnist, mosaic, per_image, pillow, score, unmosaic

TRAIN_PHOTOS = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "camera",
)  # fmt: skip
VALIDATION_PHOTOS = ("coins", "clock")
TEST_PHOTOS = ("rocket", "motorcycle", "retina")
STEPS = (1, 2, 4, 8)


def grey_photo(name: str) -> np.ndarray:
    """(H, W) uint8: the photo, converted to grey by Pillow ("L", ITU-R 601) if in colour."""
    import skimage.data as d
    from PIL import Image

    img = d.stereo_motorcycle()[0] if name == "motorcycle" else getattr(d, name)()
    if img.ndim == 3:
        img = np.asarray(Image.fromarray(np.ascontiguousarray(img[..., :3])).convert("L"))
    return np.ascontiguousarray(img, dtype=np.uint8)


def faces() -> np.ndarray:
    import skimage.data as d

    return np.rint(d.lfw_subset() * 255).astype(np.uint8)


def grey_crops(names, n: int, size: int, seed: int) -> np.ndarray:
    """n random size x size crops (random flips), rows (n, size * size) scaled to [0, 1]."""
    rng = np.random.default_rng(seed)
    images = [grey_photo(v) for v in names]
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(img.shape[0] - size + 1), rng.integers(img.shape[1] - size + 1)
        tile = img[y : y + size, x : x + size]
        out[i] = tile[:, ::-1] if rng.random() < 0.5 else tile
    return out.reshape(n, -1) / np.float32(255)


def train(rows: np.ndarray, size: int, args):
    from aekit.data import Scaler
    from aekit.nn import build_model
    from aekit.training import TrainConfig, fit

    torch.manual_seed(args.seed)
    model = build_model(
        "lossless", size * size, image_shape=(1, size, size), width=args.width,
        depth=args.depth, block=args.block, scales=args.scales, mixtures=args.mixtures,
        steps=tuple(STEPS), anchor=args.anchor == "on",
        free=args.free if args.anchor == "on" else 0,
    )  # fmt: skip
    model.scaler = Scaler("image", np.zeros(1), np.array([1 / 255.0]))
    t0 = time.perf_counter()
    config = TrainConfig(epochs=args.epochs, seed=args.seed, lr=args.lr, batch_size=args.batch)
    fit(model, rows, config=config)
    model.eval()
    if args.save:
        from aekit.io import checkpoint

        checkpoint.save(model, args.save)
    return model, time.perf_counter() - t0


def aekit_rows(model, images: list[np.ndarray], label: str, steps) -> list[dict]:
    """One .aek file of all ``images`` per step: bytes, the bound, exactness, the estimate."""
    from aekit.apps import lossless

    rows = []
    pixels = sum(im.size for im in images)
    for q in steps:
        t0 = time.perf_counter()
        data, est = lossless.encode(model, images, step=q)
        t1 = time.perf_counter()
        out = list(lossless.decompress_images(model, data))
        t2 = time.perf_counter()
        err = max(
            int(np.abs(o - im.astype(np.int64)).max()) for o, im in zip(out, images, strict=True)
        )
        setting = "lossless" if q == 1 else f"step{q}"
        decoded = [o.astype(np.uint8) for o in out]
        row = score(f"aekit-{label}", setting, len(data), decoded, images, t2 - t0)
        row.update(encode_s=t1 - t0, decode_s=t2 - t1, step=q, max_abs_error=err,
                   within_half_step=err <= q / 2, estimated_bpp=est / pixels)  # fmt: skip
        rows.append(row)
    return rows


def peers(images: list[np.ndarray], tag: str, as_mosaic: bool) -> list[dict]:
    """PNG, lossless WebP and JPEG XL per image (and as one mosaic of equal-size images)."""
    rows = [
        per_image("png" + tag, "lossless", images, *pillow("PNG", "L", optimize=True)),
        per_image("webp" + tag, "lossless", images,
                  *pillow("WEBP", "L", lossless=True, quality=100, method=6)),
        per_image("jpegxl" + tag, "lossless", images,
                  lambda im: ic.jpegxl_encode(im, lossless=True, effort=9), ic.jpegxl_decode),
    ]  # fmt: skip
    if as_mosaic:
        grey = np.stack(images)
        n, h, w = grey.shape
        big = mosaic(grey)
        for codec, (enc, dec) in (
            ("png-mosaic", pillow("PNG", "L", optimize=True)),
            ("webp-mosaic", pillow("WEBP", "L", lossless=True, quality=100, method=6)),
            ("jpegxl-mosaic",
             (lambda im: ic.jpegxl_encode(im, lossless=True, effort=9), ic.jpegxl_decode)),
        ):  # fmt: skip
            t0 = time.perf_counter()
            data = enc(big)
            t1 = time.perf_counter()
            back = unmosaic(dec(data), n, h, w)
            t2 = time.perf_counter()
            row = score(codec + tag, "lossless", len(data), list(back), list(grey), t2 - t0)
            row.update(encode_s=t1 - t0, decode_s=t2 - t1)
            rows.append(row)
    return rows


def summary(rows) -> dict:
    out: dict = {"lossless_bpp": {}, "steps": {}, "speed_mp_s": {}}
    for r in rows:
        name = r["codec"]
        if r["setting"] == "lossless":
            out["lossless_bpp"][name] = r["bpp"]
            out["speed_mp_s"][name] = {"encode": r["megapixels"] / r["encode_s"],
                                       "decode": r["megapixels"] / r["decode_s"]}  # fmt: skip
        if "step" in r:
            out["steps"].setdefault(name, {})[r["step"]] = {
                "bpp": r["bpp"], "psnr": r["psnr"], "max_abs_error": r["max_abs_error"],
                "within_half_step": r["within_half_step"], "estimated_bpp": r["estimated_bpp"],
            }  # fmt: skip
    return out


def validate(args) -> None:
    from aekit.apps import lossless

    if args.set == "mnist":
        rows, size = mnist("train", 55000)[: args.train_limit].reshape(-1, 784) / 255.0, 28
        held = list(mnist("train", 60000)[55000:57000].astype(np.uint8))
    else:
        rows, size = grey_crops(TRAIN_PHOTOS, args.crops, 64, args.seed), 64
        held = [grey_photo(v) for v in VALIDATION_PHOTOS]
    model, seconds = train(rows.astype(np.float32), size, args)
    pixels = sum(im.size for im in held)
    bpp = lossless.estimated_bits(model, held, step=1) / pixels
    line = {"set": args.set, "width": args.width, "depth": args.depth, "block": args.block,
            "scales": args.scales,
            "mixtures": args.mixtures, "epochs": args.epochs, "train_limit": args.train_limit,
            "crops": args.crops, "lr": args.lr, "batch": args.batch, "seconds": seconds,
            "anchor": args.anchor, "free": args.free,
            "validation_bpp": bpp}  # fmt: skip
    print(line, flush=True)
    with open(RESULTS / "lossless_selection.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--set", choices=("mnist", "photos"), required=True)
    p.add_argument("--validate", action="store_true")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-limit", type=int, default=60000)
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--crops", type=int, default=4000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--block", type=int, default=2)
    p.add_argument("--scales", type=int, default=4)
    p.add_argument("--mixtures", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchor", choices=("on", "off"), default="on",
                   help="the means offset from the decoded neighbours' mean (the preset's)")
    p.add_argument("--free", type=int, default=2,
                   help="of the anchored means, how many stay absolute (the preset's)")
    p.add_argument("--steps", default="1,2,4,8", help="the steps q tested (trained: 1,2,4,8)")
    p.add_argument("--save", help="also write the trained model here (a run directory)")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    from aekit.apps import lossless

    torch.set_num_threads(1)
    if args.validate:
        return validate(args)
    t0 = time.perf_counter()
    steps = tuple(int(v) for v in args.steps.split(","))
    if args.set == "mnist":
        rows = mnist("train", args.train_limit).reshape(-1, 784) / 255.0
        model, seconds = train(rows.astype(np.float32), 28, args)
        test = list(mnist("test", args.test_limit).astype(np.uint8))
        results = aekit_rows(model, test, "mnist", steps) + peers(test, "", True)
        tests = {"mnist_test": len(test)}
    else:
        model, seconds = train(grey_crops(TRAIN_PHOTOS, args.crops, 64, args.seed), 64, args)
        photos = [grey_photo(v) for v in TEST_PHOTOS]
        people = list(faces())
        results = aekit_rows(model, photos, "photos", steps) + peers(photos, "", False)
        results += aekit_rows(model, people, "faces", (1,)) + peers(people, "-faces", True)
        held = [grey_photo(v) for v in VALIDATION_PHOTOS]
        val = lossless.estimated_bits(model, held, step=1) / sum(v.size for v in held)
        tests = {"photos": list(TEST_PHOTOS), "faces": len(people),
                 "validation_photos": list(VALIDATION_PHOTOS), "validation_bpp": val}  # fmt: skip
    print(f"trained {seconds:.0f} s", flush=True)
    result = {"args": vars(args), "train_seconds": seconds, "summary": summary(results),
              "rows": results, "test": tests, "train_photos": list(TRAIN_PHOTOS),
              "seconds": time.perf_counter() - t0}  # fmt: skip
    print(json.dumps(result["summary"], indent=1), flush=True)
    save_result(f"lossless_{args.set}{args.tag}", result)


if __name__ == "__main__":
    main()
