"""``aekit fit-detector``, ``aekit score`` and ``aekit detect``: anomaly detection from files.

``fit-detector`` trains :class:`aekit.sklearn.AutoencoderOutlierDetector` (the default robust
recipe) and saves it as a folder (safetensors + JSON); ``score`` writes one anomaly score per
input row, ``detect`` one 0/1 flag per row at the detector's threshold (or at a false-positive
rate calibrated on held-out normal data). With ``--labels`` both print ROC-AUC and PR-AUC.
Image data (mnist, digits) are scaled to [0, 1]; tables are used as they are (the detector
standardises each column itself).
"""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import ConfigError, DataError
from ..functional.losses import LOSSES
from ._common import FORMATTER, data_args, device_arg, split_arg

SCORE_COLUMN = "anomaly_score_higher_is_abnormal"
EXAMPLES = {
    "fit-detector": "example:\n  aekit fit-detector --data train.csv --out runs/detector\n",
    "score": "example:\n  aekit score runs/detector --data test.csv --out scores.csv "
    "--labels y.csv --figure scores.png\n",
    "detect": "example:\n  aekit detect runs/detector --data test.csv --out flags.csv "
    "--fpr 0.01 --normal normal.csv\n",
}


def add_parsers(sub) -> None:
    f = sub.add_parser(
        "fit-detector",
        help="train an autoencoder anomaly detector and save it",
        epilog=EXAMPLES["fit-detector"],
        formatter_class=FORMATTER,
    )
    data_args(f, required=True, units=False)  # images are divided by their format's maximum
    f.add_argument("--out", required=True, help="folder to write the detector to")
    f.add_argument("--contamination", default="auto", help="'auto' or a share in (0, 0.5]")
    f.add_argument(
        "--novelty",
        action="store_true",
        help="the training rows are all normal (clean): no row is trimmed, and the score "
        "blends in the distance to the nearest training rows (default: the rows may hold "
        "anomalies)",
    )
    f.add_argument(
        "--neighbors",
        default="auto",
        help="neighbours of the nearest-neighbour part, or 'none' for none (default: auto: "
        "5 with --novelty, 10 for tables without it, none for images without it)",
    )
    f.add_argument(
        "--n-estimators",
        type=_auto_int,
        default="auto",
        help="autoencoders (default: auto: 5 for tables, 1 for images)",
    )
    f.add_argument(
        "--max-samples",
        type=_auto_int,
        default="auto",
        help="rows per member (default: auto: 256 for tables, up to 10,000 for images)",
    )
    f.add_argument("--trim", type=float, default=0.2, help="share of rows trimmed (default: 0.2)")
    f.add_argument(
        "--epochs",
        type=_auto_int,
        default="auto",
        help="epochs per member (default: auto: 50 for tables, 20 for images)",
    )
    f.add_argument(
        "--model",
        default="auto",
        help="a preset (default: auto: conv for image data such as mnist or image files, "
        "dense for tables)",
    )
    f.add_argument(
        "--loss",
        choices=(*LOSSES, "mixed"),
        default="mixed",
        help="the members' loss (default: mixed: squared and absolute error in turn, for "
        "squared-error presets; others keep the preset's loss)",
    )
    f.add_argument(
        "--error-quantile",
        default="auto",
        help="divide each column's errors by this quantile of its training errors before "
        "summing, a number in (0, 1], or 'none' for raw sums (default: auto: 0.9 on tables, "
        "none for image models; 'none' scored higher on MNIST pixels with a dense model)",
    )
    f.add_argument(
        "--isolation-weight",
        type=float,
        default=None,
        help="blend in an isolation forest's standardised score with this weight, in [0, 1) "
        "(default: none; 0.25 lifts sets where IsolationForest is strong: docs/guides/"
        "anomaly.md)",
    )
    f.add_argument("--seed", type=int, default=0)
    device_arg(f)
    f.set_defaults(func=fit_detector, split="train")
    for name in ("score", "detect"):
        c = sub.add_parser(
            name,
            help="write anomaly scores" if name == "score" else "write 0/1 anomaly flags",
            epilog=EXAMPLES[name],
            formatter_class=FORMATTER,
        )
        c.add_argument("run", help="detector folder written by aekit fit-detector")
        data_args(c, required=True, units=False)
        split_arg(c)
        c.add_argument("--out", required=True, help="output .csv file, one row per input row")
        c.add_argument("--labels", help="0/1 labels (1 = anomaly): .npy, .csv or .npz (key y)")
        c.add_argument("--figure", help="write score histograms (and ROC with --labels), .png")
        c.add_argument(
            "--stream",
            action="store_true",
            default=None,
            help="read a .npy / .parquet file (or a folder of shards) block by block "
            "(default: for folders and files over 1 GiB)",
        )
        if name == "detect":
            c.add_argument("--fpr", type=float, help="threshold at this false-positive rate...")
            c.add_argument("--normal", help="...on these held-out normal rows (file)")
        device_arg(c)
        c.set_defaults(func=score)


