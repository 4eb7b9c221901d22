"""What the commands share: the one-line-error parser and the data and device flags."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse that reports errors in aekit's one-line form (exit code 2)."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"aekit: error: {message} (see: {self.prog} --help)\n")


FORMATTER = argparse.RawDescriptionHelpFormatter


def sizes_arg(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256); '' or 'none' -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes comma-separated sizes like 512,256, got {text!r}"
        ) from None


def noise_arg(text: str):
    """--noise KIND:LEVEL[:clip] as a :class:`~aekit.data.noise.Noise`: parsed once, here."""
    from ..data.noise import Noise
    from ..errors import ConfigError

    try:
        return Noise.parse(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def floats_arg(text: str) -> tuple[float, ...]:
    """'0.001,0.01' -> (0.001, 0.01)."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes comma-separated numbers like 0.0018,0.0130, got {text!r}"
        ) from None


IMAGES_HELP = (
    "a folder of images (read recursively, sorted), one image, or a .txt list of image paths "
    "(.png .jpg .webp .tif .bmp)"
)
COLOR_HELP = (
    "how image files are read: auto keeps each file's kind (grey: 1, L, LA, 16-bit I;16, 32-bit "
    "I and F; RGB: RGB, RGBA, palette P, CMYK, YCbCr, LAB, HSV; alpha is dropped; a mix is "
    "refused), gray or rgb converts every image (default: auto; a trained model reads images "
    "as its run did)"
)


def resize_arg(text: str) -> tuple[int, int]:
    """'64x48' -> (64, 48), height x width."""
    from ..data.images import parse_resize
    from ..errors import DataError

    try:
        return parse_resize(text)
    except DataError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def data_args(
    p: argparse.ArgumentParser,
    default: str | None = None,
    shown=None,
    required: bool = False,
    units: bool = True,
) -> None:
    """--data, --data-dir, --limit, --color, --resize (and --units, for jobs on a trained
    model); ``shown`` is the default the help names, ``required``: the command has no default
    (it says so itself when --data is missing)."""
    if required:
        tail = " (required)"
    else:
        tail = (
            f" (default: {shown or default})" if shown or default else " (default: the run's own)"
        )
    p.add_argument(
        "--data",
        default=default,
        help="digits (built in), mnist, fashion-mnist, a .npy/.npz/.csv/.parquet file, or "
        + IMAGES_HELP
        + tail,
    )
    p.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ (or AEKIT_DATA)")
    p.add_argument("--limit", type=int, help="use only the first N samples")
    p.add_argument("--color", choices=("auto", "gray", "rgb"), help=COLOR_HELP)
    p.add_argument(
        "--resize",
        type=resize_arg,
        metavar="HxW",
        help="resample every image to H x W pixels (Lanczos, aspect not kept); without it "
        "images of mixed sizes are refused (default: none; a trained model resizes as its run "
        "did)",
    )
    if units:
        p.add_argument(
            "--units",
            choices=("check", "as-is", "convert"),
            default="check",
            help="data in other units than the model's training data (e.g. images in [0, 1] "
            "for a model of 0-255 pixels) are refused (check), used unchanged (as-is) or "
            "rescaled to the model's units (convert) (default: %(default)s)",
        )


def split_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="test",
        help="which split of mnist/fashion-mnist (default: %(default)s)",
    )


def rows_arg(p: argparse.ArgumentParser) -> None:
    """--split all|train|val|test of eval and report: which rows of the run's own data."""
    p.add_argument(
        "--split",
        choices=("all", "train", "val", "test"),  # apps.evaluate.SPLITS, without importing torch
        default=None,
        help="rows of the run's own data: val (its held-out validation rows), test (the test "
        "split of mnist/fashion-mnist), train (the rows it was fitted on) or all (default: "
        "the held-out rows, test where the source has a test split, else val; other --data "
        "is scored whole)",
    )


def device_arg(p: argparse.ArgumentParser) -> None:
    """--device and --threads: where to compute, and with how many CPU threads."""
    p.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda|cuda:N|mps",
        help="where to compute (default: auto, CUDA when available, else the CPU)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for PyTorch (default: the cores not already busy, at least 1)",
    )


def set_threads(requested: int | None) -> int:
    """Apply --threads; by default the idle cores (threads fighting over busy cores spin)."""
    import os

    import torch

    from ..errors import ConfigError

    if requested is not None and requested < 1:
        raise ConfigError(f"--threads must be at least 1, got {requested}")
    cores = os.cpu_count() or 1
    if requested is None:
        try:
            busy = round(os.getloadavg()[0])
        except OSError:  # not available on this platform
            busy = 0
        requested = max(1, min(torch.get_num_threads(), cores - busy))
    torch.set_num_threads(requested)
    return requested


def job_kwargs(args) -> dict:
    """The data and device flags of eval / encode / reconstruct as keyword arguments."""
    return {
        "data_dir": args.data_dir,
        "split": args.split,
        "limit": args.limit,
        "device": args.device,
        **reading_kwargs(args),
    }


def reading_kwargs(args) -> dict:
    """--color, --resize and --units as keyword arguments of the jobs that read data."""
    out = {"color": args.color, "resize": args.resize}
    if hasattr(args, "units"):
        out["units"] = args.units
    return out
