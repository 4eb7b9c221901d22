"""An isolation forest kept as plain arrays: fitted by scikit-learn, scored here, saved without
pickle.

scikit-learn's :class:`~sklearn.ensemble.IsolationForest` (its defaults: 100 trees, each on
min(256, n) rows, depth at most ceil(log2 of those rows)) grows the trees; :func:`fit_forest`
flattens them into the arrays of ``FOREST_KEYS`` (every tree's nodes one after the other), and
:func:`isolation_scores` walks them: a row's path length in a tree is the depth of the leaf it
reaches plus c(n), the average path length of an unsuccessful search among the n training
rows of that leaf (Liu et al. 2008), and its score 2 ** (-mean path length / c(rows per
tree)), which is scikit-learn's -score_samples: higher = more abnormal.
"""

from __future__ import annotations

import numpy as np

FOREST_KEYS = ("feature", "threshold", "left", "right", "value", "roots", "norm")


def average_path_length(n) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary search tree of n
    keys; 0 for n <= 1, 1 for n = 2, else 2 (ln(n - 1) + Euler's gamma) - 2 (n - 1) / n."""
    n = np.asarray(n, dtype=np.float64)
    out = np.where(n == 2, 1.0, 0.0)
    big = n > 2
    m = np.where(big, n, 3.0)  # no log of values the mask discards
    return np.where(big, 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m, out)


def fit_forest(X: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The arrays of an isolation forest fitted on rows X (N, D), N >= 1, with seed ``seed``.

    ``feature``, ``threshold``, ``left``, ``right``: per node (left -1 at a leaf; a row goes
    left when its value is at most the threshold, compared in float32 as scikit-learn does);
    ``value``: at a leaf, its depth (the root's 0) plus c(training rows in it); ``roots``:
    each tree's first node; ``norm``: trees times c(rows per tree)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(random_state=int(seed)).fit(np.asarray(X, dtype=np.float64))
    parts: dict[str, list] = {k: [] for k in FOREST_KEYS[:-1]}
    start = 0
    for est in forest.estimators_:
        t = est.tree_
        left, right = t.children_left.astype(np.int64), t.children_right.astype(np.int64)
        depth = np.zeros(t.node_count, dtype=np.int64)
        for i in range(t.node_count):  # children come after their parent
            if left[i] >= 0:
                depth[left[i]] = depth[right[i]] = depth[i] + 1
        leaf = left < 0
        parts["feature"].append(np.where(leaf, 0, t.feature).astype(np.int64))
        parts["threshold"].append(np.where(leaf, 0.0, t.threshold))
        parts["left"].append(np.where(leaf, -1, left + start))
        parts["right"].append(np.where(leaf, -1, right + start))
        value = depth + average_path_length(t.n_node_samples)
        parts["value"].append(np.where(leaf, value, 0.0))
        parts["roots"].append(np.array([start], dtype=np.int64))
        start += t.node_count
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["norm"] = np.array([len(forest.estimators_) * average_path_length(forest.max_samples_)])
    return out


def isolation_scores(forest: dict[str, np.ndarray], X: np.ndarray, batch: int = 4096):
    """Each row's isolation score (N,), 2 ** (-mean path length / c(rows per tree)): higher =
    more abnormal, in (0, 1]; 0.5 for every row when the trees hold one row each."""
    X = np.asarray(X, dtype=np.float32).astype(np.float64)  # as scikit-learn's trees compare
    feature, threshold = forest["feature"], forest["threshold"]
    left, right, value, roots = forest["left"], forest["right"], forest["value"], forest["roots"]
    norm = float(forest["norm"][0])
    out = np.empty(len(X))
    for i in range(0, len(X), batch):
        x = X[i : i + batch]
        rows = np.arange(len(x))[:, None]
        node = np.repeat(roots[None, :], len(x), axis=0)  # (rows, trees)
        inner = left[node] >= 0
        while inner.any():
            go_left = x[rows, feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            inner = left[node] >= 0
        depth = value[node].sum(axis=1)
        out[i : i + batch] = 2.0 ** (-depth / norm) if norm > 0 else 0.5
    return out


def check_forest(forest: dict, n_features: int) -> bool:
    """Whether ``forest`` holds a walkable forest over ``n_features`` columns (a file's)."""
    if any(k not in forest for k in FOREST_KEYS):
        return False
    n = len(forest["feature"])
    same = all(len(forest[k]) == n for k in ("threshold", "left", "right", "value"))
    if not same or n == 0 or len(forest["roots"]) == 0 or len(forest["norm"]) != 1:
        return False
    f, lo, hi = forest["feature"], forest["left"], forest["right"]
    idx = np.arange(n)
    inner = lo >= 0
    ok_children = np.all((lo[inner] > idx[inner]) & (lo[inner] < n) & (hi[inner] > idx[inner]))
    ok_children = ok_children and np.all(hi[inner] < n)
    roots = forest["roots"]
    return bool(
        ok_children
        and np.all((f >= 0) & (f < n_features))
        and np.all((roots >= 0) & (roots < n))
        and np.all(np.isfinite(forest["value"]))
    )
