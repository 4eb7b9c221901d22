"""Issue 23, point 2: ensembles of aekit's unsupervised table score with classical detectors.

``cache``: for each set and split seed (ADBench's protocol, the splits and min-max scaling of
benchmarks/anomaly.py), fit aekit's default detector (unsupervised) once and keep its scores
of the training and test rows, those of its two parts (the autoencoders alone and the
nearest-neighbour distance), and the scores of scikit-learn's IsolationForest and PyOD's
ECOD at their defaults on the same rows; ``score``: the mean ROC-AUC of ensembles of those
scores from the caches (labels of the training rows are never used: every member is
standardised on its own training-row scores).

    cd benchmarks
    OMP_NUM_THREADS=1 python anomaly_ensemble_study.py cache --sets 16 --seeds 0 1
    OMP_NUM_THREADS=1 python anomaly_ensemble_study.py score --sets 16 --seeds 0 1 \
        --grid declared --out ensemble_declared

The grid ``declared`` was written down before any of it was scored (benchmarks/README.md,
anomaly.py); it is scored on the 16 sets, seeds 0, 1 (chosen on), and its pick once on seeds
2, 3 and on the validation sets (``--grid confirm``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from _common import save_result
from anomaly import SETS, VALIDATION, split
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from aekit.apps import anomaly as A
from aekit.sklearn import AutoencoderOutlierDetector

CACHE = Path(__file__).resolve().parents[1] / "runs" / "anomaly_ensemble_study"
MEMBERS = ("default", "ae", "knn", "iforest", "ecod")


def cache_path(name, seed, cap, tag):
    return CACHE / f"{tag}_{name}_{seed}_{cap}.npz"


def fit_scores(X_tr, X_te, seed, params):
    """{member: (training scores, test scores)}, larger = more abnormal."""
    from pyod.models.ecod import ECOD

    out = {}
    torch.manual_seed(seed)
    det = AutoencoderOutlierDetector(random_state=seed, device="cpu", **params)
    det.fit(X_tr)
    out["default"] = (-det.score_samples(X_tr), -det.score_samples(X_te))
    for part, X in (("tr", X_tr), ("te", X_te)):
        Xs = det._scaled(X.astype(np.float32))
        ae = A.anomaly_scores(det._nets(), det.member_stats_, Xs, det.error_scales_, None)
        kn = det._knn_part(Xs) if det.n_neighbors_ is not None else np.zeros(len(X))
        out.setdefault("ae", [None, None])[part == "te"] = ae
        out.setdefault("knn", [None, None])[part == "te"] = kn
    f = IsolationForest(random_state=seed).fit(X_tr)
    out["iforest"] = (-f.score_samples(X_tr), -f.score_samples(X_te))
    e = ECOD().fit(X_tr)
    out["ecod"] = (e.decision_scores_, e.decision_function(X_te))
    return out


def cache(sets, seeds, cap, params, tag):
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in sets:
        for seed in seeds:
            path = cache_path(name, seed, cap, tag)
            if path.exists():
                continue
            X_tr, y_tr, X_te, y_te = split(name, seed, cap)
            s = fit_scores(X_tr, X_te, seed, params)
            arrays = {f"{m}_{p}": np.asarray(s[m][i], np.float64) for m in s for i, p in
                      enumerate(("tr", "te"))}  # fmt: skip
            np.savez(path, y_tr=y_tr, y_te=y_te, **arrays)
            print(name, seed, flush=True)


def standardise(tr, te, norm, kept=None):
    """A member's (training, test) scores on a common scale, from its training scores only:
    ``z`` mean and sd; ``zref`` mean and sd of the ``kept`` rows (those the autoencoders
    find most normal); ``rank`` the training rows' empirical CDF (ties averaged)."""
    if norm in ("z", "zref"):
        ref = tr if norm == "z" else tr[kept]
        mu, sd = ref.mean(), max(ref.std(), 1e-12)
        return (tr - mu) / sd, (te - mu) / sd
    ref = np.sort(tr)

    def cdf(x):
        lo = np.searchsorted(ref, x, "left")
        hi = np.searchsorted(ref, x, "right")
        return (lo + hi) / (2.0 * len(ref))

    return cdf(tr), cdf(te)


