"""AutoencoderOutlierDetector, the scoring recipe (aekit.apps.anomaly) and the score CLI."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.apps import anomaly, anomaly_metrics, detector, isolation
from aekit.cli import main
from aekit.errors import ConfigError, DataError
from aekit.functional import losses
from aekit.sklearn import AutoencoderOutlierDetector

FAST = dict(n_estimators=3, max_iter=6, random_state=0, device="cpu")


def _check_function(check):
    while isinstance(check, functools.partial):
        check = check.func
    return check


@parametrize_with_checks(
    [
        AutoencoderOutlierDetector(n_estimators=2, max_iter=4, random_state=0),
        AutoencoderOutlierDetector(model="vae", loss="mse", n_estimators=2, max_iter=4),
        AutoencoderOutlierDetector(
            loss=None, error_quantile=None, n_estimators=2, max_iter=4, random_state=0
        ),
        AutoencoderOutlierDetector(novelty=True, n_estimators=2, max_iter=4, random_state=0),
        AutoencoderOutlierDetector(
            isolation_weight=0.25, n_estimators=2, max_iter=4, random_state=0
        ),
    ]
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    if _check_function(check).__name__ == "check_array_api_input":
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")  # NumPy inputs only; see test_sklearn.py
    check(estimator)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """600 standard-normal rows in 8-d, the first 12 pushed 10 units along column 5."""
    X = np.random.default_rng(0).normal(size=(600, 8))
    X[:12, 5] += 10.0
    y = np.zeros(600, dtype=int)
    y[:12] = 1
    return X, y


@pytest.fixture(scope="module")
def fitted(planted) -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(random_state=0, device="cpu").fit(planted[0])


def test_planted_outliers_rank_first_and_feature_errors_name_the_column(planted, fitted):
    X, y = planted
    scores = fitted.score_samples(X)
    assert set(np.argsort(scores)[:12]) == set(np.flatnonzero(y))
    F = fitted.feature_errors(X)
    assert F.shape == X.shape
    assert np.all(np.argmax(F[:12], axis=1) == 5)
    # each row of feature_errors sums to the anomaly score up to one constant
    assert np.ptp(F.sum(axis=1) + scores) < 1e-9
    assert np.array_equal(fitted.predict(X), np.where(fitted.decision_function(X) < 0, -1, 1))
    # with the isolation part too, less its term (a forest's path length has no column shares)
    iso = AutoencoderOutlierDetector(isolation_weight=0.25, random_state=0, device="cpu").fit(X)
    scores = iso.score_samples(X)
    assert set(np.argsort(scores)[:12]) == set(np.flatnonzero(y))
    F = iso.feature_errors(X)
    assert np.all(np.argmax(F[:12], axis=1) == 5)
    assert np.ptp(F.sum(axis=1) + scores + _isolation_term(iso, X)) < 1e-9


def _isolation_term(det, X):
    """The isolation part's share of -score_samples: its weight times its standardised score."""
    iso = isolation.isolation_scores(det.isolation_forest_, det._scaled(X.astype(np.float32)))
    _, _, mu, sd = det.isolation_stats_
    return det.isolation_weight_ * (iso - mu) / sd


def _reference_scores(det, X_train, X, quantile):
    """The recipe by hand: per member, elementwise losses (the member's own, computed here
    from its reconstruction), each column divided by its training quantile floored at 1e-3
    of the mean, summed per row, standardised by the training rows; the members' mean.
    The detector reads X as float32, as the CLI reads files."""
    X_train, X = X_train.astype(np.float32), X.astype(np.float32)
    z = []
    for net in det._nets():
        rows = []
        for A in (det._scaled(X_train), det._scaled(X)):
            with torch.no_grad():
                x = torch.as_tensor(A)
                r = net.output(net.decode_logits(net.encode(x))).numpy() - A
            rows.append(r**2 if net.config.loss == "mse" else np.abs(r))
        e_train, e = rows
        div = np.ones(X.shape[1])
        if quantile is not None:
            div = np.quantile(e_train, quantile, axis=0) + 1e-3 * e_train.mean() + 1e-12
        s_train, s = (e_train / div).sum(axis=1), (e / div).sum(axis=1)
        z.append((s - s_train.mean()) / s_train.std())
    return np.mean(z, axis=0)


def test_error_quantile_auto_is_for_tables_not_images():
    assert anomaly.resolve_error_quantile("auto", "dense", "mixed", None) == 0.9
    assert anomaly.resolve_error_quantile("auto", "conv", None, (1, 28, 28)) is None
    assert anomaly.resolve_error_quantile("auto", "dense", "bce", None) is None
    assert anomaly.resolve_error_quantile(0.5, "conv", None, (1, 28, 28)) == 0.5
    assert anomaly.resolve_error_quantile(None, "dense", "mixed", None) is None


@pytest.mark.parametrize("quantile", ["auto", 0.5, None])
def test_mixed_loss_and_column_divisors_match_a_reference(planted, tmp_path, quantile):
    assert anomaly.member_losses("dense", "mixed", None, 5) == ["mse", "mae"] * 2 + ["mse"]
    assert anomaly.member_losses("dense", None, None, 3) == ["mse"] * 3
    assert anomaly.member_losses("dense", "mixed", (1, 2, 4), 2) == ["mse"] * 2  # images
    assert anomaly.member_losses("vae", "mixed", None, 2) == ["bce"] * 2  # not squared error
    X = planted[0]
    det = AutoencoderOutlierDetector(error_quantile=quantile, n_neighbors=None, **FAST)
    det.fit(X[::2])
    assert det.loss == "mixed" and [m.config.loss for m in det.models_] == ["mse", "mae", "mse"]
    scores = det.score_samples(X)
    assert np.ptp(det.feature_errors(X).sum(axis=1) + scores) < 1e-9
    ref = _reference_scores(det, X[::2], X, 0.9 if quantile == "auto" else quantile)
    np.testing.assert_allclose(-scores, ref, rtol=1e-7, atol=1e-7)
    again = AutoencoderOutlierDetector.load(det.save(tmp_path / "d"))
    assert np.array_equal(again.score_samples(X), scores)
    with pytest.raises(ConfigError, match="loss must be one of"):
        AutoencoderOutlierDetector(loss="auto").fit(X)


