"""Codes as features (aekit.apps.features): Hungarian-matched clustering accuracy, the probe."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aekit.apps.features import cluster_accuracy, kmeans_accuracy, linear_probe
from aekit.errors import DataError


def brute_force_accuracy(y, c) -> float:
    """Max over every one-to-one map of clusters to classes: the definition, spelled out."""
    classes, clusters = np.unique(y), np.unique(c)
    best = 0.0
    for image in itertools.permutations(classes, len(clusters)):
        mapping = dict(zip(clusters, image, strict=True))
        best = max(best, float(np.mean([mapping[k] == t for k, t in zip(c, y, strict=True)])))
    return best


def test_renamed_clusters_are_perfect():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy(y, np.array([7, 7, 3, 3, 5, 5, 5])) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_cluster_accuracy_is_the_best_one_to_one_map(seed):
    rng = np.random.default_rng(seed)
    y, c = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    assert cluster_accuracy(y, c) == pytest.approx(brute_force_accuracy(y, c))


def test_fewer_clusters_than_classes_leave_classes_unmatched():
    y = np.array([0, 1, 2, 2])
    assert cluster_accuracy(y, np.zeros(4, dtype=int)) == 0.5  # one cluster -> class 2


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    centres = 10 * rng.normal(size=(3, 2))
    y = np.repeat(np.arange(3), 30)
    Z = centres[y] + 0.1 * rng.normal(size=(90, 2))
    assert kmeans_accuracy(Z, y) == 1.0


def test_linear_probe_reads_a_linear_code_and_not_noise():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 5))
    y = (Z[:, 0] + Z[:, 1] > 0).astype(int)
    assert linear_probe(Z[:300], y[:300], Z[300:], y[300:]) > 0.9
    shuffled = rng.permutation(y)
    assert linear_probe(Z[:300], shuffled[:300], Z[300:], shuffled[300:]) < 0.7


def test_mismatched_or_non_finite_codes_are_refused():
    Z, y = np.zeros((5, 2)), np.zeros(4, dtype=int)
    with pytest.raises(DataError, match="one label per row"):
        kmeans_accuracy(Z, y)
    with pytest.raises(DataError, match="one class and one cluster"):
        cluster_accuracy(np.zeros(3), np.zeros(4))
    Z = np.ones((4, 2))
    Z[1, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        linear_probe(Z, np.arange(4) % 2, Z, np.arange(4) % 2)
    with pytest.raises(DataError, match="same model"):
        linear_probe(np.ones((4, 2)), np.arange(4) % 2, np.ones((4, 3)), np.arange(4) % 2)