def combine(c, weights, norm, how="mean"):
    """Test scores of a weighted ensemble of the cached members (weights: {member: w}).

    ``how`` "mean": the weighted mean of the standardised members; "agree": each member's
    weight multiplied by the Spearman correlation of its training scores with the mean of
    the others' (a label-free per-set weight, floored at 0); "pseudo": each member's weight
    multiplied by (its ROC-AUC - 0.5, floored at 0) on pseudo-labels of the training rows: the
    5% the equal-weight ensemble scores highest against the 70% it scores lowest."""
    kept = A.clean_rows(c["ae_tr"], A.KNN_CLEAN)
    parts = {m: standardise(c[f"{m}_tr"], c[f"{m}_te"], norm, kept) for m in weights}
    w = dict(weights)
    if how == "agree":
        from scipy.stats import spearmanr

        for m in weights:
            rest = np.mean([parts[o][0] for o in weights if o != m], axis=0)
            w[m] = weights[m] * max(float(spearmanr(parts[m][0], rest)[0]), 0.0)
    elif how == "pseudo":
        mean = np.mean([parts[m][0] for m in weights], axis=0)
        hi, lo = mean >= np.quantile(mean, 0.95), mean <= np.quantile(mean, 0.7)
        labels = np.r_[np.ones(hi.sum()), np.zeros(lo.sum())]
        for m in weights:
            auc = roc_auc_score(labels, np.r_[parts[m][0][hi], parts[m][0][lo]])
            w[m] = weights[m] * max(auc - 0.5, 0.0)
    if how != "mean" and sum(w.values()) == 0:
        w = dict(weights)
    total = sum(w.values())
    return sum(w[m] * parts[m][1] for m in weights) / total


DERIVED = ("iforest_clean", "ecod_clean", "knn_copula", "knn_multi")
FOREST_SEED = 0  # --forest-seed: iforest_clean's random_state is the split seed plus this


def derive(c, name, seed, cap, members):
    """Members computed from the split itself (the detector's standardised rows and its
    reference rows: the training rows less the 30% the autoencoders score highest):
    ``iforest_clean`` / ``ecod_clean`` IsolationForest / ECOD fitted on those rows only;
    ``knn_copula`` the mean distance to the 10 nearest reference rows after each column is
    mapped through its training rows' empirical CDF; ``knn_multi`` the mean of the
    standardised mean distances to the 5, 10 and 20 nearest reference rows."""
    if not set(members) & set(DERIVED):
        return
    X_tr, _, X_te, _ = split(name, seed, cap)
    off, sc = A.fit_scaling(X_tr.astype(np.float32), "standard")
    Xs_tr = (X_tr.astype(np.float32) - off) * sc
    Xs_te = (X_te.astype(np.float32) - off) * sc
    kept = A.clean_rows(c["ae_tr"], A.KNN_CLEAN)
    if "iforest_clean" in members:
        f = IsolationForest(random_state=seed + FOREST_SEED).fit(X_tr[kept])
        c["iforest_clean_tr"], c["iforest_clean_te"] = (
            -f.score_samples(X_tr),
            -f.score_samples(X_te),
        )
    if "ecod_clean" in members:
        from pyod.models.ecod import ECOD

        e = ECOD().fit(X_tr[kept])
        c["ecod_clean_tr"], c["ecod_clean_te"] = (
            e.decision_function(X_tr),
            e.decision_function(X_te),
        )
    if "knn_copula" in members:
        ref = np.sort(X_tr, axis=0)

        def cop(X):
            return np.stack(
                [np.searchsorted(ref[:, j], X[:, j], "right") for j in range(X.shape[1])], 1
            ) / len(ref)

        R_tr, R_te = cop(X_tr), cop(X_te)
        c["knn_copula_tr"] = A.knn_training_distances(R_tr, kept, 10)
        c["knn_copula_te"] = A.knn_distances(R_tr[kept], R_te, 10)
    if "knn_multi" in members:
        tr, te = 0.0, 0.0
        for k in (5, 10, 20):
            a = A.knn_training_distances(Xs_tr.astype(np.float64), kept, k)
            b = A.knn_distances(Xs_tr[kept].astype(np.float64), Xs_te.astype(np.float64), k)
            t, u = standardise(a, b, "z")
            tr, te = tr + t / 3, te + u / 3
        c["knn_multi_tr"], c["knn_multi_te"] = tr, te


def score(sets, seeds, cap, tag, grid):
    caches = {(n, s): dict(np.load(cache_path(n, s, cap, tag))) for n in sets for s in seeds}
    members = {m for weights, _, _ in grid.values() for m in weights}
    for (n, s), c in caches.items():
        derive(c, n, s, cap, members)
    out = {}
    for key, (weights, norm, how) in grid.items():
        per = {}
        for n in sets:
            aucs = [
                roc_auc_score(caches[n, s]["y_te"], combine(caches[n, s], weights, norm, how))
                for s in seeds
            ]
            per[n] = float(np.mean(aucs))
        out[key] = {"mean": float(np.mean(list(per.values()))), "per_set": per}
        print(f"{key:40s} {out[key]['mean']:.4f}", flush=True)
    return out


def _grid(rows):
    return {
        f"{'+'.join(f'{m}:{w:g}' for m, w in weights.items())} {norm} {how}": (weights, norm, how)
        for weights, norm, how in rows
    }


