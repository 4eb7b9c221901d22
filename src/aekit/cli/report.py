"""``aekit report``: a run directory -> one self-contained HTML page (:mod:`aekit.views.report`)."""

from __future__ import annotations

from ..errors import ConfigError
from ._common import FORMATTER, device_arg, rows_arg

REPORT_EXAMPLE = """example:
  aekit report runs/digits                     # writes runs/digits/report.html
  aekit report runs/mnist --out mnist.html
  aekit report runs/table --split all          # every row instead of the held-out ones
  aekit train --model vae --epochs 30 --out runs/vae --report   # at the end of training
  aekit report runs/dense --data table.csv --anomaly-labels y.csv   # scores and their ROC
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's HTML report (open it in a browser; no network needed)",
        description="One HTML file with everything inline: settings and data, metrics, loss "
        "curves, reconstructions, errors per feature and class, the codes in 2-D, samples and "
        "interpolations (Gaussian latents) and anomaly scores.",
        epilog=REPORT_EXAMPLE,
        formatter_class=FORMATTER,
    )
    p.add_argument("run", help="a run directory written by aekit train")
    p.add_argument("--out", help="the HTML file to write (default: RUN/report.html)")
    p.add_argument(
        "--data",
        help="rows to show instead of the run's held-out rows: digits, mnist, fashion-mnist, "
        "a .npy/.npz/.csv/.parquet file, or images (a folder, an image, a .txt list; read as "
        "the run read its own)",
    )
    rows_arg(p)
    p.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ (or AEKIT_DATA)")
    p.add_argument(
        "--anomaly-labels",
        metavar="FILE",
        help="0/1 per row of --data (1 = anomaly), .npy/.csv/.npz: adds the ROC of the scores",
    )
    device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..views.report import build_report

    if args.anomaly_labels and not args.data:
        raise ConfigError("--anomaly-labels needs --data, the rows the labels belong to")
    path = build_report(
        args.run,
        args.out,
        data=args.data,
        data_dir=args.data_dir,
        anomaly_labels=args.anomaly_labels,
        split=args.split,
        device=args.device,
    )
    print(f"report written to {path}")
    return 0
