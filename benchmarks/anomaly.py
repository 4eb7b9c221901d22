"""Anomaly detection on ADBench tabular sets and MNIST one-class novelty (issues 10, 23).

ADBench's protocol: a stratified 70/30 split per seed; min-max scaling fitted on the training
part; ROC-AUC and PR-AUC (average precision) on the test part; means over the seeds (0 and 1
by default). ``--setting unsupervised``: every detector fits the whole training part, its
anomalies in it (labels unused); ``novelty``: only the training part's normal rows (ADBench's
semi-supervised setting; aekit with ``novelty=True``). aekit's default
``AutoencoderOutlierDetector`` runs beside scikit-learn's IsolationForest, PyOD's classical
zoo (KNN, LOF, ECOD, COPOD, HBOS, OCSVM, PCA) and its AutoEncoder and VAE, all at their
defaults (``random_state`` = seed where they take one), in one process on one thread, on the
same splits. ``--sets 16``: the 16 sets of issue 10 (where variants are chosen);
``validation``: the 11 larger sets of issue 23, each a stratified subsample of at most
``--cap`` rows (drawn with the split's seed) before the split. MNIST: train on one digit's
training images (clean rows); on the test split that digit is normal, the other nine
anomalous; aekit's image default (the images given as images, ``novelty=True``), PCA
reconstruction error, IsolationForest and the mean distance to the 5 nearest training images.

    OMP_NUM_THREADS=1 python benchmarks/anomaly.py --digits --setting both
    OMP_NUM_THREADS=1 python benchmarks/anomaly.py --setting none --mnist-test-limit 2000
    OMP_NUM_THREADS=1 python benchmarks/anomaly.py --setting none --mnist-test-limit 2000 \
        --mnist-no-novelty --digits 0 1 2 --tag mnist_unsupervised
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch
from _common import data_dir, save_result
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from aekit.apps.anomaly_metrics import roc_pr_auc
from aekit.data import load_dataset
from aekit.sklearn import AutoencoderOutlierDetector

SETS = (
    "12_fault 15_Hepatitis 18_Ionosphere 20_letter 24_mnist 26_optdigits 28_pendigits "
    "2_annthyroid 31_satimage-2 37_Stamps 39_vertebral 41_Waveform 43_WDBC 45_wine 47_yeast "
    "6_cardio"
).split()
VALIDATION = (
    "1_ALOI 5_campaign 8_celeba 10_cover 11_donors 16_http 22_magic.gamma 23_mammography "
    "32_shuttle 33_skin 34_smtp"
).split()
SEEDS = [0, 1]
CLASSICAL = ("iforest", "knn", "lof", "ecod", "copod", "hbos", "ocsvm", "pca")


AEKIT_PARAMS: dict = {}  # --aekit '{"trim": 0}' measures a variant of the default


def aekit_default(seed: int, novelty: bool = False, **kw):
    params = {**AEKIT_PARAMS, **kw, **({"novelty": True} if novelty else {})}
    det = AutoencoderOutlierDetector(random_state=seed, device="cpu", **params)
    return det.fit, lambda X: -det.score_samples(X)


def iforest(seed: int, novelty: bool = False):
    det = IsolationForest(random_state=seed)
    return det.fit, lambda X: -det.score_samples(X)


def pyod(kind: str):
    def make(seed: int, novelty: bool = False):
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.vae import VAE

        det = (AutoEncoder if kind == "ae" else VAE)(random_state=seed, verbose=0)
        return det.fit, det.decision_function

    return make


def classical(kind: str):
    """A PyOD classical detector at its defaults (random_state where it takes one)."""

    def make(seed: int, novelty: bool = False):
        from pyod.models.copod import COPOD
        from pyod.models.ecod import ECOD
        from pyod.models.hbos import HBOS
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF
        from pyod.models.ocsvm import OCSVM
        from pyod.models.pca import PCA as PyodPCA

        det = {
            "knn": KNN,
            "lof": LOF,
            "ecod": ECOD,
            "copod": COPOD,
            "hbos": HBOS,
            "ocsvm": OCSVM,
            "pca": lambda: PyodPCA(random_state=seed),
        }[kind]()
        if kind != "pca":
            return det.fit, det.decision_function
        # PyOD's PCA standardises columns and divides by every component's variance: a
        # column constant on the training part, or a zero-variance component (linearly
        # dependent columns: 6_cardio), gives NaN scores. So PCA sees only the columns that
        # vary there and keeps as many components as their rank.
        keep: list = []

        def fit(X):
            keep[:] = [np.ptp(X, axis=0) > 0]
            Xk = X[:, keep[0]]
            Z = (Xk - Xk.mean(0)) / Xk.std(0)
            det.set_params(n_components=min(np.linalg.matrix_rank(Z), len(X) - 1))
            det.fit(Xk)

        return fit, lambda X: det.decision_function(X[:, keep[0]])

    return make


TABULAR = {
    "aekit": aekit_default,
    "iforest": iforest,
    **{k: classical(k) for k in CLASSICAL if k != "iforest"},
    "pyod_ae": pyod("ae"),
    "pyod_vae": pyod("vae"),
}
DEFAULT_DETECTORS = ["aekit", *CLASSICAL, "pyod_ae"]


def split(name: str, seed: int, cap: int | None = None):
    """(X_train, y_train, X_test, y_test), min-max scaled on X_train; at most ``cap`` rows
    (a stratified subsample drawn with ``seed``) before the 70/30 split."""
    with np.load(data_dir() / "adbench" / f"{name}.npz") as f:
        X, y = f["X"].astype(np.float64), f["y"].astype(int)
    if cap is not None and len(X) > cap:
        X, _, y, _ = train_test_split(X, y, train_size=cap, stratify=y, random_state=seed)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    scaler = MinMaxScaler().fit(X_tr)
    return scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te


def run_one(make, seed, X_tr, X_te, y_te, novelty=False) -> tuple[dict, float, np.ndarray]:
    """(ROC-AUC and PR-AUC, seconds to fit and score, test scores) of one detector on one
    split."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    fit, score = make(seed, novelty) if novelty else make(seed)
    fit(X_tr)
    anomaly = np.asarray(score(X_te), dtype=np.float64)
    seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(anomaly)):
        nan = float("nan")
        return {"roc_auc": nan, "pr_auc": nan, "non_finite": True}, seconds, anomaly
    return roc_pr_auc(y_te, anomaly), seconds, anomaly


