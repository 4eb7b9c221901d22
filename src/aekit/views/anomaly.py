"""Figures of an anomaly detector: score histograms with the threshold, and the ROC curve."""

from __future__ import annotations

import numpy as np

from .figures import _pyplot


def score_figure(anomaly: np.ndarray, threshold: float, labels: np.ndarray | None = None):
    """Histograms of anomaly scores (higher = more abnormal) and the threshold; ROC if labels.

    Parameters
    ----------
    anomaly : array of shape (n,)
        Anomaly scores, e.g. ``-detector.score_samples(X)``.
    threshold : float
        Rows scoring above it are flagged (``-detector.offset_``).
    labels : array of shape (n,) or None
        1 = anomaly, 0 = normal: histograms per class and a second panel with the ROC curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(9 if labels is not None else 5, 3.5))
    ax = fig.add_subplot(1, 2 if labels is not None else 1, 1)
    bins = np.histogram_bin_edges(anomaly, bins=50)
    if labels is None:
        ax.hist(anomaly, bins=bins, color="C0", alpha=0.8, label="all rows")
    else:
        for value, name, color in ((0, "normal", "C0"), (1, "anomalous", "C3")):
            ax.hist(anomaly[labels == value], bins=bins, color=color, alpha=0.6, label=name)
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    ax.set_xlabel("anomaly score (higher = more abnormal)")
    ax.set_ylabel("rows")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    if labels is not None:
        from sklearn.metrics import roc_auc_score, roc_curve

        fpr, tpr, _ = roc_curve(labels, anomaly)
        roc = fig.add_subplot(1, 2, 2)
        roc.plot(fpr, tpr, color="C3", label=f"ROC-AUC {roc_auc_score(labels, anomaly):.3f}")
        roc.plot([0, 1], [0, 1], color="0.6", ls=":")
        flagged = anomaly > threshold
        roc.plot(
            [flagged[labels == 0].mean()], [flagged[labels == 1].mean()], "ko", label="threshold"
        )
        roc.set_xlabel("false-positive rate")
        roc.set_ylabel("true-positive rate")
        roc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