GRIDS = {
    # written down before it was scored; members alone first, for reference
    "declared": lambda: _grid(
        [({m: 1.0}, "z", "mean") for m in MEMBERS]
        + [
            (weights, norm, how)
            for norm in ("z", "rank")
            for weights, how in (
                ({"default": 0.75, "iforest": 0.25}, "mean"),
                ({"default": 0.5, "iforest": 0.5}, "mean"),
                ({"default": 0.75, "ecod": 0.25}, "mean"),
                ({"default": 0.5, "ecod": 0.5}, "mean"),
                ({"default": 0.5, "iforest": 0.25, "ecod": 0.25}, "mean"),
                ({"default": 1 / 3, "iforest": 1 / 3, "ecod": 1 / 3}, "mean"),
                ({"ae": 1 / 3, "knn": 1 / 3, "iforest": 1 / 3}, "mean"),
                ({"default": 1 / 3, "iforest": 1 / 3, "ecod": 1 / 3}, "agree"),
                ({"ae": 0.25, "knn": 0.25, "iforest": 0.25, "ecod": 0.25}, "agree"),
                ({"default": 1 / 3, "iforest": 1 / 3, "ecod": 1 / 3}, "pseudo"),
                ({"ae": 0.25, "knn": 0.25, "iforest": 0.25, "ecod": 0.25}, "pseudo"),
                ({"ae": 0.5, "knn": 0.5}, "mean"),
            )
        ]
    ),
    # the second grid, written down after the first had lost everywhere and before it was
    # scored: members fitted on the rows the autoencoders find most normal, other spaces
    "second": lambda: _grid(
        [({m: 1.0}, "z", "mean") for m in DERIVED]
        + [
            ({"default": 0.75, "iforest_clean": 0.25}, "z", "mean"),
            ({"default": 0.5, "iforest_clean": 0.5}, "z", "mean"),
            ({"default": 0.75, "ecod_clean": 0.25}, "z", "mean"),
            ({"ae": 1 / 3, "knn": 1 / 3, "iforest_clean": 1 / 3}, "z", "mean"),
            ({"ae": 0.5, "knn_copula": 0.5}, "z", "mean"),
            ({"ae": 0.5, "knn_multi": 0.5}, "z", "mean"),
            ({"ae": 1 / 3, "knn": 1 / 3, "knn_copula": 1 / 3}, "z", "mean"),
            ({"default": 0.75, "iforest_clean": 0.25}, "rank", "mean"),
        ]
    ),
    # the third, written down after the second and before it was scored: every member
    # standardised on the rows the autoencoders find most normal, as the default's two parts
    "third": lambda: _grid(
        [
            ({"default": 0.75, "iforest_clean": 0.25}, "zref", "mean"),
            ({"default": 0.5, "iforest_clean": 0.5}, "zref", "mean"),
            ({"ae": 1 / 3, "knn": 1 / 3, "iforest_clean": 1 / 3}, "zref", "mean"),
            ({"ae": 0.25, "knn": 0.5, "iforest_clean": 0.25}, "zref", "mean"),
            ({"ae": 0.5, "knn_multi": 0.5}, "zref", "mean"),
        ]
    ),
    # the one confirmation: the default and the three grids' best on the 16 sets, seeds 0, 1
    "confirm": lambda: _grid(
        [
            ({"default": 1.0}, "z", "mean"),
            ({"default": 0.75, "iforest_clean": 0.25}, "z", "mean"),
        ]
    ),
}


def main():
    global CACHE, FOREST_SEED  # --cache, --forest-seed
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["cache", "score"])
    p.add_argument("--sets", nargs="+", default=["16"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--cap", type=int, default=10_000)
    p.add_argument("--aekit", default="{}", help="JSON of detector parameters (cache)")
    p.add_argument("--tag", default="default", help="names the cache files")
    p.add_argument("--grid", default="declared", help="declared, or JSON [weights, norm, how]")
    p.add_argument("--out", help="write results/anomaly_ensemble_study_<OUT>.json")
    p.add_argument("--cache", type=Path, default=CACHE, help="folder of the cached fits")
    p.add_argument("--forest-seed", type=int, default=0, help="added to iforest_clean's seed")
    a = p.parse_args()
    CACHE, FOREST_SEED = a.cache, a.forest_seed
    torch.set_num_threads(1)
    sets = [n for s in a.sets for n in {"16": SETS, "validation": VALIDATION}.get(s, [s])]
    if a.what == "cache":
        cache(sets, a.seeds, a.cap, json.loads(a.aekit), a.tag)
        return
    if a.grid in GRIDS:
        grid = GRIDS[a.grid]()
    else:
        grid = _grid([tuple(json.loads(g)) for g in a.grid.split(";")])
    res = score(sets, a.seeds, a.cap, a.tag, grid)
    if a.out:
        result = {"sets": sets, "seeds": a.seeds, "cap": a.cap, "grid": a.grid, "variants": res}
        print(f"wrote {save_result('anomaly_ensemble_study_' + a.out, result)}")


if __name__ == "__main__":
    main()