def _auto_int(text: str):
    """An argparse type: 'auto' or a positive whole number."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'auto' or a positive whole number, got {text!r}")
    return value


def _load(
    args, width: int | None = None, names: list | None = None, shape: list | None = None
) -> np.ndarray:
    """The rows (images divided by their format's maximum); ``names`` gets the file names,
    ``shape`` the images' (C, H, W) (nothing for tables)."""
    from ..data import load_dataset

    if args.data is None:
        raise ConfigError("give the data to use with --data FILE")
    ds = load_dataset(
        args.data, data_dir=args.data_dir, split=args.split, limit=args.limit,
        color=args.color or "auto", resize=args.resize,
    )  # fmt: skip
    X = ds.X / np.float32(ds.max_value) if ds.max_value else ds.X
    if len(X) == 0:
        raise DataError(f"{args.data} holds no rows")
    if width is not None and X.shape[1] != width:
        hint = (
            " (images: read them with the --color and --resize the detector was fitted with)"
            if ds.files is not None
            else ""
        )
        raise DataError(
            f"data has {X.shape[1]} columns but the detector was fitted on {width}{hint}"
        )
    if names is not None and ds.files is not None:
        names.extend(ds.files)
    if shape is not None and ds.image_shape is not None:
        shape.extend(int(v) for v in ds.image_shape)
    return X


def fit_detector(args) -> int:
    from ..sklearn import AutoencoderOutlierDetector

    c = args.contamination
    try:
        contamination = c if c == "auto" else float(c)
    except ValueError:
        raise ConfigError(f"--contamination must be 'auto' or a number, got {c!r}") from None
    q = args.error_quantile
    try:
        quantile = q if q == "auto" else None if q.lower() == "none" else float(q)
    except ValueError:
        raise ConfigError(
            f"--error-quantile must be 'auto', 'none' or a number in (0, 1], got {q!r}"
        ) from None
    k = args.neighbors
    try:
        neighbors = k if k == "auto" else None if k.lower() == "none" else int(k)
    except ValueError:
        raise ConfigError(
            f"--neighbors must be 'auto', 'none' or a positive whole number, got {k!r}"
        ) from None
    image_shape: list[int] = []
    X = _load(args, shape=image_shape)
    det = AutoencoderOutlierDetector(
        contamination=contamination,
        novelty=args.novelty,
        n_neighbors=neighbors,
        n_estimators=args.n_estimators,
        max_samples=args.max_samples,
        trim=args.trim,
        max_iter=args.epochs,
        model=args.model,
        loss=args.loss,
        error_quantile=quantile,
        isolation_weight=args.isolation_weight,
        image_shape=tuple(image_shape) or None,  # image data: the image default
        random_state=args.seed,
        device=args.device,
    ).fit(X)
    flagged = int((det.predict(X) == -1).sum())
    det.save(args.out)
    knn = f" and {det.n_neighbors_}-nearest-neighbour distances" if det.n_neighbors_ else ""
    knn += " and an isolation forest" if det.isolation_weight_ is not None else ""
    rows = "normal rows" if args.novelty else "rows"
    space = " (in their codes)" if det.knn_space_ == "code" else ""
    print(
        f"fitted {len(det.models_)} {det.model_name_} autoencoder"
        f"{'s' if len(det.models_) > 1 else ''}{knn}{space} on {len(X)} "
        f"{rows}; {flagged} flagged"
    )
    print(f"wrote {args.out}")
    return 0


def score(args) -> int:
    from ..apps.anomaly_metrics import read_labels, roc_pr_auc
    from ..io.files import atomic_write
    from ..sklearn import AutoencoderOutlierDetector

    if not args.out.endswith(".csv"):
        raise ConfigError(f"cannot write {args.out}: use a .csv output file")
    det = AutoencoderOutlierDetector.load(args.run, device=args.device)
    names: list[str] = []
    anomaly = _streamed_scores(args, det, names)  # None: the data are loaded whole
    X = _load(args, det.n_features_in_, names) if anomaly is None else anomaly
    labels = read_labels(args.labels, len(X)) if args.labels else None
    if args.command == "detect" and (args.fpr is None) != (args.normal is None):
        raise ConfigError("--fpr and --normal go together")
    if args.command == "detect" and args.fpr is not None:
        normal = _load(_with_data(args, args.normal), det.n_features_in_)
        det.calibrate(normal, fpr=args.fpr)
        c = det.calibration_
        lo, hi = c["fpr_interval"]
        print(
            f"threshold for at most {args.fpr:g} false positives (conformal, {c['n_samples']} "
            f"normal rows): expected rate {c['expected_fpr']:.4f}, 95% of thresholds so drawn "
            f"give {lo:.4f} to {hi:.4f}"
        )
    if anomaly is None:
        anomaly = -det.score_samples(X)
    if args.command == "score":
        header, table = [SCORE_COLUMN], [anomaly]
    else:
        flags = (anomaly > -det.offset_).astype(int)
        header, table = ["is_outlier", SCORE_COLUMN], [flags, anomaly]
        print(f"{int(flags.sum())} of {len(X)} rows flagged")
    if names:  # image files: each row's file first
        header, table = ["file", *header], [np.asarray(names), *table]
    atomic_write(args.out, lambda tmp: _write_scores(tmp, header, table))
    print(f"wrote {len(X)} rows to {args.out}")
    if labels is not None:
        from ..apps.anomaly_metrics import threshold_metrics

        m = roc_pr_auc(labels, anomaly)
        t = threshold_metrics(labels, anomaly > -det.offset_)
        print(f"ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}")
        print(
            f"at the threshold ({t['flagged']} flagged): TPR {t['tpr']:.4f}  FPR {t['fpr']:.4f}  "
            f"precision {t['precision']:.4f}  F1 {t['f1']:.4f}"
        )
    if args.figure:
        from ..views.anomaly import score_figure
        from ..views.figures import save_figure

        save_figure(score_figure(anomaly, -det.offset_, labels), args.figure)
        print(f"wrote {args.figure}")
    return 0


def _write_scores(tmp: str, header: list[str], columns: list[np.ndarray]) -> None:
    import csv

    cells = [
        [f"{v:.9g}" for v in c] if c.dtype.kind == "f" else [str(v) for v in c] for c in columns
    ]
    with open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(zip(*cells, strict=True))


def _streamed_scores(args, det, names: list) -> np.ndarray | None:
    """The anomaly scores of data read block by block, or None for data loaded whole."""
    from ..data.stream import should_stream

    if args.data is None or not should_stream(args.data, args.stream):
        return None
    if args.limit is not None:
        raise ConfigError("--limit does not apply to streamed data; drop one of them")
    from ..apps.streamed import stream_scores

    reading = {"color": args.color, "resize": args.resize}
    return stream_scores(det, args.data, reading, names)


def _with_data(args, data: str):
    return argparse.Namespace(**{**vars(args), "data": data, "limit": None})
