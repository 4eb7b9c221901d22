"""How well anomaly scores and flags find labelled anomalies: 0/1 labels read from a file and
checked, the TPR / FPR / precision / F1 of a threshold's flags, ROC-AUC and PR-AUC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError


def threshold_metrics(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """TPR (recall), FPR, precision and F1 of 0/1 ``flags`` against 0/1 ``labels``."""
    y, f = np.asarray(labels).astype(bool), np.asarray(flags).astype(bool)
    tp, fp = int(np.sum(f & y)), int(np.sum(f & ~y))
    fn, tn = int(np.sum(~f & y)), int(np.sum(~f & ~y))
    tpr = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr else 0.0
    return {
        "tpr": tpr,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "precision": precision,
        "f1": f1,
        "flagged": tp + fp,
    }


def check_labels(labels: Any, n: int) -> np.ndarray:
    """0/1 labels (1 = anomaly) of length n with both classes, else a one-line DataError."""
    y = np.asarray(labels).ravel()
    if y.shape[0] != n:
        raise DataError(f"labels have {y.shape[0]} entries but the data has {n} rows")
    numeric = y.dtype == bool or np.issubdtype(y.dtype, np.number)
    if not numeric or not np.all(np.isin(y, (0, 1))):
        raise DataError("labels must be 0 (normal) or 1 (anomaly), one per row")
    if len(np.unique(y)) < 2:
        raise DataError("labels hold a single class; ROC-AUC needs normal and anomalous rows")
    return y.astype(int)


def read_labels(path: str | os.PathLike, n: int) -> np.ndarray:
    """Labels from a .npy, .csv/.txt (one column, header allowed) or .npz (key ``y``) file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no labels file at {path}")
    try:
        if path.suffix == ".npy":
            y = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "y" not in f:
                    raise DataError(f"{path} has no array 'y' (the labels)")
                y = f["y"]
        else:
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            if lines and not _is_number(lines[0]):
                lines = lines[1:]  # a header ("1.0e+00" is a number, not a header)
            y = np.array([float(v) for v in lines])
    except (ValueError, OSError):
        raise DataError(
            f"cannot read labels from {path}: expected one 0/1 value per row (a single column)"
        ) from None
    return check_labels(y, n)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def roc_pr_auc(labels: np.ndarray, anomaly: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision) of anomaly scores, higher = more abnormal."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(labels, anomaly)),
        "pr_auc": float(average_precision_score(labels, anomaly)),
    }
