"""Seed 002's probe (aekit.apps.probe): its maths on tiny examples, the classifier, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aekit.apps.probe import (
    SoftmaxClassifier,
    energy_share,
    fit_scale,
    project,
    row_space_basis,
    synthesize,
    train_models,
    weight_of,
    with_labels,
)
from aekit.cli import main
from aekit.data import load_dataset
from aekit.errors import DataError
from aekit.training import TrainConfig, fit


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def digits():
    """The built-in 8x8 digits with their labels (1,797 images, pixels 0-16)."""
    return load_dataset("digits")


def test_synthesis_is_the_seeds_sum_of_templates(rng):
    W, H = rng.normal(size=(3, 5)), rng.normal(size=(4, 3))  # K = 3 templates in R^5
    by_sum = np.array([sum(h[i] * W[i] for i in range(3)) for h in H])  # sum_i h_i w_i
    np.testing.assert_allclose(synthesize(W, H), by_sum, rtol=1e-12)
    with pytest.raises(DataError, match="do not fit"):
        synthesize(W, H[:, :2])


def test_fit_scale_is_the_least_squares_solution(rng):
    N, D = 6, 4
    S, X = rng.normal(size=(N, D)), rng.normal(size=(N, D))
    alpha, beta = fit_scale(S, X)
    # the same problem as one lstsq: unknowns (alpha, beta_1..beta_D), one equation per pixel
    A = np.concatenate([S.reshape(-1, 1), np.tile(np.eye(D), (N, 1))], axis=1)
    sol = np.linalg.lstsq(A, X.reshape(-1), rcond=None)[0]
    assert alpha == pytest.approx(sol[0], rel=1e-10)
    np.testing.assert_allclose(beta, sol[1:], rtol=1e-10, atol=1e-12)
    a2, b2 = fit_scale(S, 2.5 * S + np.arange(D))  # an exact affine image of S is recovered
    assert a2 == pytest.approx(2.5) and np.allclose(b2, np.arange(D))


def test_projection_and_energy_share_match_lstsq(rng):
    W, X = rng.normal(size=(3, 7)), rng.normal(size=(5, 7))
    Q = row_space_basis(W)
    assert Q.shape == (7, 3)
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-12)
    # the closest W^T c to x, c from lstsq: an independent computation of P_W x
    C = np.linalg.lstsq(W.T, X.T, rcond=None)[0]
    P_ref = (W.T @ C).T
    np.testing.assert_allclose(project(X, Q), P_ref, atol=1e-12)
    share = energy_share(X, Q)
    ref = np.sum(P_ref**2, 1) / np.sum(X**2, 1)
    np.testing.assert_allclose(share, ref, rtol=1e-10)
    assert np.all((share > 0) & (share < 1))


def test_energy_share_is_one_inside_the_span_and_zero_outside(rng):
    W = rng.normal(size=(2, 6))
    Q = row_space_basis(W)
    inside = rng.normal(size=(4, 2)) @ W
    outside = rng.normal(size=(4, 6))
    outside -= project(outside, Q)  # the component orthogonal to every template
    np.testing.assert_allclose(energy_share(inside, Q), 1.0, rtol=1e-10)
    np.testing.assert_allclose(energy_share(outside, Q), 0.0, atol=1e-12)
    assert np.isnan(energy_share(np.zeros((1, 6)), Q)[0])  # no energy to share


def test_row_space_of_a_rank_deficient_w(rng):
    W = rng.normal(size=(2, 6))
    W = np.vstack([W, W[0] - 3 * W[1], 2 * W[1]])  # 4 templates spanning a plane
    Q = row_space_basis(W)
    assert Q.shape[1] == np.linalg.matrix_rank(W) == 2
    np.testing.assert_allclose(project(W, Q), W, atol=1e-10)  # each w_i lies in the span


def test_the_classifier_reads_its_label_from_the_last_column():
    torch.manual_seed(0)
    model = SoftmaxClassifier(5, 4, n_classes=3)
    X = torch.randn(8, 5)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    record = model(torch.as_tensor(with_labels(X.numpy(), y.numpy())))
    expected = F.cross_entropy(model.head(torch.sigmoid(model.encoder(X))), y)
    torch.testing.assert_close(record["loss"], expected)
    assert record["error"] == pytest.approx(float((model.logits(X).argmax(1) != y).float().mean()))


def test_the_classifier_learns_through_the_one_loop(digits):
    X, y = digits.X / 16, digits.labels
    torch.manual_seed(0)
    model = SoftmaxClassifier(X.shape[1], 16)
    config = TrainConfig(epochs=10, batch_size=64, lr=1e-2)
    state = fit(model, with_labels(X, y), config=config)
    assert state.history[-1]["train_loss"] < 0.5 * state.history[0]["train_loss"]
    assert np.mean(model.predict(X) == y) > 0.8  # chance is 0.1


def test_both_models_start_from_the_same_w(digits):
    X, y = digits.X[:100] / 16, digits.labels[:100]
    clf, ae, fresh = train_models(X, y, 8, TrainConfig(epochs=0))
    np.testing.assert_array_equal(weight_of(clf), weight_of(ae))  # only the objective differs
    assert not np.array_equal(weight_of(clf), weight_of(fresh))


def test_probe_command_writes_its_numbers_and_figures(tmp_path, capsys):
    out = tmp_path / "probe"
    argv = ["probe", "--data", "digits", "--hidden", "8", "--epochs", "2", "--threads", "1"]
    assert main([*argv, "--limit", "400", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads((out / "probe.json").read_text()) == printed
    assert {"templates.png", "reconstructions.png"} <= {p.name for p in out.iterdir()}
    for r in printed["reconstruction"].values():
        assert 0 <= r["energy_share"] <= 1 and r["rank_W"] == 8
        assert r["projection_mse"] >= 0 and 0 <= r["fresh_accuracy"] <= 1
    assert printed["n_train"] + printed["n_test"] == 400


def test_probe_refuses_data_without_labels(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((50, 64)).astype(np.float32))
    assert main(["probe", "--data", str(path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aekit: error:") and "labelled images" in err and "\n" not in err
    assert main(["probe", "--data", "digits", "--hidden", "0", "--out", str(tmp_path)]) == 2
    assert "hidden must be a positive" in capsys.readouterr().err


def test_cross_entropy_never_moves_the_weights_of_blank_pixels(digits):
    # d loss / d W = delta x^T: a pixel that is 0 in every training image gives its column of
    # W no gradient, so the classifier keeps its initial weights there; the tied decoder's
    # error x_hat - x reaches that column through W^T and moves it
    X, y = digits.X[:300] / 16, digits.labels[:300]
    blank = X.max(0) == 0
    assert blank.any()
    start = [weight_of(m) for m in train_models(X, y, 8, TrainConfig(epochs=0))]
    end = [weight_of(m) for m in train_models(X, y, 8, TrainConfig(epochs=3, batch_size=32))]
    np.testing.assert_array_equal(end[0][:, blank], start[0][:, blank])  # classifier
    assert not np.allclose(end[0][:, ~blank], start[0][:, ~blank])
    assert not np.allclose(end[1][:, blank], start[1][:, blank])  # tied autoencoder