def tabular(
    detectors: list[str],
    sets: list[str],
    novelty: bool = False,
    cap: int | None = None,
    scores: dict | None = None,
) -> dict:
    """Per set and mean ROC-AUC / PR-AUC and seconds of each detector. ``novelty``: fit on
    the training part's normal rows only. ``scores``, when given, collects every split's
    test labels and scores (``--scores``, for study scripts)."""
    rows: dict = {d: {"per_set": {}, "seconds": 0.0} for d in detectors}
    for name in sets:
        for seed in SEEDS:
            X_tr, y_tr, X_te, y_te = split(name, seed, cap)
            X_fit = X_tr[y_tr == 0] if novelty else X_tr
            if scores is not None:
                scores[f"{name}/{seed}/y"] = y_te
            for d in detectors:
                metrics, seconds, anomaly = run_one(TABULAR[d], seed, X_fit, X_te, y_te, novelty)
                per = rows[d]["per_set"].setdefault(name, {"roc_auc": [], "pr_auc": []})
                per["roc_auc"].append(metrics["roc_auc"])
                per["pr_auc"].append(metrics["pr_auc"])
                rows[d]["seconds"] += seconds
                if scores is not None:
                    scores[f"{name}/{seed}/{d}"] = anomaly
        line = "  ".join(
            f"{d} {np.mean(rows[d]['per_set'][name]['roc_auc']):.3f}" for d in detectors
        )
        print(f"{name:16s} ROC-AUC  {line}", flush=True)
    for d in detectors:
        per_set = rows[d]["per_set"]
        for name, per in per_set.items():
            per_set[name] = {k: float(np.mean(v)) for k, v in per.items()}
        for k in ("roc_auc", "pr_auc"):
            rows[d][f"mean_{k}"] = float(np.mean([per[k] for per in per_set.values()]))
        print(
            f"{d:9s} mean ROC-AUC {rows[d]['mean_roc_auc']:.4f}  PR-AUC "
            f"{rows[d]['mean_pr_auc']:.4f}  {rows[d]['seconds']:.1f} s",
            flush=True,
        )
    best = max(
        (d for d in detectors if d in CLASSICAL),
        key=lambda d: rows[d]["mean_roc_auc"],
        default=None,
    )
    if best is not None:
        print(f"best classical: {best} {rows[best]['mean_roc_auc']:.4f}", flush=True)
    return rows


