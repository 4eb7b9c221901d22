"""``aekit eval``: reconstruction metrics (and a VAE's NLL) of a saved run on data."""

from __future__ import annotations

import json

from ._common import FORMATTER, data_args, device_arg, noise_arg, reading_kwargs, rows_arg

EVAL_EXAMPLE = """mse, mae and psnr are in the data's own units (the run's scaler undone);
scaled_* are the same figures in the space the model computes in. Without --data and --split
the run's held-out rows are scored (the test split of mnist/fashion-mnist, else the run's
validation rows); "split:" says which.

example:
  aekit eval runs/mnist --json                        # the mnist test split
  aekit eval runs/table --split all                   # every row, training rows included
  aekit eval runs/vae --nll --samples 1000 --binarize      # importance-sampled NLL, nats
  aekit eval runs/dae --noise gaussian:0.5:clip            # denoise held-out data
"""


def add_parser(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="reconstruction metrics of a run on data (in the data's units)",
        epilog=EVAL_EXAMPLE,
        formatter_class=FORMATTER,
    )
    e.add_argument("run", help="run directory")
    data_args(e, default=None)
    rows_arg(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument(
        "--noise",
        type=noise_arg,
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
    device_arg(e)
    e.set_defaults(func=run)


def run(args) -> int:
    from ..apps.evaluate import evaluate

    metrics = evaluate(
        args.run,
        args.data,
        noise=args.noise,
        noise_seed=args.noise_seed,
        nll_samples=args.samples if args.nll else None,
        binarize=args.binarize,
        split=args.split,
        data_dir=args.data_dir,
        limit=args.limit,
        device=args.device,
        **reading_kwargs(args),
    )
    if args.json:
        print(json.dumps(metrics))
        return 0
    rows = metrics.pop("rows")
    metrics.pop("held_out")
    for key, value in metrics.items():
        if key == "split":
            print(f"{key:>10}: {value} ({rows})")
        else:
            print(f"{key:>10}: {value:.6g}" if isinstance(value, float) else f"{key:>10}: {value}")
    return 0