def test_detector_files_without_column_divisors_load_as_raw_sums(planted, tmp_path):
    """Files written before error_quantile existed have no error_scales_: errors summed raw."""
    X = planted[0]
    det = AutoencoderOutlierDetector(error_quantile=None, **FAST).fit(X)
    path = det.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    del config["detector"]["error_scales_"]
    del config["detector"]["params"]["error_quantile"]
    (path / "config.json").write_text(json.dumps(config))
    old = AutoencoderOutlierDetector.load(path)
    assert old.error_quantile is None
    assert np.array_equal(old.score_samples(X), det.score_samples(X))


def test_knn_distances_against_a_hand_computed_reference():
    R = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # k = 2, each row's own entry left out: 0 -> 1, 3; 1 -> 0, 3; 3 -> 1, then 0 or 6 (both
    # at 3); 6 -> 3, 10; 10 -> 6, 3
    want = [(1 + 3) / 2, (1 + 2) / 2, (2 + 3) / 2, (3 + 4) / 2, (4 + 7) / 2]
    assert anomaly.knn_distances(R, R, 2, self_excluded=True) == pytest.approx(want)
    assert anomaly.knn_distances(R, np.array([[2.0], [20.0]]), 2) == pytest.approx([1, 12])
    # reference rows 0, 3, 10 of the five: a reference row is not its own neighbour
    got = anomaly.knn_training_distances(R, np.array([0, 2, 4]), 1)
    assert got == pytest.approx([3, 1, 3, 3, 7])
    # column shares: (x - n)^2 / ||x - n||, averaged over the neighbours; rows sum to the mean
    R2 = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]])
    shares = anomaly.knn_feature_shares(R2, np.array([[6.0, 8.0], [3.0, 0.0]]), 1)
    np.testing.assert_allclose(shares, [[9 / 5, 16 / 5], [0.0, 0.0]])  # [3, 4]: 3^2/5, 4^2/5
    shares = anomaly.knn_feature_shares(R2, np.array([[6.0, 4.0]]), 2)  # [3, 4] then [3, 0]
    np.testing.assert_allclose(shares, [[(9 / 3 + 9 / 5) / 2, (0 + 16 / 5) / 2]])
    assert shares.sum() == pytest.approx(anomaly.knn_distances(R2, np.array([[6.0, 4.0]]), 2))
    # the blend: each part standardised by its training rows, half and half
    stats = anomaly.blend_stats(np.array([1.0, 3.0]), np.array([2.0, 6.0]))
    assert stats == (2.0, 1.0, 4.0, 2.0)
    assert anomaly.blend(np.array([4.0]), np.array([10.0]), stats) == pytest.approx([2.5])
    # with another weight (the isolation part's): 0.75 * (4 - 2) / 1 + 0.25 * (10 - 4) / 2
    assert anomaly.blend(np.array([4.0]), np.array([10.0]), stats, 0.25) == pytest.approx([2.25])
    assert anomaly.resolve_neighbors("auto", True) == 5
    assert anomaly.resolve_neighbors("auto", False) == 10
    assert anomaly.resolve_neighbors("auto", False, (1, 28, 28)) is None
    assert anomaly.resolve_neighbors("auto", True, (1, 28, 28)) == 5
    assert anomaly.resolve_neighbors(3, False) == 3
    assert anomaly.resolve_knn_clean("auto", True) == 0.0
    assert anomaly.resolve_knn_clean("auto", False) == anomaly.KNN_CLEAN == 0.3
    assert anomaly.resolve_knn_clean(0.1, True) == 0.1


def test_clean_rows_against_a_hand_computed_reference():
    scores = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.0])
    # share 0.3: the 0.7 quantile of 0..9 is 6.3; rows scoring 7, 8, 9 (2, 4, 6) are left out
    assert anomaly.clean_rows(scores, 0.3).tolist() == [0, 1, 3, 5, 7, 8, 9]
    assert anomaly.clean_rows(scores, 0.0).tolist() == list(range(10))
    assert anomaly.clean_rows(np.ones(4), 0.5).tolist() == [0, 1, 2, 3]  # ties are kept
    kept = np.array([0, 1, 3, 5, 7, 8, 9])
    rng = np.random.default_rng(0)
    assert anomaly.knn_reference(10, rng, kept).tolist() == kept.tolist()  # under the cap


def test_novelty_scores_match_a_reference(planted, tmp_path):
    """novelty=True: the members train untrimmed (as trim=0) and the score blends their
    standardised score with the standardised mean distance to the 5 nearest training rows."""
    X, y = planted
    X_train = X[12:][::2]  # clean rows
    det = AutoencoderOutlierDetector(novelty=True, **FAST).fit(X_train)
    assert det.n_neighbors_ == 5 and det.knn_reference_.shape == X_train.shape
    untrimmed = AutoencoderOutlierDetector(trim=0.0, n_neighbors=None, **FAST).fit(X_train)
    ae = _reference_scores(untrimmed, X_train, X, 0.9)
    ae_train = _reference_scores(untrimmed, X_train, X_train, 0.9)
    Z_train = det._scaled(X_train.astype(np.float32).astype(np.float64))
    Z = det._scaled(X.astype(np.float32).astype(np.float64))

    def mean5(D):  # brute force: the five smallest distances of each row, averaged
        return np.sort(D, axis=1)[:, :5].mean(axis=1)

    pair = np.sqrt(((Z_train[:, None] - Z_train[None]) ** 2).sum(-1))
    np.fill_diagonal(pair, np.inf)  # a training row is not its own neighbour
    knn_train = mean5(pair)
    knn = mean5(np.sqrt(((Z[:, None] - Z_train[None]) ** 2).sum(-1)))
    want = 0.5 * (ae - ae_train.mean()) / ae_train.std()
    want += 0.5 * (knn - knn_train.mean()) / knn_train.std()
    scores = det.score_samples(X)
    np.testing.assert_allclose(-scores, want, rtol=1e-6, atol=1e-6)
    assert set(np.argsort(scores)[:12]) == set(np.flatnonzero(y))
    F = det.feature_errors(X)
    assert np.ptp(F.sum(axis=1) + scores) < 1e-9
    assert np.all(np.argmax(F[:12], axis=1) == 5)
    again = AutoencoderOutlierDetector.load(det.save(tmp_path / "d"))
    assert (tmp_path / "d" / detector.REFERENCE_FILE).is_file()
    assert np.array_equal(again.score_samples(X), scores)
    off = AutoencoderOutlierDetector(novelty=True, n_neighbors=None, **FAST).fit(X_train)
    assert off.n_neighbors_ is None
    assert np.array_equal(off.score_samples(X), untrimmed.score_samples(X))
    with pytest.raises(ConfigError, match="n_neighbors must be"):
        AutoencoderOutlierDetector(n_neighbors=0).fit(X_train)
    with pytest.raises(DataError, match="at least 2 training rows"):
        AutoencoderOutlierDetector(novelty=True, **FAST).fit(X_train[:1])


