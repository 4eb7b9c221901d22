"""Where the spatial codec's bits go (issue 22): the rate breakdown per knob q on the
validation photograph (chelsea, held out of training), as ``codec.py --validation`` trains.

Per q: bits per pixel of y (the code) and of z (the side information), what y would cost
under each channel's own histogram of its symbols (static: no side information) and under
each channel's best single Gaussian scale of the coder's table, the fraction of y's
symbols that are 0, the bits those zeros cost and the hyperprior's scale sigma for them (the
least scale is ``SCALE_MIN``; a zero under sigma = SCALE_MIN costs about 1e-5 bits), and the
quantiser's effective step in grey levels (255 / (START_SCALE * a_q), median over channels).

    OMP_NUM_THREADS=1 python benchmarks/codec_diagnose.py --crops 1500 --epochs 4 --hyper 64
    ... --gain-prior off --start random        # the codec before session 16 (its default then)
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import save_result
from codec import TRAIN_PHOTOS, VALIDATION, build, crops, parse_args, photo, train


def breakdown(model, image: np.ndarray, q: float) -> dict:
    """The rate of one (H, W, 3) uint8 image at knob q, from the coder's scale table."""
    from aekit.apps.codec import CODER_FLOOR
    from aekit.nn.arch.block_transform import START_SCALE
    from aekit.nn.latent.hyperprior import SCALE_TABLE, gaussian_likelihood, scale_index

    lat = model.latent
    x = torch.as_tensor(image.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    knob = torch.full((1,), float(q))
    pixels = image.shape[0] * image.shape[1]
    with torch.no_grad():
        coded = lat.analyse(model.analysis(x), knob)
        k, sigma = coded["k"], coded["sigma"]
        table = torch.as_tensor(SCALE_TABLE)[scale_index(sigma)]
        bits = -torch.log2(gaussian_likelihood(k.double(), table).clamp_min(CODER_FLOOR))
        bits_z = float(-torch.log2(lat.z_likelihood(coded["z_hat"])).sum())
        zero = k == 0
        a, _ = lat.gains(knob)
        step = 255.0 / (START_SCALE * a.flatten())
        y_hat = lat.synthesis_input(k, coded["mu"], knob)
        out = model.synthesis(y_hat, image.shape[:2]).clamp(0, 1)
        mse = float(((torch.round(out * 255) - x * 255) ** 2).mean())
        per_channel = bits.sum((0, 2, 3)) / pixels  # (M,) bpp by coefficient
    static = gauss = 0.0  # each channel's own histogram of k / its best single Gaussian scale
    scales = torch.as_tensor(SCALE_TABLE)[:, None]
    for c in range(k.shape[1]):
        values, counts = torch.unique(k[:, c], return_counts=True)
        p = counts.double() / counts.sum()
        static += float(-(counts * torch.log2(p)).sum())
        lik = gaussian_likelihood(values.double()[None].expand(len(scales), -1), scales)
        gauss += float((-(torch.log2(lik.clamp_min(CODER_FLOOR))) * counts).sum(1).min())
    order = torch.argsort(per_channel, descending=True)
    return {
        "q": float(q),
        "psnr": 10 * np.log10(255.0**2 / mse),
        "bpp_y": float(bits.sum()) / pixels,
        "bpp_z": bits_z / pixels,
        "bpp_y_static": static / pixels,
        "bpp_y_static_gaussian": gauss / pixels,
        "zero_fraction": float(zero.double().mean()),
        "bpp_of_zeros": float(bits[zero].sum()) / pixels,
        "bits_per_zero": float(bits[zero].mean()) if zero.any() else None,
        "sigma_zero_median": float(sigma[zero].median()) if zero.any() else None,
        "sigma_zero_at_bound": float((sigma[zero] < 0.12).double().mean()) if zero.any() else None,
        "sigma_nonzero_median": float(sigma[~zero].median()) if (~zero).any() else None,
        "step_grey_median": float(step.median()),
        "step_grey_dc_luma": float(step[0]),
        "top_channels_bpp": [(int(c), float(per_channel[c])) for c in order[:5]],
    }


def main(argv=None) -> None:
    args = parse_args(["--set", "photos", *(argv or __import__("sys").argv[1:])])
    t0 = time.perf_counter()
    rows = crops([v for v in TRAIN_PHOTOS if v != VALIDATION], args.crops, args.crop, args.seed)
    model = build(3, args.crop, args)
    seconds = train(model, rows, args)
    model.eval()
    image = photo(VALIDATION)
    out = [breakdown(model, image, q) for q in range(model.latent.levels)]
    for r in out:
        print(
            f"q {r['q']:.0f}  {r['psnr']:.2f} dB  {r['bpp_y'] + r['bpp_z']:.3f} bpp = "
            f"y {r['bpp_y']:.3f}  z {r['bpp_z']:.4f} bpp  static {r['bpp_y_static']:.3f} "
            f"(Gaussian {r['bpp_y_static_gaussian']:.3f})  "
            f"zeros {r['zero_fraction']:.3f} cost {r['bpp_of_zeros']:.3f} bpp "
            f"({r['bits_per_zero']:.3f} b each, sigma {r['sigma_zero_median']:.3f}, "
            f"{r['sigma_zero_at_bound']:.2f} at bound)  step {r['step_grey_median']:.1f} "
            f"(DC {r['step_grey_dc_luma']:.1f})", flush=True,
        )  # fmt: skip
    save_result(f"codec_diagnose{args.tag}", {"args": vars(args), "train_seconds": seconds,
                "image": VALIDATION, "rows": out, "seconds": time.perf_counter() - t0})  # fmt: skip


if __name__ == "__main__":
    main()
