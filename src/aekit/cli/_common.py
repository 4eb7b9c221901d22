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


def data_args(
    p: argparse.ArgumentParser, default: str | None = None, shown=None, required: bool = False
) -> None:
    """--data, --data-dir, --limit; ``shown`` is the default the help names, ``required``: the
    command has no default (it says so itself when --data is missing)."""
    if required:
        tail = " (required)"
    else:
        tail = (
            f" (default: {shown or default})" if shown or default else " (default: the run's own)"
        )
    p.add_argument(
        "--data",
        default=default,
        help="digits (built in), mnist, fashion-mnist, or a .npy/.npz/.csv/.parquet file" + tail,
    )
    p.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ (or AEKIT_DATA)")
    p.add_argument("--limit", type=int, help="use only the first N samples")


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
    }