def test_unsupervised_scores_match_a_reference(planted, tmp_path):
    """Without novelty (tables): the autoencoders' score, blended half and half with the mean
    distance to the 10 nearest of the training rows the autoencoders score at most at their
    0.7 quantile, each part standardised on those kept rows; then that blend and an isolation
    forest fitted on the kept rows, each standardised on all training rows, 0.75 and 0.25."""
    X, y = planted
    X_train = X[::2]  # rows 0, 2, ..., 10 are planted anomalies among the training rows
    det = AutoencoderOutlierDetector(**FAST).fit(X_train)
    assert det.n_neighbors_ == 10 and det.knn_clean_ == 0.3 and det.isolation_weight_ is None
    alone = AutoencoderOutlierDetector(n_neighbors=None, **FAST).fit(X_train)  # same members
    ae = _reference_scores(alone, X_train, X, 0.9)
    ae_train = _reference_scores(alone, X_train, X_train, 0.9)
    kept = ae_train <= np.quantile(ae_train, 0.7)
    assert not kept[:6].any()  # the planted training rows are left out of the reference
    Z_train = det._scaled(X_train.astype(np.float32).astype(np.float64))[kept]
    Z = det._scaled(X.astype(np.float32).astype(np.float64))
    assert det.knn_reference_.shape == Z_train.shape

    def mean10(D):  # brute force: the ten smallest distances of each row, averaged
        return np.sort(D, axis=1)[:, :10].mean(axis=1)

    pair = np.sqrt(((Z_train[:, None] - Z_train[None]) ** 2).sum(-1))
    np.fill_diagonal(pair, np.inf)  # a kept row is not its own neighbour
    knn_train = mean10(pair)
    knn = mean10(np.sqrt(((Z[:, None] - Z_train[None]) ** 2).sum(-1)))
    a = ae_train[kept]
    want = 0.5 * (ae - a.mean()) / a.std() + 0.5 * (knn - knn_train.mean()) / knn_train.std()
    scores = det.score_samples(X)
    np.testing.assert_allclose(-scores, want, rtol=1e-6, atol=1e-6)
    assert set(np.argsort(scores)[:12]) == set(np.flatnonzero(y))
    # isolation_weight=0.25: that blend (its training rows' scores as score_samples gives them)
    # and scikit-learn's IsolationForest on the kept rows, each standardised on all training rows
    full = AutoencoderOutlierDetector(isolation_weight=0.25, **FAST).fit(X_train)
    assert full.isolation_weight_ == 0.25 and full.isolation_seed_ is not None
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(random_state=full.isolation_seed_).fit(Z_train)
    Z_all = det._scaled(X_train.astype(np.float32).astype(np.float64))
    iso, iso_train = -forest.score_samples(Z), -forest.score_samples(Z_all)
    prev_train = -det.score_samples(X_train)
    want_full = 0.75 * (want - prev_train.mean()) / prev_train.std()
    want_full += 0.25 * (iso - iso_train.mean()) / iso_train.std()
    full_scores = full.score_samples(X)
    np.testing.assert_allclose(-full_scores, want_full, rtol=1e-6, atol=1e-6)
    assert set(np.argsort(full_scores)[:12]) == set(np.flatnonzero(y))
    for d, s in ((det, scores), (full, full_scores)):
        again = AutoencoderOutlierDetector.load(d.save(tmp_path / "d"))
        assert again.knn_clean_ == 0.3 and np.array_equal(again.score_samples(X), s)
        assert again.isolation_weight_ == d.isolation_weight_
    assert (tmp_path / "d" / detector.ISOLATION_FILE).is_file()
    # the default is its explicit recipe
    explicit = AutoencoderOutlierDetector(
        n_neighbors=10, knn_clean=0.3, isolation_weight=None, **FAST
    ).fit(X_train)
    assert np.array_equal(explicit.score_samples(X), scores)
    uncleaned = AutoencoderOutlierDetector(knn_clean=0.0, **FAST).fit(X_train)
    assert uncleaned.knn_reference_.shape[0] == len(X_train)
    with pytest.raises(ConfigError, match="knn_clean must be"):
        AutoencoderOutlierDetector(knn_clean=1.0).fit(X_train)
    with pytest.raises(ConfigError, match="isolation_weight must be"):
        AutoencoderOutlierDetector(isolation_weight=1.0).fit(X_train)
    with pytest.raises(ConfigError, match="isolation_weight must be"):
        AutoencoderOutlierDetector(isolation_weight="auto").fit(X_train)
    # off at weight 0 as at None
    assert anomaly.resolve_isolation(0) is None and anomaly.resolve_isolation(None) is None
    assert anomaly.resolve_isolation(0.5) == 0.5
    zero = AutoencoderOutlierDetector(isolation_weight=0, **FAST).fit(X_train)
    assert np.array_equal(zero.score_samples(X), scores)


