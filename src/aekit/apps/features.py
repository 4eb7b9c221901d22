"""How good a code is as a feature (seeds 003, 004): a linear probe and clustering accuracy.

Both take codes Z (N, D_latent) with their labels y (N,). The linear probe is scikit-learn's
multinomial logistic regression on standardised codes, fitted on one set and scored on another;
clustering accuracy matches k-means clusters to classes one-to-one with the Hungarian
algorithm (:func:`scipy.optimize.linear_sum_assignment`) and counts the samples whose
cluster's class is their own.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["cluster_accuracy", "kmeans_accuracy", "linear_probe"]


def _check(Z, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    Z, y = np.asarray(Z), np.asarray(y)
    if Z.ndim != 2 or y.ndim != 1 or len(Z) != len(y) or len(y) == 0:
        raise DataError(
            f"{what}: codes of shape {Z.shape} and labels of shape {y.shape} do not match; "
            "pass codes (N, D) and one label per row"
        )
    if not np.all(np.isfinite(Z)):
        raise DataError(f"{what}: the codes hold NaN or infinite values")
    return Z, y


def cluster_accuracy(y_true, y_cluster) -> float:
    """The share of samples whose cluster maps to their class, under the best one-to-one map.

    Parameters
    ----------
    y_true : array of int, shape (N,)
        The classes.
    y_cluster : array of int, shape (N,)
        The cluster of each sample (any integer ids; their number may differ from the
        number of classes, unmatched clusters count as wrong).

    Returns
    -------
    float
        max over one-to-one maps m of mean(m(y_cluster) == y_true), in [0, 1].
    """
    y_true, y_cluster = np.asarray(y_true), np.asarray(y_cluster)
    if y_true.shape != y_cluster.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise DataError(
            f"cluster_accuracy: labels {y_true.shape} and clusters {y_cluster.shape} differ; "
            "pass one class and one cluster per sample"
        )
    from scipy.optimize import linear_sum_assignment

    classes, t = np.unique(y_true, return_inverse=True)
    clusters, c = np.unique(y_cluster, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (c, t), 1)  # counts[k, j]: samples of class j in cluster k
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def kmeans_accuracy(Z, y, n_clusters: int | None = None, seed: int = 0) -> float:
    """k-means (k = the number of classes unless given) on Z, scored by :func:`cluster_accuracy`."""
    Z, y = _check(Z, y, "kmeans_accuracy")
    from sklearn.cluster import KMeans

    k = int(n_clusters or len(np.unique(y)))
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(Z)
    return cluster_accuracy(y, labels)


def linear_probe(Z_train, y_train, Z_test, y_test, *, max_iter: int = 1000) -> float:
    """Test accuracy of a logistic regression fitted on standardised training codes.

    Parameters
    ----------
    Z_train, Z_test : arrays (N, D)
        Codes of the probe's training and test samples (the standardisation is fitted on
        Z_train only).
    y_train, y_test : arrays of int (N,)
        Their classes.
    max_iter : int
        L-BFGS iterations of the logistic regression (scikit-learn's default C = 1).

    Returns
    -------
    float
        The share of test samples classified correctly.
    """
    Z_train, y_train = _check(Z_train, y_train, "linear_probe (training codes)")
    Z_test, y_test = _check(Z_test, y_test, "linear_probe (test codes)")
    if Z_train.shape[1] != Z_test.shape[1]:
        raise DataError(
            f"linear_probe: training codes have {Z_train.shape[1]} columns, test codes "
            f"{Z_test.shape[1]}; encode both with the same model"
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(Z_train, y_train)
    return float(probe.score(Z_test, y_test))
