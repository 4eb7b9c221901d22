"""``aekit probe``: seed 002 runnable: a classifier's W^T h against a tied autoencoder's."""

from __future__ import annotations

import json

from ._common import FORMATTER, device_arg

PROBE_EXAMPLE = """example:
  aekit probe --data-dir ../shared/data --out probe            # MNIST, K = 64, 10 epochs
  aekit probe --data digits --hidden 16 --epochs 30 --out probe-digits

writes OUT/probe.json (the numbers), OUT/templates.png (rows w_i of each W) and
OUT/reconstructions.png; docs/classifier-transpose.md explains them.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="seed 002: reconstruct with a classifier's transposed weights vs an autoencoder's",
        description="Train a one-hidden-layer softmax classifier and a tied autoencoder of the "
        "same width K, synthesise test images as x_hat = W^T h with each W (the same least-"
        "squares scale and offset for both), and measure the MSE, the share of each image's "
        "energy inside the row space of W, and a fresh classifier's accuracy on them.",
        epilog=PROBE_EXAMPLE,
        formatter_class=FORMATTER,
    )
    p.add_argument("--out", required=True, help="folder for probe.json and the figures")
    p.add_argument(
        "--data",
        default="mnist",
        help="labelled images: mnist, fashion-mnist, digits or an .npz with X and y "
        "(default: %(default)s)",
    )
    p.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ (or AEKIT_DATA)")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--hidden", type=int, default=64, help="K, hidden units of both models")
    p.add_argument("--epochs", type=int, default=10, help="epochs of each model (default: 10)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..apps.probe import run_probe

    result = run_probe(
        args.data,
        out=args.out,
        hidden=args.hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        data_dir=args.data_dir,
        limit=args.limit,
        device=args.device,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"classifier test accuracy {result['classifier_test_accuracy']:.4f}")
    print(f"{'W^T h of':>12} {'MSE':>8} {'energy in span':>15} {'fresh acc':>10}")
    for name, r in result["reconstruction"].items():
        print(f"{name:>12} {r['mse']:8.5f} {r['energy_share']:15.4f} {r['fresh_accuracy']:10.4f}")
    print(f"wrote {args.out}/probe.json, templates.png, reconstructions.png")
    return 0