def test_isolation_forest_against_a_hand_example_and_scikit_learn():
    from sklearn.ensemble import IsolationForest

    c3 = 2 * (np.log(2) + np.euler_gamma) - 2 * 2 / 3
    c4 = 2 * (np.log(3) + np.euler_gamma) - 2 * 3 / 4
    assert isolation.average_path_length([0, 1, 2, 3, 4]) == pytest.approx([0, 0, 1, c3, c4])
    # one tree of 4 training rows: the root splits column 1 at 0.5; its left leaf holds one
    # row (path length 1 + c(1) = 1), its right leaf three (1 + c(3)); norm: 1 tree x c(4)
    forest = {
        "feature": np.array([1, 0, 0]),
        "threshold": np.array([0.5, 0.0, 0.0]),
        "left": np.array([1, -1, -1]),
        "right": np.array([2, -1, -1]),
        "value": np.array([0.0, 1.0, 1.0 + c3]),
        "roots": np.array([0]),
        "norm": np.array([c4]),
    }
    assert isolation.check_forest(forest, 2) and not isolation.check_forest(forest, 1)
    got = isolation.isolation_scores(forest, np.array([[9.0, 0.2], [-9.0, 0.5], [0.0, 0.7]]))
    assert got == pytest.approx([2 ** (-1 / c4), 2 ** (-1 / c4), 2 ** (-(1 + c3) / c4)])
    # fitted: the same scores as scikit-learn's forest of the same seed
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(700, 5)), 2 * rng.normal(size=(300, 5))
    mine = isolation.isolation_scores(isolation.fit_forest(X, 7), Y, batch=64)
    ref = -IsolationForest(random_state=7).fit(X).score_samples(Y)
    np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12)
    one = isolation.fit_forest(X[:1], 0)  # one row per tree: every row scores 0.5
    assert np.array_equal(isolation.isolation_scores(one, Y[:3]), [0.5, 0.5, 0.5])


def test_detectors_of_format_1_load_and_score_the_same(planted, tmp_path):
    """A folder written before the isolation part (no "format", no isolation entries) loads
    as the detector it was; a later format or a damaged forest is refused."""
    from aekit.errors import ModelFileError
    from aekit.io import checkpoint

    X = planted[0]
    det = AutoencoderOutlierDetector(**FAST).fit(X[::2])
    path = det.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    assert config["detector"]["format"] == detector.FORMAT == 2
    for key in ("format", "isolation_weight_", "isolation_seed_", "isolation_stats_"):
        del config["detector"][key]
    del config["detector"]["params"]["isolation_weight"]
    (path / "config.json").write_text(json.dumps(config))
    old = AutoencoderOutlierDetector.load(path)
    assert old.isolation_weight is None and old.isolation_weight_ is None
    assert np.array_equal(old.score_samples(X), det.score_samples(X))
    config["detector"]["format"] = 3
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="format 3"):
        AutoencoderOutlierDetector.load(path)
    new = AutoencoderOutlierDetector(isolation_weight=0.25, **FAST).fit(X[::2])
    new = new.save(tmp_path / "new")
    checkpoint.save_tensors(new / detector.ISOLATION_FILE, {"roots": torch.zeros(2)})
    with pytest.raises(ModelFileError, match="does not hold the detector's trees"):
        AutoencoderOutlierDetector.load(new)


def test_a_damaged_reference_file_is_refused(planted, tmp_path):
    from aekit.errors import ModelFileError
    from aekit.io import checkpoint

    det = AutoencoderOutlierDetector(n_neighbors=3, **FAST).fit(planted[0])
    path = det.save(tmp_path / "d")
    checkpoint.save_tensors(path / detector.REFERENCE_FILE, {"rows": torch.zeros(4, 3)})
    with pytest.raises(ModelFileError, match="does not hold the detector's rows"):
        AutoencoderOutlierDetector.load(path)


def test_rows_off_a_learned_plane_rank_first():
    """Rows inside the data's range but off its 2-d plane: found once the models learn it.

    The default's short schedule underfits such structure (see the README); a longer,
    faster one finds them.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2)) @ rng.normal(size=(2, 8)) + 0.05 * rng.normal(size=(600, 8))
    X[:12, 5] += 4.0
    det = AutoencoderOutlierDetector(
        learning_rate_init=1e-2, max_iter=200, trim=0.0, random_state=0, device="cpu"
    ).fit(X)
    assert set(np.argsort(det.score_samples(X))[:12]) == set(range(12))
    assert np.all(np.argmax(det.feature_errors(X[:12]), axis=1) == 5)


def test_scores_are_deterministic(planted, fitted):
    X = planted[0]
    assert np.array_equal(fitted.score_samples(X), fitted.score_samples(X))
    again = AutoencoderOutlierDetector(random_state=0, device="cpu").fit(X)
    assert np.array_equal(again.score_samples(X), fitted.score_samples(X))
    vae = AutoencoderOutlierDetector(model="vae", loss="mse", **FAST).fit(X)
    assert np.array_equal(vae.score_samples(X), vae.score_samples(X))


def test_contamination_sets_the_share_flagged_on_training_data(planted):
    X = planted[0]
    for share in (0.05, 0.2):
        det = AutoencoderOutlierDetector(contamination=share, **FAST).fit(X)
        assert abs(np.mean(det.predict(X) == -1) - share) <= 1.0 / len(X)


def test_fpr_calibration_reaches_its_rate_within_binomial_noise(fitted):
    rng = np.random.default_rng(1)
    A = rng.normal(size=(2, 8))

    def normal(n):  # fresh normal rows from the planted data's distribution
        return rng.normal(size=(n, 2)) @ A + 0.05 * rng.normal(size=(n, 8))

    fpr, n_cal, n_test = 0.05, 4000, 8000
    det = AutoencoderOutlierDetector(**FAST).fit(normal(600))
    det.calibrate(normal(n_cal), fpr=fpr)
    assert det.calibration_["fpr"] == fpr and det.calibration_["n_samples"] == n_cal
    assert det.calibration_["achieved_fpr"] <= fpr
    assert det.calibration_["achieved_fpr"] >= fpr - 1.0 / n_cal
    assert det.calibration_["expected_fpr"] <= fpr and det.calibration_["method"] == "conformal"
    rate = np.mean(det.predict(normal(n_test)) == -1)
    sigma = np.sqrt(fpr * (1 - fpr) * (1 / n_cal + 1 / n_test))
    assert abs(rate - fpr) < 4 * sigma


def test_the_conformal_threshold_against_a_hand_computed_reference():
    scores = np.array([5.0, 1.0, 4.0, 2.0, 3.0])  # n = 5; lower = more abnormal
    t = anomaly.conformal_threshold(scores, 0.34)  # k = floor(0.34 * 6) = 2
    assert t["k"] == 2 and t["offset"] == 2.0 and t["expected_fpr"] == 2 / 6
    assert t["achieved_fpr"] == 1 / 5  # only the score 1.0 lies strictly below 2.0
    from scipy.stats import beta

    assert t["fpr_interval"] == pytest.approx([beta.ppf(0.025, 2, 4), beta.ppf(0.975, 2, 4)])
    with pytest.raises(ConfigError, match="needs at least 99 normal rows"):
        anomaly.conformal_threshold(np.arange(50.0), 0.01)  # k = floor(0.51) = 0


def test_the_conformal_threshold_keeps_its_guarantee_over_many_splits(fitted, planted):
    """Asked for 1% on 116 held-out normal rows (the case that saw 3.4% before): over many
    calibration/test splits of exchangeable normal rows the mean false-positive rate stays at
    or under 1%, within the simulation's noise."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2, 8))
    pool = rng.normal(size=(20000, 2)) @ A + 0.05 * rng.normal(size=(20000, 8))
    scores = fitted.score_samples(pool)  # one model: the splits only reshuffle the rows
    fpr, n_cal, rates = 0.01, 116, []
    for _ in range(400):
        idx = rng.permutation(len(scores))
        t = anomaly.conformal_threshold(scores[idx[:n_cal]], fpr)
        rates.append(np.mean(scores[idx[n_cal : n_cal + 2000]] < t["offset"]))
    rates = np.array(rates)
    assert rates.mean() <= fpr + 3 * rates.std() / np.sqrt(len(rates))
    # k / (n + 1) exactly: 1 / 117 here; the rule before (the (k+1)-th score) gave 2 / 117
    assert abs(rates.mean() - 1 / 117) < 3 * rates.std() / np.sqrt(len(rates))