def mnist_one_class(
    digits: list[int], test_limit: int | None, name: str = "mnist", novelty: bool = True
) -> dict:
    """One-class novelty on MNIST (or Fashion-MNIST): fit on one class's training images (in
    [0, 1]: clean rows), score the test images (``test_limit``: the first N), that class
    normal and the others anomalous. aekit's image default is the detector given the images
    as images, (N, 28, 28), with ``novelty=True`` (``novelty`` False: not told that the
    training images are clean) and nothing else."""
    train = load_dataset(name, data_dir=data_dir(), split="train")
    test = load_dataset(name, data_dir=data_dir(), split="test", limit=test_limit)
    X_tr_all, X_te = train.X / np.float32(255), test.X / np.float32(255)

    def aekit_image(seed):
        det = AutoencoderOutlierDetector(random_state=seed, device="cpu", novelty=novelty)
        return (
            lambda X: det.fit(X.reshape(-1, 28, 28)),
            lambda X: -det.score_samples(X.reshape(-1, 28, 28)),
        )

    def pca(seed):
        model = PCA(n_components=0.9, random_state=seed)
        return model.fit, lambda X: ((model.inverse_transform(model.transform(X)) - X) ** 2).sum(1)

    def knn(seed):
        from sklearn.neighbors import NearestNeighbors

        model = NearestNeighbors(n_neighbors=5)
        return model.fit, lambda X: model.kneighbors(X)[0].mean(1)

    makers = {"aekit": aekit_image, "pca": pca, "iforest": iforest, "knn": knn}
    rows: dict = {k: {"per_digit": {}, "seconds": {}} for k in makers}
    for digit in digits:
        y = (test.labels != digit).astype(int)
        for k, make in makers.items():
            metrics, seconds, _ = run_one(make, 0, X_tr_all[train.labels == digit], X_te, y)
            rows[k]["per_digit"][str(digit)] = metrics["roc_auc"]
            rows[k]["seconds"][str(digit)] = seconds
        line = "  ".join(
            f"{k} {v['per_digit'][str(digit)]:.4f} ({v['seconds'][str(digit)]:.1f} s)"
            for k, v in rows.items()
        )
        print(f"{name} class {digit} ROC-AUC  {line}", flush=True)
    for k in makers:
        rows[k]["mean_roc_auc"] = float(np.mean(list(rows[k]["per_digit"].values())))
        rows[k]["total_seconds"] = float(sum(rows[k]["seconds"].values()))
        print(
            f"{name} {k:8s} mean ROC-AUC {rows[k]['mean_roc_auc']:.4f}  "
            f"{rows[k]['total_seconds']:.1f} s"
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--detectors", nargs="+", default=DEFAULT_DETECTORS, choices=list(TABULAR))
    p.add_argument(
        "--sets",
        nargs="+",
        default=["16"],
        choices=["16", "validation", *SETS, *VALIDATION],
        help="16: issue 10's sets (default); validation: issue 23's 11 others; or names",
    )
    p.add_argument(
        "--setting",
        choices=["unsupervised", "novelty", "both", "none"],
        default="unsupervised",
        help="the tables' setting; none: no tables (the one-class images only)",
    )
    p.add_argument(
        "--cap", type=int, default=10_000, help="at most this many rows per set (stratified)"
    )
    p.add_argument("--scores", help="also write every split's test scores to this .npz")
    p.add_argument("--digits", nargs="*", type=int, default=list(range(10)))
    p.add_argument("--mnist-test-limit", type=int, help="score only the first N test images")
    p.add_argument(
        "--mnist-set",
        choices=["mnist", "fashion-mnist"],
        default="mnist",
        help="the one-class image set (default: mnist)",
    )
    p.add_argument(
        "--mnist-no-novelty",
        action="store_true",
        help="aekit's image detector without novelty=True (not told the images are clean)",
    )
    p.add_argument("--aekit", default="{}", help="JSON of detector parameters to change")
    p.add_argument("--tag", help="write results/anomaly_<tag>.json instead")
    p.add_argument("--seeds", nargs="+", type=int, help="split seeds (default: 0 1)")
    args = p.parse_args()
    AEKIT_PARAMS.update(json.loads(args.aekit))
    if args.seeds:  # other seeds check a choice made on seeds 0 and 1
        SEEDS[:] = args.seeds
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    sets = [n for s in args.sets for n in {"16": SETS, "validation": VALIDATION}.get(s, [s])]
    settings = {"both": ["unsupervised", "novelty"], "none": []}.get(args.setting, [args.setting])
    result = {
        "protocol": "ADBench: stratified 70/30, min-max fit on train; unsupervised: fit on "
        "the training part; novelty: fit on its normal rows",
        "seeds": list(SEEDS),
        "sets": sets,
        "cap": args.cap,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "aekit_params": AEKIT_PARAMS,
    }
    scores: dict | None = {} if args.scores else None
    for setting in settings:
        print(f"-- {setting}", flush=True)
        key = "tabular" if setting == "unsupervised" else "tabular_novelty"
        kept = {} if scores is not None else None
        result[key] = tabular(args.detectors, sets, setting == "novelty", args.cap, kept)
        if scores is not None:
            scores.update({f"{setting}/{k}": v for k, v in kept.items()})
    if scores is not None:
        np.savez_compressed(args.scores, **scores)
    if args.digits:
        result["mnist_set"] = args.mnist_set
        result["mnist_test_limit"] = args.mnist_test_limit
        result["mnist_novelty"] = not args.mnist_no_novelty
        result["mnist_one_class"] = mnist_one_class(
            args.digits, args.mnist_test_limit, args.mnist_set, not args.mnist_no_novelty
        )
    path = save_result("anomaly" + (f"_{args.tag}" if args.tag else ""), result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
