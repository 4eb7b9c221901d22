"""``aekit denoise``: a run's denoised copy of noisy data, in the input's units and format."""

from __future__ import annotations

from ..errors import ConfigError
from ._common import FORMATTER, data_args, device_arg, noise_arg

EXAMPLE = """The model denoises by reconstructing in eval mode (no noise added, no pixel masked).
A folder of images gives a folder of PNGs under the same names, a .npy a .npy of the same shape,
a .csv a .csv; images come back clipped to their range (0-255 for 8-bit). dncnn and blindspot
runs take images of any size and denoise each at its own.

Train for it (noise levels are in the scaled space: pixel / max, so 25/255 is sigma 25 of 255):
  aekit train --data clean/ --model dncnn --noise gaussian:25/255 --out runs/dn   # clean data
  aekit train --data clean/ --model dncnn --noise gaussian:5/255-50/255 --out runs/blind
  aekit train --data noisy/ --model blindspot --out runs/n2s       # noisy data alone
  aekit train --data noisy/ --model dncnn --self-supervised sure --noise gaussian:25/255 \
      --out runs/sure                              # noisy data alone, their noise known

A blindspot run given the data's noise (Gaussian or Poisson) may --shrink: its estimate is
combined pixel by pixel with the noisy input by the known noise variance (better when known).

example:
  aekit denoise runs/dn --data noisy/ --out clean/
  aekit denoise runs/dn --data noisy.npy --out clean.npy --noise gaussian:25/255
  aekit denoise runs/n2s --data noisy/ --out clean/ --noise gaussian:25/255 --shrink
"""


def add_parser(sub) -> None:
    d = sub.add_parser(
        "denoise",
        help="write the denoised copy of noisy data (images, .npy, .csv) under a run's model",
        epilog=EXAMPLE,
        formatter_class=FORMATTER,
    )
    d.add_argument("run", help="run directory (a denoising model: --noise, dncnn, blindspot)")
    data_args(d, required=True)
    d.add_argument(
        "--out",
        required=True,
        help="a folder (one PNG per image, under the input's relative names), or a .npy "
        "(the input's shape) or .csv file",
    )
    d.add_argument(
        "--noise",
        type=noise_arg,
        metavar="KIND:LEVEL",
        help="the noise your data hold, e.g. gaussian:25/255 or poisson:30: checked against "
        "the run's training noise (a warning when they differ), never added",
    )
    d.add_argument(
        "--shrink",
        action="store_true",
        help="a blindspot run: combine its estimate with the noisy input by the known --noise "
        "(Gaussian or Poisson), pixel by pixel",
    )
    device_arg(d)
    d.set_defaults(func=run)


def run(args) -> int:
    from ..apps.denoise import denoise_files

    if args.data is None:
        raise ConfigError("--data is required: the noisy images (a folder or file), .npy or .csv")
    n, what = denoise_files(
        args.run,
        args.data,
        args.out,
        noise=args.noise,
        data_dir=args.data_dir,
        limit=args.limit,
        color=args.color,
        resize=args.resize,
        units=args.units,
        device=args.device,
        shrink=args.shrink,
    )
    print(f"wrote {what}")
    return 0