def test_threshold_metrics_against_a_hand_computed_reference():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    flags = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    m = anomaly_metrics.threshold_metrics(labels, flags)  # tp 2, fn 1, fp 1, tn 4
    assert m == {"tpr": 2 / 3, "fpr": 1 / 5, "precision": 2 / 3, "f1": 2 / 3, "flagged": 3}


def test_scores_are_finite_on_awkward_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 4))
    X[:, 1] = 3.0  # a constant column
    det = AutoencoderOutlierDetector(batch_size=64, **FAST).fit(X)  # n < batch size
    assert np.all(np.isfinite(det.score_samples(X)))
    assert np.all(np.isfinite(det.score_samples(X[:1] * 1e6)))  # one row, far away
    one = AutoencoderOutlierDetector(**FAST).fit(X[:1])  # a single training row
    assert np.all(np.isfinite(one.score_samples(X)))
    assert one.n_neighbors_ is None  # "auto" without novelty: no neighbour part for one row


def test_conv_preset_with_image_shape(digits01):
    det = AutoencoderOutlierDetector(model="conv", image_shape=(1, 8, 8), **FAST).fit(digits01)
    scores = det.score_samples(digits01[:50])
    assert scores.shape == (50,) and np.all(np.isfinite(scores))
    # an image model sums raw pixel errors under error_quantile="auto"
    assert all(np.array_equal(s, np.ones(64)) for s in det.error_scales_)


def test_auto_recipe_is_the_tables_one_without_an_image_shape(planted, fitted):
    """model, n_estimators, max_samples and max_iter "auto": the robust recipe of the
    tables unchanged (dense, 5 members of 256 rows, 50 epochs, input-space neighbours)."""
    assert anomaly.resolve_model("auto", None) == "dense"
    assert anomaly.resolve_model("auto", (1, 28, 28)) == "conv"
    assert anomaly.resolve_model("vae", (1, 28, 28)) == "vae"
    assert anomaly.resolve_ensemble("auto", "auto", "auto", None) == (5, 256, 50)
    assert anomaly.resolve_ensemble("auto", "auto", "auto", (1, 8, 8)) == (1, 10_000, 20)
    assert anomaly.resolve_ensemble(3, 0.5, 7, (1, 8, 8)) == (3, 0.5, 7)
    assert anomaly.resolve_knn_space("auto", None) == "input"
    assert anomaly.resolve_knn_space("auto", (1, 8, 8)) == "code"
    assert anomaly.resolve_error_blur("auto", "dense", "mixed", None) is None
    assert anomaly.resolve_error_blur("auto", "conv", "mixed", (1, 8, 8)) == 1.0
    assert anomaly.resolve_error_blur("auto", "conv", "bce", (1, 8, 8)) is None
    assert fitted.error_blur_ is None
    assert fitted.model_name_ == "dense" and fitted.image_shape_ is None
    old = AutoencoderOutlierDetector(
        model="dense", n_estimators=5, max_samples=256, max_iter=50, random_state=0, device="cpu"
    ).fit(planted[0])
    assert np.array_equal(old.score_samples(planted[0]), fitted.score_samples(planted[0]))


def _brute_knn(R, X=None, k=5):
    """Mean distance to the k nearest rows of R (X None: R itself, each row left out)."""
    D = np.sqrt((((R if X is None else X)[:, None] - R[None]) ** 2).sum(-1))
    if X is None:
        np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, :k].mean(axis=1)


