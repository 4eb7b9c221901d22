"""``aekit sample``, ``aekit interpolate`` and ``aekit fit-density``: a run as a generator.

A model with a Gaussian latent samples its prior; a deterministic one samples a Gaussian
mixture fitted on its training codes by ``aekit fit-density`` and stored in the run folder
(``density.safetensors``, no pickle). Images come out as one PNG grid, or as rows in the data's
own units (.npy, .csv).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ._common import FORMATTER, data_args, device_arg, reading_kwargs, split_arg

EXAMPLES = {
    "sample": "examples:\n  aekit sample runs/vae --n 64 --out samples.png --seed 0\n"
    "  aekit fit-density runs/ae && aekit sample runs/ae --n 10000 --out samples.npy\n",
    "interpolate": "example:\n  aekit interpolate runs/vae --data mnist --steps 8 --out grid.png\n",
    "fit-density": "example:\n  aekit fit-density runs/ae --components 10\n",
}
OUTPUTS = (".png", ".npy", ".csv")


def add_parsers(sub) -> None:
    c = sub.add_parser(
        "sample",
        help="draw samples from a run's model (its prior, or its fitted code density)",
        epilog=EXAMPLES["sample"],
        formatter_class=FORMATTER,
    )
    c.add_argument("run", help="run directory")
    c.add_argument("--n", type=int, default=64, help="number of samples (default: %(default)s)")
    c.add_argument("--out", required=True, help="a .png grid, or .npy/.csv rows in data units")
    c.add_argument("--seed", type=int, default=0, help="same seed, same samples (default: 0)")
    c.add_argument(
        "--from",
        dest="source",
        choices=("auto", "prior", "density"),
        default="auto",
        help="the code distribution: the fitted density when the run has one, else a Gaussian "
        "latent's N(0, I) prior (default: %(default)s)",
    )
    device_arg(c)
    c.set_defaults(func=run_sample)

    c = sub.add_parser(
        "interpolate",
        help="decode paths between the codes of pairs of inputs",
        epilog=EXAMPLES["interpolate"],
        formatter_class=FORMATTER,
    )
    c.add_argument("run", help="run directory")
    data_args(c)
    split_arg(c)
    c.add_argument("--pairs", type=int, default=4, help="pairs of inputs (default: 4)")
    c.add_argument("--steps", type=int, default=8, help="points per path, both ends (default: 8)")
    c.add_argument(
        "--method",
        choices=("auto", "linear", "spherical"),
        default="auto",
        help="path in the code: spherical for a Gaussian latent, else linear (default: auto)",
    )
    c.add_argument("--seed", type=int, default=0, help="which inputs are paired (default: 0)")
    c.add_argument("--out", required=True, help="a .png grid (a row per pair), or .npy/.csv")
    device_arg(c)
    c.set_defaults(func=run_interpolate)

    c = sub.add_parser(
        "fit-density",
        help="fit a Gaussian mixture on a run's training codes, so that it can be sampled",
        epilog=EXAMPLES["fit-density"],
        formatter_class=FORMATTER,
    )
    c.add_argument("run", help="run directory")
    data_args(c)
    c.add_argument("--components", type=int, default=10, help="mixture components (default: 10)")
    c.add_argument(
        "--covariance",
        choices=("full", "diag", "tied", "spherical"),
        default="full",
        help="covariance of each component (default: %(default)s)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of EM's start (default: 0)")
    device_arg(c)
    c.set_defaults(func=run_fit_density)


def _check_out(out: str) -> None:
    if Path(out).suffix not in OUTPUTS:
        raise ConfigError(f"cannot write {out}: use a .png, .npy or .csv output file")


def run_sample(args) -> int:
    from ..apps import generation

    _check_out(args.out)
    X, model = generation.sample_run(args.run, args.n, args.seed, args.source, args.device)
    _write(args.out, X, model, cols=math.ceil(math.sqrt(len(X))))
    print(f"wrote {len(X)} samples to {args.out}")
    return 0


def run_interpolate(args) -> int:
    from ..apps import generation

    _check_out(args.out)
    paths, model = generation.interpolate_run(
        args.run, args.data, pairs=args.pairs, steps=args.steps, method=args.method,
        seed=args.seed, data_dir=args.data_dir, split=args.split, limit=args.limit,
        device=args.device, **reading_kwargs(args),
    )  # fmt: skip
    _write(args.out, paths.reshape(-1, paths.shape[-1]), model, cols=paths.shape[1])
    print(f"wrote {paths.shape[0]} paths of {paths.shape[1]} steps to {args.out}")
    return 0


def run_fit_density(args) -> int:
    from ..apps import generation

    density, path = generation.fit_density(
        args.run, args.data, n_components=args.components, covariance_type=args.covariance,
        seed=args.seed, data_dir=args.data_dir, limit=args.limit, device=args.device,
        **reading_kwargs(args),
    )  # fmt: skip
    info = density.info
    print(
        f"wrote {path}: {info['n_components']} components over {density.dim}-D codes of "
        f"{info['n_codes']} inputs, mean log-likelihood {info['mean_log_likelihood']:.3f}"
    )
    return 0


def _write(out: str, X: np.ndarray, model, cols: int) -> None:
    """A PNG grid (scaled space, shown in [0, 1]) or rows in the data's own units."""
    from ..io.files import atomic_write, write_array

    if Path(out).suffix != ".png":
        scaler = model.scaler
        write_array(out, scaler.inverse_transform(X) if scaler is not None else X)
        return
    from PIL import Image

    from ..apps.generation import image_grid

    shape = getattr(model.config, "image_shape", None)
    if shape is None:
        raise ConfigError(
            f"the model of {model.name!r} was not trained on images (no image_shape): "
            "write a .npy or .csv file instead"
        )
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or hi > 1:  # not [0, 1] data (a standardised scaler): stretch to the range
        X = (X - lo) / (hi - lo or 1.0)
    grid = Image.fromarray(image_grid(X, shape, cols))
    atomic_write(out, lambda tmp: grid.save(tmp, format="PNG"))
