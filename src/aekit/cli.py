"""The ``aekit`` command: train, eval, encode, reconstruct.

``main(argv) -> int`` never raises for a user's mistake: it prints one line
``aekit: error: ...`` to stderr and returns 2 (1 when training diverged).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from .errors import AekitError, ConfigError, TrainingDivergedError

TRAIN_EXAMPLE = """example:
  aekit train --data digits --latent-dim 8 --epochs 30 --out runs/digits
  aekit train --data mnist --data-dir ../shared/data --hidden 512,256 --latent-dim 16 \\
      --epochs 20 --batch-size 256 --out runs/mnist
  aekit train --resume --out runs/mnist --epochs 40     # continue (or extend) a run
  aekit train --data mnist --model vae --latent-dim 32 --kl-warmup 10 --out runs/vae
  aekit train --data mnist --model conv --sparse-kl 0.05 --noise mask:0.25 --out runs/c
"""
EVAL_EXAMPLE = """example:
  aekit eval runs/mnist --data mnist --split test --json
  aekit eval runs/vae --nll --samples 1000 --binarize      # importance-sampled NLL, nats
  aekit eval runs/dae --noise gaussian:0.5:clip            # denoise held-out data
"""
ENCODE_EXAMPLE = "example:\n  aekit encode runs/digits --data digits --out z.npy\n"
RECON_EXAMPLE = "example:\n  aekit reconstruct runs/digits --data digits --out x_hat.csv\n"


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in aekit's one-line form (exit code 2)."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"aekit: error: {message} (see: {self.prog} --help)\n")


def _hidden(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated layer sizes like 512,256, got {text!r}"
        ) from None
    return sizes


def _data_args(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    p.add_argument(
        "--data",
        default=default,
        help="digits (built in), mnist, fashion-mnist, or a .npy/.npz/.csv/.parquet file"
        + (" (default: %(default)s)" if default else " (default: the run's training data)"),
    )
    p.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ (or AEKIT_DATA)")
    p.add_argument("--limit", type=int, help="use only the first N samples")


def _split_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="test",
        help="which split of mnist/fashion-mnist (default: %(default)s)",
    )


def _presets(models) -> str:
    rows = "".join(f"  {name:<12} {spec.summary}\n" for name, spec in sorted(models.items()))
    return "\nmodels (--model):\n" + rows


def _family_args(t: argparse.ArgumentParser) -> None:
    """Flags that add a latent kind, penalties and a corruption to any --model."""
    g = t.add_argument_group(
        "autoencoder family (combine freely; see aekit.models.config.ModelConfig)"
    )
    g.add_argument("--latent", choices=("deterministic", "gaussian"), help="gaussian: a VAE")
    g.add_argument("--channels", type=_hidden, help="conv feature maps, e.g. 32,64")
    g.add_argument("--sparse-kl", type=float, metavar="RHO", help="KL sparsity to target rate RHO")
    g.add_argument(
        "--sparse-weight", type=float, metavar="L", help="weight of --sparse-kl (default: 1)"
    )
    g.add_argument("--l1", type=float, metavar="L", help="L1 penalty on the code, weight L")
    g.add_argument("--contractive", type=float, metavar="L", help="L ||J_f(x)||_F^2 penalty")
    g.add_argument(
        "--contractive-method",
        choices=("auto", "closed", "exact", "projection"),
        help="how the Jacobian norm is computed (default: auto)",
    )
    g.add_argument(
        "--noise",
        metavar="KIND:LEVEL[:clip]",
        help="denoising: gaussian:0.3, mask:0.25 or salt-pepper:0.1 (:clip to [0, 1])",
    )
    g.add_argument("--beta", type=float, help="KL weight of a Gaussian latent (default 1)")
    g.add_argument("--kl-warmup", type=int, metavar="EPOCHS", help="ramp the KL weight up")
    g.add_argument("--free-bits", type=float, metavar="F", help="least KL charged per unit")
    g.add_argument("--iwae", type=int, metavar="K", help="train the IWAE bound with K samples")
    g.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian", "laplace"),
        help="p(x|z) of a Gaussian latent (= --loss bce, mse, mae)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .losses import LOSSES
    from .models import ACTIVATIONS, MODELS
    from .training import OPTIMIZERS

    parser = _Parser(prog="aekit", description="Train and use autoencoders.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fmt = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser(
        "train",
        help="train a model and write a run directory",
        epilog=TRAIN_EXAMPLE + _presets(MODELS),
        formatter_class=fmt,
    )
    _data_args(t)
    t.add_argument(
        "--model",
        default="dense",
        choices=sorted(MODELS),
        help="preset; the flags below combine its parts (default: %(default)s)",
    )
    t.add_argument("--latent-dim", type=int, help="code size (default: the model's, 16)")
    t.add_argument("--hidden", type=_hidden, help="encoder hidden sizes, e.g. 512,256 ('' none)")
    t.add_argument("--activation", choices=ACTIVATIONS, help="hidden-layer activation")
    t.add_argument("--latent-activation", choices=ACTIVATIONS, help="code-layer activation")
    t.add_argument(
        "--output-activation",
        choices=("auto", "sigmoid", "identity"),
        default="auto",
        help="auto: sigmoid for data in [0, 1], else identity",
    )
    t.add_argument(
        "--tied",
        action="store_true",
        default=None,
        help="decoder weights = encoder weights transposed",
    )
    t.add_argument("--loss", choices=LOSSES, help="reconstruction loss (ssim: images)")
    _family_args(t)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument(
        "--engine",
        choices=("torch", "numpy"),
        default="torch",
        help="torch (default), or numpy: the seed's matrix engine (aekit.scratch), for dense "
        "models whose hidden and code layers share one activation",
    )
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: %(default)s)")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--epochs", type=int, default=None, help="(default: 20)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of the data held out for validation (default: %(default)s)",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=0,
        help="stop after this many epochs without validation improvement (0: off)",
    )
    t.add_argument(
        "--scale",
        choices=("image", "minmax", "standard", "none"),
        help="data scaling (default: image for images, minmax for tables)",
    )
    t.add_argument("--out", help="run directory (default: runs/<data>-<model>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser(
        "eval",
        help="reconstruction metrics of a run on data",
        epilog=EVAL_EXAMPLE,
        formatter_class=fmt,
    )
    e.add_argument("run", help="run directory")
    _data_args(e, default=None)
    _split_arg(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument(
        "--noise",
        metavar="KIND:LEVEL[:clip]",
        help="corrupt the data first and score reconstructions against the clean data",
    )
    e.add_argument("--nll", action="store_true", help="importance-sampled NLL in nats (VAEs)")
    e.add_argument(
        "--samples", type=int, default=1000, help="importance samples for --nll (default: 1000)"
    )
    e.add_argument(
        "--binarize", action="store_true", help="score --nll on a Bernoulli draw of the data"
    )
    e.add_argument("--noise-seed", type=int, default=0, help="seed of --noise and --binarize")

    for name, example, what in (
        ("encode", ENCODE_EXAMPLE, "codes Z"),
        ("reconstruct", RECON_EXAMPLE, "reconstructions, in the data's units"),
    ):
        c = sub.add_parser(
            name,
            help=f"write the {what} of data under a run's model",
            epilog=example,
            formatter_class=fmt,
        )
        c.add_argument("run", help="run directory")
        _data_args(c, default=None)
        _split_arg(c)
        c.add_argument("--out", required=True, help="output file, .npy or .csv")
    return parser


def _cmd_train(args) -> int:
    from .runs import train

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUN, the run directory to continue")
    if args.out is None:
        args.out = f"runs/{Path(str(args.data)).stem}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    model_options = {
        "latent_dim": args.latent_dim,
        "hidden": args.hidden,
        "activation": args.activation,
        "latent_activation": args.latent_activation,
        "tied": args.tied,
        "loss": args.loss,
        "output_activation": args.output_activation,
        "channels": args.channels,
    }
    if not args.resume:
        model_options.update(_family_options(args))
    train_options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "seed": args.seed,
        "patience": args.patience,
        "engine": args.engine,
    }
    if not args.resume and args.epochs is None:
        train_options["epochs"] = 20
    result = train(
        args.data,
        out=args.out,
        model=args.model,
        data_dir=args.data_dir,
        limit=args.limit,
        scale=args.scale,
        val_fraction=args.val_fraction,
        resume=args.resume,
        progress=not args.quiet,
        model_options=model_options,
        **(train_options if not args.resume else {"epochs": args.epochs}),
    )
    last = result.state.history[-1] if result.state.history else {}
    summary = ", ".join(f"{k} {v:.5g}" for k, v in last.items() if k.endswith("loss"))
    print(f"trained {result.state.epoch} epochs ({summary}); best epoch {result.state.best_epoch}")
    print(f"run written to {result.out}")
    return 0


def _family_options(args) -> dict:
    from .models.options import family_options

    return family_options(
        args.model,
        latent=args.latent,
        sparse_kl=args.sparse_kl,
        sparse_weight=args.sparse_weight,
        l1=args.l1,
        contractive=args.contractive,
        contractive_method=args.contractive_method,
        noise=args.noise,
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        free_bits=args.free_bits,
        iwae=args.iwae,
        likelihood=args.likelihood,
        loss=args.loss,
        latent_activation=args.latent_activation,
    )


def _job_kwargs(args) -> dict:
    return {"data_dir": args.data_dir, "split": args.split, "limit": args.limit}


def _cmd_eval(args) -> int:
    from .runs import evaluate

    metrics = evaluate(
        args.run,
        args.data,
        noise=args.noise,
        noise_seed=args.noise_seed,
        nll_samples=args.samples if args.nll else None,
        binarize=args.binarize,
        **_job_kwargs(args),
    )
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:>10}: {value:.6g}" if isinstance(value, float) else f"{key:>10}: {value}")
    return 0


def _cmd_array(args) -> int:
    from . import runs

    job = runs.encode if args.command == "encode" else runs.reconstruct
    if Path(args.out).suffix not in (".npy", ".csv"):
        raise ConfigError(f"cannot write {args.out}: use a .npy or .csv output file")
    array = job(args.run, args.data, **_job_kwargs(args))
    runs.write_array(args.out, array)
    print(f"wrote {array.shape[0]} x {array.shape[1]} to {args.out}")
    return 0


COMMANDS = {"train": _cmd_train, "eval": _cmd_eval, "encode": _cmd_array, "reconstruct": _cmd_array}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 diverged, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    try:
        return COMMANDS[args.command](args)
    except TrainingDivergedError as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 1
    except AekitError as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aekit: interrupted; resume with --resume", file=sys.stderr)
        return 130