def test_images_get_the_conv_model_and_code_space_neighbours(digits01, tmp_path):
    """Images (N, H, W) with no flag: conv members on every row, squared errors of the
    residual blurred by a Gaussian of one pixel (scipy's gaussian_filter, zero outside),
    summed raw, and with novelty the neighbour part in each member's code, against a
    brute-force reference."""
    from scipy.ndimage import gaussian_filter

    def blurred(r):  # residual rows (N, 64) -> each 8x8 image blurred, zero padded
        return gaussian_filter(
            r.reshape(-1, 8, 8), sigma=(0, 1, 1), mode="constant", truncate=3.0
        ).reshape(-1, 64)

    train, X = digits01[:150].reshape(-1, 8, 8), digits01
    det = AutoencoderOutlierDetector(novelty=True, n_estimators=2, max_iter=3, random_state=0)
    det.fit(train)  # two members: each one's parts standardised, then averaged
    assert det.model_name_ == "conv" and det.image_shape_ == (1, 8, 8)
    assert det.knn_space_ == "code" and len(det.models_) == 2 and det.error_blur_ == 1.0
    assert all(m.config.image_shape == (1, 8, 8) for m in det.models_)
    ae, ae_tr, ck, ck_tr = 0.0, 0.0, 0.0, 0.0
    for net in det._nets():  # float64 copies
        with torch.no_grad():
            x_tr, x = torch.as_tensor(digits01[:150], dtype=torch.float64), torch.as_tensor(X)
            r_tr = (net.reconstruct(x_tr) - x_tr).numpy()
            r = (net.reconstruct(x.double()) - x.double()).numpy()
        e_tr, e = (0.5 * blurred(r_tr) ** 2).sum(1), (0.5 * blurred(r) ** 2).sum(1)
        with torch.no_grad():
            c_tr, c = net.encode(x_tr).numpy(), net.encode(x.double()).numpy()
        ae, ae_tr = ae + (e - e_tr.mean()) / e_tr.std(), ae_tr + (e_tr - e_tr.mean()) / e_tr.std()
        s = c_tr.std(axis=0).mean()  # codes divided by their mean coordinate spread
        loo = _brute_knn(c_tr / s)
        ck = ck + (_brute_knn(c_tr / s, c / s) - loo.mean()) / loo.std()
        ck_tr = ck_tr + (loo - loo.mean()) / loo.std()
    ae, ae_tr, ck, ck_tr = ae / 2, ae_tr / 2, ck / 2, ck_tr / 2
    want = 0.5 * (ae - ae_tr.mean()) / ae_tr.std() + 0.5 * (ck - ck_tr.mean()) / ck_tr.std()
    scores = det.score_samples(X.reshape(-1, 8, 8))
    np.testing.assert_allclose(-scores, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(det.score_samples(X), scores)  # rows score alike
    F = det.feature_errors(X[:5].reshape(-1, 8, 8))  # the pixel part only: codes have none
    assert F.shape == (5, 8, 8)
    shift = np.mean([mu / sd for mu, sd in det.member_stats_])  # F's rows: ae + shift
    np.testing.assert_allclose(F.sum(axis=(1, 2)), 0.5 * (ae[:5] + shift) / ae_tr.std())
    again = AutoencoderOutlierDetector.load(det.save(tmp_path / "d"))
    assert again.knn_space_ == "code" and again.model_name_ == "conv"
    np.testing.assert_array_equal(again.score_samples(X), scores)
    rows = AutoencoderOutlierDetector(
        knn_space="input", n_neighbors=3, error_blur=None, max_iter=2
    ).fit(train)
    assert rows.knn_space_ == "input" and rows.model_name_ == "conv" and rows.error_blur_ is None
    with pytest.raises(ConfigError, match="error_blur must be"):
        AutoencoderOutlierDetector(error_blur=0).fit(train)
    with pytest.raises(ConfigError, match="knn_space must be one of"):
        AutoencoderOutlierDetector(knn_space="pixels").fit(train)


def test_a_dead_image_member_is_trained_again_from_the_next_seed(digits01, monkeypatch):
    """A member whose output no longer depends on its input is retrained (images only)."""
    from aekit.nn import build_model

    net = build_model("conv", 64, image_shape=(1, 8, 8))
    assert not anomaly.is_dead(net, digits01)
    with torch.no_grad():  # saturate the output: every logit far below zero
        net.decoder[-1].bias.fill_(-1e4)
    assert anomaly.is_dead(net, digits01)
    calls = []
    real = anomaly.is_dead
    monkeypatch.setattr(anomaly, "is_dead", lambda n, X: calls.append(1) or len(calls) == 1)
    det = AutoencoderOutlierDetector(max_iter=1, random_state=0, device="cpu")
    det.fit(digits01.reshape(-1, 8, 8))
    assert len(calls) == 2  # the first training "died", the second (seed + 1) is kept
    assert det.n_retrained_ == 1
    monkeypatch.setattr(anomaly, "is_dead", real)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    again = AutoencoderOutlierDetector(max_iter=1, random_state=0, device="cpu")
    again.fit(digits01.reshape(-1, 8, 8))
    ref = det._train_net(digits01, int(seed) + 1, 16, None, None, "mse", model="conv",
                         image_shape=(1, 8, 8), epochs=1)[0]  # fmt: skip
    for a, b in zip(det.models_[0].parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(det.models_[0].parameters(), again.models_[0].parameters(), strict=True)
    )
    monkeypatch.setattr(anomaly, "is_dead", lambda n, X: calls.append(1) or True)
    calls.clear()
    AutoencoderOutlierDetector(n_estimators=1, max_iter=1, random_state=0).fit(digits01)
    assert calls == [1]  # rows (a table): one training, never retried


def test_save_load_round_trip_without_pickle(tmp_path, planted, fitted):
    X = planted[0]
    fitted.calibrate(X[12:], fpr=0.02)
    fitted.save(tmp_path / "det")
    files = {p.suffix for p in (tmp_path / "det").rglob("*") if p.is_file()}
    assert files == {".json", ".safetensors"}
    loaded = AutoencoderOutlierDetector.load(tmp_path / "det")
    assert np.array_equal(loaded.score_samples(X), fitted.score_samples(X))
    assert loaded.offset_ == fitted.offset_ and loaded.calibration_ == fitted.calibration_
    assert loaded.get_params() == {**fitted.get_params(), "device": "cpu"}


def test_bad_input_raises_value_errors(planted, fitted):
    X = planted[0]
    bad = X.copy()
    bad[3, 2] = np.nan
    for call in (
        lambda: AutoencoderOutlierDetector(**FAST).fit(bad),
        lambda: fitted.score_samples(bad),
        lambda: fitted.score_samples(X[:, :5]),
        lambda: AutoencoderOutlierDetector(**FAST).fit(np.zeros((0, 3))),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ConfigError, match="contamination"):
        AutoencoderOutlierDetector(contamination=0.7, **FAST).fit(X)
    for q in (0.0, 1.5, float("nan"), "0.9"):
        with pytest.raises(ConfigError, match="error_quantile"):
            AutoencoderOutlierDetector(error_quantile=q, **FAST).fit(X)
    with pytest.raises(ConfigError, match="fpr"):
        fitted.calibrate(X, fpr=1.5)
    with pytest.raises(DataError, match="entries"):
        anomaly_metrics.check_labels(np.zeros(5), 6)
    with pytest.raises(DataError, match="single class"):
        anomaly_metrics.check_labels(np.zeros(6), 6)


@pytest.mark.parametrize("name", ["mse", "mae", "bce"])
def test_per_sample_losses_average_to_the_training_loss(name):
    g = torch.Generator().manual_seed(0)
    x, logits = torch.rand(7, 5, generator=g), torch.randn(7, 5, generator=g)
    x_hat = torch.sigmoid(logits)
    per = losses.reconstruction_loss(name, x_hat, logits, x, reduction="none")
    assert per.shape == (7,)
    mean = losses.reconstruction_loss(name, x_hat, logits, x)
    torch.testing.assert_close(per.mean(), mean)
    torch.testing.assert_close(losses.elementwise_loss(name, x_hat, logits, x).sum(-1), per)


def _write(path: Path, X: np.ndarray) -> str:
    np.savetxt(path, X, delimiter=",")
    return str(path)


def test_cli_fit_score_detect(tmp_path, planted, capsys):
    X, y = planted
    data, labels = _write(tmp_path / "x.csv", X), tmp_path / "y.csv"
    np.savetxt(labels, y, fmt="%d")
    run = str(tmp_path / "det")
    assert (
        main(["fit-detector", "--data", data, "--out", run, "--epochs", "6", "--device", "cpu"])
        == 0
    )
    out = str(tmp_path / "s.csv")
    argv = ["score", run, "--data", data, "--out", out, "--labels", str(labels)]
    assert main([*argv, "--figure", str(tmp_path / "s.png")]) == 0
    assert "ROC-AUC" in capsys.readouterr().out and (tmp_path / "s.png").is_file()
    with open(out) as f:
        assert f.readline().strip() == "anomaly_score_higher_is_abnormal"
    scores = np.loadtxt(out, skiprows=1)
    det = AutoencoderOutlierDetector.load(run)
    # aekit's file loaders read float32; the CSV keeps 9 significant digits
    np.testing.assert_allclose(scores, -det.score_samples(X.astype(np.float32)), rtol=1e-8)
    flags = str(tmp_path / "d.csv")
    normal = _write(tmp_path / "n.csv", X[12:])
    argv = ["detect", run, "--data", data, "--out", flags, "--fpr", "0.1", "--normal", normal]
    assert main(argv) == 0
    table = np.loadtxt(flags, delimiter=",", skiprows=1)
    assert table.shape == (600, 2) and set(np.unique(table[:, 0])) <= {0, 1}
    assert 0.05 < table[:, 0].mean() < 0.15
    assert "conformal, 588 normal rows" in capsys.readouterr().out
    labels = _write(tmp_path / "y.csv", planted[1].reshape(-1, 1))
    assert main([*argv, "--labels", labels]) == 0
    printed = capsys.readouterr().out
    want = anomaly_metrics.threshold_metrics(planted[1], table[:, 0])
    assert f"TPR {want['tpr']:.4f}  FPR {want['fpr']:.4f}" in printed
    assert f"precision {want['precision']:.4f}  F1 {want['f1']:.4f}" in printed


def test_cli_and_python_give_the_same_scores_for_the_same_csv_and_seed(tmp_path, planted):
    """One dtype path: the CLI reads files as float32 and the estimator reads X as float32
    too, so a column far from zero (here near 1e5, where float32 keeps ~0.008) no longer
    makes the two disagree (they differed by 0.022 in score before)."""
    X = planted[0].copy()
    X[:, 0] = 1e5 + 0.1 * X[:, 0]  # e.g. an id or a reading with a large offset
    data, run, out = _write(tmp_path / "x.csv", X), str(tmp_path / "det"), str(tmp_path / "s.csv")
    argv = ["--epochs", "6", "--n-estimators", "3", "--seed", "0", "--device", "cpu"]
    assert main(["fit-detector", "--data", data, "--out", run, *argv]) == 0
    assert main(["score", run, "--data", data, "--out", out, "--device", "cpu"]) == 0
    cli = np.loadtxt(out, skiprows=1)
    X_csv = np.loadtxt(data, delimiter=",")  # float64, as a Python user reads it
    assert X_csv.dtype == np.float64
    det = AutoencoderOutlierDetector(n_estimators=3, max_iter=6, random_state=0, device="cpu")
    python = -det.fit(X_csv).score_samples(X_csv)
    # the CSV of scores keeps 9 significant digits
    np.testing.assert_allclose(cli, python, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(
        AutoencoderOutlierDetector.load(run).score_samples(X_csv), -python
    )


def test_cli_fit_detector_defaults_to_the_mixed_loss_and_takes_another(tmp_path, planted):
    data, run = _write(tmp_path / "x.csv", planted[0]), str(tmp_path / "det")
    argv = ["fit-detector", "--data", data, "--out", run, "--epochs", "4", "--n-estimators", "2"]
    assert main([*argv, "--device", "cpu"]) == 0
    det = AutoencoderOutlierDetector.load(run)
    assert det.loss == "mixed" and [m.config.loss for m in det.models_] == ["mse", "mae"]
    assert main([*argv, "--loss", "mse", "--device", "cpu"]) == 0
    det = AutoencoderOutlierDetector.load(run)
    assert det.loss == "mse" and [m.config.loss for m in det.models_] == ["mse", "mse"]


def test_cli_fit_detector_takes_the_isolation_weight(tmp_path, planted, capsys):
    X = planted[0]
    data, run = _write(tmp_path / "x.csv", X), str(tmp_path / "det")
    argv = ["fit-detector", "--data", data, "--out", run, "--epochs", "2", "--n-estimators", "1"]
    assert main([*argv, "--isolation-weight", "0.25", "--device", "cpu"]) == 0
    assert "and an isolation forest" in capsys.readouterr().out
    det = AutoencoderOutlierDetector.load(run)
    assert det.isolation_weight_ == 0.25
    want = AutoencoderOutlierDetector(
        isolation_weight=0.25, n_estimators=1, max_iter=2, random_state=0, device="cpu"
    ).fit(X.astype(np.float32))
    np.testing.assert_allclose(det.score_samples(X), want.score_samples(X), rtol=1e-6)
    assert main([*argv, "--isolation-weight", "1.5", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error: ") and "isolation_weight" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("given, kept", [("none", None), ("0.5", 0.5), ("auto", "auto")])
def test_cli_fit_detector_takes_the_error_quantile(tmp_path, planted, given, kept):
    data, run = _write(tmp_path / "x.csv", planted[0]), str(tmp_path / "det")
    argv = ["fit-detector", "--data", data, "--out", run, "--epochs", "2", "--n-estimators", "1"]
    assert main([*argv, "--error-quantile", given, "--device", "cpu"]) == 0
    det = AutoencoderOutlierDetector.load(run)
    assert det.error_quantile == kept
    errors = anomaly.elementwise_errors(det._nets()[0], det._scaled(planted[0]))
    expected = anomaly.error_scales(
        errors, None if kept is None else 0.9 if kept == "auto" else kept
    )
    np.testing.assert_allclose(det.error_scales_[0], expected, rtol=1e-6)


def test_cli_fit_detector_novelty(tmp_path, planted, capsys):
    X = planted[0]
    data, run = _write(tmp_path / "x.csv", X[12:]), str(tmp_path / "det")
    argv = ["fit-detector", "--data", data, "--out", run, "--epochs", "4", "--device", "cpu"]
    assert main([*argv, "--novelty", "--n-estimators", "2"]) == 0
    assert "5-nearest-neighbour distances on 588 normal rows" in capsys.readouterr().out
    det = AutoencoderOutlierDetector.load(run)
    assert det.novelty and det.n_neighbors_ == 5
    want = AutoencoderOutlierDetector(
        novelty=True, n_estimators=2, max_iter=4, random_state=0, device="cpu"
    ).fit(X[12:].astype(np.float32))
    assert np.array_equal(det.score_samples(X), want.score_samples(X))
    assert main([*argv, "--novelty", "--neighbors", "none", "--n-estimators", "1"]) == 0
    assert AutoencoderOutlierDetector.load(run).n_neighbors_ is None
    capsys.readouterr()
    assert main([*argv, "--neighbors", "few"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error: --neighbors") and err.count("\n") == 1


def test_cli_fit_detector_on_images_uses_the_image_default(tmp_path, capsys):
    """Image data (here the digits set, 8x8) get the conv members with no flag, and the
    same scores as the estimator given the images."""
    run = str(tmp_path / "det")
    argv = ["fit-detector", "--data", "digits", "--limit", "150", "--out", run, "--novelty"]
    assert main([*argv, "--epochs", "2", "--device", "cpu"]) == 0
    assert "fitted 1 conv autoencoder and 5-nearest-neighbour distances (in their codes)" in (
        capsys.readouterr().out
    )
    det = AutoencoderOutlierDetector.load(run)
    assert det.model_name_ == "conv" and det.image_shape_ == (1, 8, 8)
    from aekit.data import load_dataset

    X = load_dataset("digits", split="train", limit=150).X / np.float32(16)
    want = AutoencoderOutlierDetector(novelty=True, max_iter=2, random_state=0, device="cpu")
    want.fit(X.reshape(-1, 8, 8))
    np.testing.assert_array_equal(det.score_samples(X), want.score_samples(X))
    assert main([*argv, "--epochs", "soon"]) == 2
    assert "--epochs: 'auto' or a positive whole number" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["often", "1.5", "0"])
def test_cli_a_bad_error_quantile_is_one_line(tmp_path, planted, capsys, bad):
    data, run = _write(tmp_path / "x.csv", planted[0]), str(tmp_path / "det")
    argv = ["fit-detector", "--data", data, "--out", run, "--error-quantile", bad]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error:") and "error_quantile" in err.replace("-", "_")
    assert err.count("\n") == 1


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, planted, capsys):
    X, _ = planted
    data = _write(tmp_path / "x.csv", X)
    run = str(tmp_path / "det")
    assert (
        main(["fit-detector", "--data", data, "--out", run, "--epochs", "2", "--n-estimators", "1"])
        == 0
    )
    nan = X[:20].copy()
    nan[2, 2] = np.nan
    one_class = tmp_path / "one.csv"
    np.savetxt(one_class, np.zeros(600), fmt="%d")
    short = tmp_path / "short.csv"
    np.savetxt(short, np.ones(10), fmt="%d")
    (tmp_path / "empty.csv").write_text("")
    out = str(tmp_path / "s.csv")
    cases = [
        ["score", run, "--data", _write(tmp_path / "nan.csv", nan), "--out", out],
        ["score", run, "--data", _write(tmp_path / "w.csv", X[:, :3]), "--out", out],
        ["score", run, "--data", str(tmp_path / "empty.csv"), "--out", out],
        ["score", run, "--data", data, "--out", out, "--labels", str(short)],
        ["detect", run, "--data", data, "--out", out, "--labels", str(one_class)],
        ["fit-detector", "--data", _write(tmp_path / "nan2.csv", nan), "--out", run],
    ]
    capsys.readouterr()
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("aekit: error: ") and err.count("\n") == 1, err


def test_adbench_set_is_detected(data_dir):
    path = data_dir / "adbench" / "43_WDBC.npz"
    if not path.is_file():
        pytest.skip("ADBench sets not found under the shared data folder")
    with np.load(path) as f:
        X, y = f["X"], f["y"]
    det = AutoencoderOutlierDetector(random_state=0, device="cpu").fit(X)
    assert anomaly_metrics.roc_pr_auc(y, -det.score_samples(X))["roc_auc"] > 0.85
