"""CompressAI's mean-scale hyperprior (Minnen et al. 2018, ``mbt2018-mean``) trained on the same
images with the same budget as aekit's codec in benchmarks/codec.py (issue 22, point 5).

CompressAI needs NumPy < 2, so it lives in its own virtual environment and this script runs in
two steps; nothing of aekit is imported in the second::

    # 1. in aekit's environment: the very rows codec.py trains and tests on, as one .npz
    python benchmarks/codec_compressai.py export --set photos --crops 3000 --out runs/cai_photos.npz
    # 2. in CompressAI's environment (python -m venv venv_cai; pip install -c constraints.txt
    #    torch==2.13.0; pip install compressai)
    venv_cai/bin/python benchmarks/codec_compressai.py run --data runs/cai_photos.npz --epochs 6 \
        --set photos --lambdas 0.0018 0.0067 0.025 0.0932

The budget is codec.py's: the same training rows, epochs, batch size, learning rate and
widths (N = aekit's channels, M = its latent), one model per lambda (CompressAI has no
variable-rate model: each point of its curve costs a whole training, which aekit's one model
does not pay). The loss is CompressAI's rate + lambda * 255^2 * MSE. Test images are coded with
CompressAI's own range coder (``model.compress``) and every byte is counted: the two strings
plus 8 bytes of header per image (its latent shape, which a file must carry; its padding to a
multiple of 64 is undone after decoding). PSNR is on 8-bit outputs over all pixels of the set,
as in codec.py. Results: ``results/codec_compressai_<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def export(args) -> None:
    import codec  # benchmarks/codec.py: the same rows it trains and tests on

    if args.set == "mnist":
        train = codec.mnist("train", args.train_limit).reshape(-1, 1, 28, 28)
        test = list(codec.mnist("test", args.test_limit).astype(np.uint8)[:, None])
    else:
        train = codec.crops(codec.TRAIN_PHOTOS, args.crops, 64, args.seed).reshape(-1, 3, 64, 64)
        test = [codec.photo(v).transpose(2, 0, 1) for v in codec.TEST_PHOTOS]
    arrays = {"train": train.astype(np.uint8)}
    arrays.update({f"test_{i}": t for i, t in enumerate(test)})
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {len(train)} training rows, {len(test)} test images")


def _model(c: int, n: int, m: int):
    import torch.nn as nn
    from compressai.models import MeanScaleHyperprior
    from compressai.models.utils import conv, deconv

    model = MeanScaleHyperprior(N=n, M=m)
    if c != 3:  # grey: the first and last layers take one channel
        model.g_a[0] = conv(c, n)
        model.g_s[-1] = deconv(n, c)
    for p in model.modules():
        if isinstance(p, nn.Conv2d | nn.ConvTranspose2d):
            p.reset_parameters()
    return model


def _train(model, rows, lam: float, args) -> float:
    import torch

    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    g = torch.Generator().manual_seed(args.seed)
    x_all = torch.from_numpy(rows).float() / 255.0
    t0 = time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(order), args.batch):
            x = x_all[order[i : i + args.batch]]
            out = model(x)
            pixels = x.shape[0] * x.shape[2] * x.shape[3]
            bpp = sum(torch.log(v).sum() for v in out["likelihoods"].values()) / (
                -math.log(2) * pixels
            )
            mse = torch.mean((out["x_hat"] - x) ** 2)
            loss = bpp + lam * 255**2 * mse
            opt.zero_grad()
            aux_opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            model.aux_loss().backward()
            aux_opt.step()
        print(f"lambda {lam} epoch {epoch + 1}: bpp {bpp.item():.3f} mse {mse.item():.5f}",
              flush=True)  # fmt: skip
    return time.perf_counter() - t0


def _code(model, images) -> dict:
    import torch
    import torch.nn.functional as F

    model.eval()
    model.update(force=True)
    n_bytes, sq, values, pixels = 0, 0.0, 0, 0
    t_enc = t_dec = 0.0
    with torch.no_grad():
        for im in images:
            c, h, w = im.shape
            x = torch.from_numpy(im[None].astype(np.float32) / 255.0)
            ph, pw = (-h) % 64, (-w) % 64
            xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
            t0 = time.perf_counter()
            enc = model.compress(xp)
            t1 = time.perf_counter()
            dec = model.decompress(enc["strings"], enc["shape"])["x_hat"]
            t2 = time.perf_counter()
            t_enc, t_dec = t_enc + t1 - t0, t_dec + t2 - t1
            n_bytes += sum(len(s[0]) for s in enc["strings"]) + 8  # + the latent shape
            out = np.rint(dec[0, :, :h, :w].clamp(0, 1).numpy() * 255.0)
            sq += float(np.sum((out - im.astype(np.float64)) ** 2))
            values += im.size
            pixels += h * w
    mse = sq / values
    return {
        "bytes": n_bytes,
        "bpp": 8.0 * n_bytes / pixels,
        "psnr": 10 * math.log10(255.0**2 / mse),
        "encode_s": t_enc,
        "decode_s": t_dec,
        "megapixels": pixels / 1e6,
    }


def run(args) -> None:
    import torch

    torch.manual_seed(args.seed)
    data = np.load(args.data)
    train = data["train"]
    tests = [data[k] for k in sorted(data.files, key=lambda k: (len(k), k)) if k != "train"]
    c = train.shape[1]
    rows = []
    t_all = time.perf_counter()
    for lam in args.lambdas:
        torch.manual_seed(args.seed)
        model = _model(c, args.channels, args.latent)
        seconds = _train(model, train, lam, args)
        row = {"codec": "compressai-mbt2018-mean", "setting": lam, "train_seconds": seconds}
        row.update(_code(model, tests))
        print(f"lambda {lam}: {row['bpp']:.4f} bpp PSNR {row['psnr']:.2f} ({seconds:.0f} s)",
              flush=True)  # fmt: skip
        rows.append(row)
        _save(args, rows, len(train), len(tests), time.perf_counter() - t_all)  # after each


def _save(args, rows, n_train: int, n_test: int, seconds: float) -> None:
    out = RESULTS / f"codec_compressai_{args.set}{args.tag}.json"
    out.parent.mkdir(exist_ok=True)
    record = {"args": vars(args), "rows": rows, "n_train": n_train, "n_test": n_test,
              "seconds": seconds, "complete": len(rows) == len(args.lambdas)}  # fmt: skip
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out)
    print(f"written {out}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="step", required=True)
    e = sub.add_parser("export")
    e.add_argument("--set", choices=("mnist", "photos"), required=True)
    e.add_argument("--crops", type=int, default=4000)
    e.add_argument("--train-limit", type=int, default=60000)
    e.add_argument("--test-limit", type=int, default=10000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--set", choices=("mnist", "photos"), required=True)
    r.add_argument("--epochs", type=int, default=6)
    r.add_argument("--lambdas", type=float, nargs="+", default=[0.0018, 0.0067, 0.025, 0.0932])
    r.add_argument("--channels", type=int, default=48, help="N (codec.py's --channels)")
    r.add_argument("--latent", type=int, default=64, help="M (codec.py's --latent)")
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--batch", type=int, default=32)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--tag", default="")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    export(args) if args.step == "export" else run(args)


if __name__ == "__main__":
    main()
