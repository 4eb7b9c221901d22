"""Defaults that hold on any data (issue 16): the budget rule, the PCA warm start, the check
against PCA after training, and errors reported in the data's own units."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import aekit
from aekit.apps.baseline import pca_check
from aekit.cli import main
from aekit.data import Scaler
from aekit.errors import ConfigError
from aekit.nn import build_model
from aekit.nn.init import pca_warm_start, warm_start_blocker
from aekit.training import config as tc
from aekit.training.config import default_budget

# ---- the budget rule ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 270, 1617, 4_500, 54_000, 10_000_000])
def test_budget_is_a_number_of_steps_whatever_the_size(n):
    b = default_budget(n)
    per_epoch = math.ceil(n / min(128, n))
    assert b.steps_per_epoch == per_epoch
    lo, hi = tc.MIN_EPOCHS, tc.MAX_EPOCHS
    if lo < b.epochs < hi:  # the fewest whole epochs that reach the steps
        assert b.epochs * per_epoch >= tc.DEFAULT_STEPS > (b.epochs - 1) * per_epoch
    else:
        assert b.epochs == (lo if per_epoch * lo >= tc.DEFAULT_STEPS else hi)
    assert 5 <= b.patience <= max(5, b.epochs)


def test_budget_on_tiny_and_large_data():
    tiny, large = default_budget(3), default_budget(54_000)
    assert tiny.epochs == tc.MAX_EPOCHS  # one step an epoch: capped, not 5,000 epochs
    assert large.epochs == math.ceil(tc.DEFAULT_STEPS / math.ceil(54_000 / 128))
    assert default_budget(10**8).epochs == tc.MIN_EPOCHS  # every row seen a few times
    assert default_budget(1000, optimizer="gd").steps_per_epoch == 1
    with pytest.raises(ConfigError):
        default_budget(0)


def test_default_run_uses_the_budget_and_explicit_epochs_mean_epochs(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "DEFAULT_STEPS", 12)  # a small budget keeps the test fast
    common = ["train", "--limit", "200", "--hidden", "8", "--quiet"]
    assert main([*common, "--batch-size", "60", "--out", str(tmp_path / "auto")]) == 0
    cfg = json.loads((tmp_path / "auto" / "config.json").read_text())
    expected = default_budget(cfg["data"]["n_train"], 60)
    assert cfg["budget"]["rule"] == "steps" and cfg["budget"]["steps"] == 12
    assert cfg["training"]["epochs"] == expected.epochs
    assert cfg["training"]["patience"] == expected.patience
    assert main([*common, "--epochs", "3", "--out", str(tmp_path / "fixed")]) == 0
    cfg = json.loads((tmp_path / "fixed" / "config.json").read_text())
    assert cfg["budget"] == {"rule": "epochs", "epochs": 3}
    assert cfg["training"]["epochs"] == 3 and cfg["training"]["patience"] == 0
    rows = (tmp_path / "fixed" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3


# ---- PCA warm start ----------------------------------------------------------------------


def _low_rank(n=120, d=24, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)) @ rng.normal(size=(8, d)) + 0.3 * rng.normal(size=(n, d))
    return (X + 2.0).astype(np.float32)


@pytest.mark.parametrize(
    "name, options",
    [
        ("linear", {}),
        ("dense", {"hidden": (20,), "output_activation": "identity"}),
        ("dense", {"hidden": (20, 12), "output_activation": "identity"}),
        ("dense", {"hidden": (20,), "output_activation": "identity", "tied": True}),
        ("dense", {"hidden": (9,), "activation": "identity", "output_activation": "identity"}),
    ],
)
def test_warm_start_equals_pca_before_any_step(name, options):
    X = _low_rank()
    torch.manual_seed(0)
    net = build_model(name, X.shape[1], latent_dim=4, **options)
    start = pca_warm_start(net, X)
    assert start.applied and start.code_components == 4
    pca = PCA(4).fit(X.astype(np.float64))
    expected = pca.inverse_transform(pca.transform(X))
    got = net.reconstruct_scaled(X)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize(
    "options",
    [{"output_activation": "sigmoid"}, {"latent_activation": "tanh"}, {"noise": "mask:0.2"}],
)
def test_warm_start_refuses_what_cannot_be_pca(options):
    net = build_model("dense", 10, latent_dim=2, **{"output_activation": "identity", **options})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    start = pca_warm_start(net, _low_rank(d=10))
    assert not start.applied and start.reason == warm_start_blocker(net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_training_that_never_beats_the_start_keeps_pca(tmp_path):
    # a learning rate far too large: no epoch improves on the validation loss of the start
    out = tmp_path / "r"
    run = aekit.train("digits", out=out, limit=300, epochs=3, lr=5.0, model="linear", device="cpu")
    assert run.state.best_epoch == 0
    assert run.check["ratio"] == pytest.approx(1.0, abs=1e-3)
    assert json.loads((out / "config.json").read_text())["init"]["kind"] == "pca"


# ---- the check against PCA after training ------------------------------------------------


def test_pca_check_is_a_hand_computation_in_data_units():
    X = _low_rank()
    scaler = Scaler.fit(X[:100], "minmax")
    net = build_model("linear", X.shape[1], latent_dim=3)
    check = pca_check(net, scaler.transform(X[:100]), scaler.transform(X[100:]), scaler)
    pca = PCA(3).fit(X[:100].astype(np.float64))
    val = X[100:].astype(np.float64)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(val)) - val) ** 2)
    x_hat = scaler.inverse_transform(net.reconstruct_scaled(scaler.transform(X[100:])))
    assert check["units"] == "data" and check["pca_components"] == 3
    assert check["pca_mse"] == pytest.approx(pca_mse, rel=1e-6)
    assert check["mse"] == pytest.approx(np.mean((x_hat - val) ** 2), rel=1e-5)
    assert check["worse_than_pca"] == (check["mse"] > check["pca_mse"] * 1.001)


def test_a_model_worse_than_pca_is_said_in_one_line_and_in_the_run(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", "--limit", "200", "--epochs", "1", "--init", "random", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    lines = [s for s in capsys.readouterr().out.splitlines() if "PCA-16" in s]
    summary = json.loads((out / "summary.json").read_text())["validation"]
    assert summary["worse_than_pca"] and summary["units"] == "data"
    assert len(lines) == 1 and lines[0].startswith("warning:")


def test_init_pca_refuses_a_model_it_cannot_start(tmp_path):
    argv = ["train", "--model", "vae", "--init", "pca", "--epochs", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_a_kept_pca_start_is_refitted_on_every_training_row(tmp_path, capsys):
    """Issue 21: the kept start was PCA of the 270 training rows, 0.8% worse on the 300 than
    the PCA a user fits on all of them; now it is that PCA, and summary.json says so."""
    from aekit.data import load_dataset, train_val_split

    out = tmp_path / "r"
    argv = ["train", "--limit", "300", "--hidden", "", "--latent-dim", "16", "--epochs", "3"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["validation"]["kept"]["model"] == "start"  # no epoch beat the start
    assert summary["validation"]["kept"]["refit"] == "train+val"
    X = load_dataset("digits", limit=300).X.astype(np.float64)
    pca = PCA(16).fit(X)
    user = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    model = aekit.load(out)
    mse = np.mean((model.reconstruct_numpy(X.astype(np.float32)) - X) ** 2)
    assert mse == pytest.approx(user, rel=1e-5)  # the user's PCA of all 300 rows
    train, _ = train_val_split(X, 0.1, 0)
    pca90 = PCA(16).fit(train)
    assert mse < np.mean((pca90.inverse_transform(pca90.transform(X)) - X) ** 2)  # before
    base = summary["pca_baseline"]
    assert (base["fit_rows"], base["scored_rows"], base["held_out"]) == (
        "train+val", "train+val", False
    )  # fmt: skip
    assert base["n_fit"] == base["n_samples"] == 300 and base["pca_components"] == 16
    assert base["mse"] == pytest.approx(user, rel=1e-5) and not base["worse_than_pca"]
    assert base["pca_mse"] == pytest.approx(user, rel=1e-6)
    assert "refitted on all 300 rows" in said
    # the validation rows are no longer held out, and eval says so
    assert main(["eval", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["split"] == "val" and got["held_out"] is False and "not held out" in got["rows"]


@pytest.mark.parametrize("hidden, tied", [((), False), ((32,), False), ((32,), True)])
def test_a_start_in_a_per_column_scaled_space_is_pca_in_the_data_units(hidden, tied):
    """PCA of minmax-scaled columns is not the PCA a user fits on the table; the start is."""
    rng = np.random.default_rng(3)
    X = (_low_rank(200, 12) * rng.uniform(0.1, 50, size=12)).astype(np.float32)
    scaler = Scaler.fit(X, "minmax")
    torch.manual_seed(0)
    net = build_model("dense", 12, hidden=hidden, latent_dim=3, tied=tied,
                      output_activation="identity")  # fmt: skip
    net.scaler = scaler
    assert pca_warm_start(net, scaler.transform(X), scaler=scaler).applied
    x_hat = scaler.inverse_transform(net.reconstruct_scaled(scaler.transform(X)))
    raw, scaled = X.astype(np.float64), scaler.transform(X).astype(np.float64)
    pca = PCA(3).fit(raw)
    user = pca.inverse_transform(pca.transform(raw))
    mine = PCA(3).fit(scaled)  # the start before: PCA in the scaled space
    before = scaler.inverse_transform(mine.inverse_transform(mine.transform(scaled)))
    if tied:  # one set of directions: the scaled space's PCA, as before
        np.testing.assert_allclose(x_hat, before, rtol=1e-3, atol=1e-3 * np.ptp(raw))
        return
    np.testing.assert_allclose(x_hat, user, rtol=1e-3, atol=1e-3 * np.ptp(raw))
    assert np.mean((before - raw) ** 2) > 1.01 * np.mean((user - raw) ** 2)  # it mattered


def test_a_kept_start_on_a_table_is_the_users_pca_of_every_row(tmp_path):
    """Issue 21 on a table (minmax per column): the kept linear start ended 1.6% (300 digits
    rows) worse than the user's PCA of the same rows; now it is that PCA."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:300].astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r"
    argv = ["train", "--data", str(tmp_path / "x.npy"), "--model", "linear", "--epochs", "3"]
    assert main([*argv, "--latent-dim", "16", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["validation"]["kept"]["model"] == "start"
    raw = X.astype(np.float64)
    pca = PCA(16).fit(raw)
    user = np.mean((pca.inverse_transform(pca.transform(raw)) - raw) ** 2)
    mse = np.mean((aekit.load(out).reconstruct_numpy(X) - raw) ** 2)
    assert mse == pytest.approx(user, rel=1e-4)
    assert summary["pca_baseline"]["ratio"] == pytest.approx(1.0, abs=1e-4)


def test_a_tied_start_on_a_table_is_advised_a_scale_that_works(tmp_path, capsys):
    """Tied weights carry one set of directions, so on minmax columns the start stays the scaled
    space's PCA (8.8% worse here): the advice is --scale none, and it works."""
    rng = np.random.default_rng(0)
    z, w = rng.normal(size=(300, 3)), rng.normal(size=(3, 10))
    np.save(tmp_path / "t.npy", (z @ w + 0.3 * rng.normal(size=(300, 10))).astype(np.float32))
    argv = ["train", "--data", str(tmp_path / "t.npy"), "--model", "tied", "--hidden", "8",
            "--latent-dim", "3", "--epochs", "3", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    warned = [s for s in capsys.readouterr().out.splitlines() if s.startswith("warning:")]
    assert len(warned) == 1 and "try --scale none" in warned[0] and "--init" not in warned[0]
    assert main([*argv, "--scale", "none", "--out", str(tmp_path / "b")]) == 0
    assert not [s for s in capsys.readouterr().out.splitlines() if s.startswith("warning:")]
    base = json.loads((tmp_path / "b" / "summary.json").read_text())["pca_baseline"]
    assert base["ratio"] == pytest.approx(1.0, abs=1e-3)


def test_a_trained_model_is_compared_with_pca_of_its_own_training_rows(tmp_path):
    out = tmp_path / "r"
    run = aekit.train("digits", out=out, limit=300, epochs=3, device="cpu",
                      model_options={"hidden": (16,), "latent_dim": 3})  # fmt: skip
    base = json.loads((out / "summary.json").read_text())["pca_baseline"]
    assert run.check["kept"]["model"] == "trained" and run.baseline == base
    assert (base["fit_rows"], base["scored_rows"], base["held_out"]) == ("train", "val", True)
    assert base["n_fit"] == 270 and base["n_samples"] == 30
    assert base["mse"] == run.check["mse"] and base["pca_mse"] == run.check["pca_mse"]


@pytest.mark.parametrize("name", sorted(aekit.nn.MODELS))
def test_advice_names_only_a_start_the_model_accepts(name):
    """Issue 21: denoising and compression models were told to "try --init pca", which they
    refuse; the advice must work for the model it is given to, or there is none."""
    from aekit.apps.baseline import init_advice

    try:
        net = build_model(name, 64)
    except ConfigError:
        net = build_model(name, 64, image_shape=(1, 8, 8))
    net.scaler = Scaler("image", np.zeros(1), np.array([1 / 16]))
    advice = init_advice(net, {"kind": "random"})
    output = "identity" if advice and "--output-activation identity" in advice else None
    options = {} if output is None else {"output_activation": output}
    try:
        trial = build_model(name, 64, **options)
    except ConfigError:
        trial = build_model(name, 64, image_shape=(1, 8, 8), **options)
    accepts = pca_warm_start(trial, _low_rank(d=64)).applied
    assert (advice is not None and "--init pca" in advice) == accepts, (name, advice)
    if name in ("denoising", "compress", "vae", "sparse", "contractive", "conv"):
        assert advice is None
    assert init_advice(net, {"kind": "pca"}) is None  # it started there already


def test_the_worse_than_pca_line_advises_only_what_works(tmp_path, capsys):
    common = ["train", "--limit", "200", "--epochs", "1", "--hidden", "16", "--latent-dim", "3"]
    assert main([*common, "--model", "denoising", "--quiet", "--out", str(tmp_path / "d")]) == 0
    warned = [s for s in capsys.readouterr().out.splitlines() if s.startswith("warning:")]
    assert len(warned) == 1 and "--init pca" not in warned[0]  # it refuses --init pca
    assert main([*common, "--init", "random", "--quiet", "--out", str(tmp_path / "r")]) == 0
    warned = [s for s in capsys.readouterr().out.splitlines() if s.startswith("warning:")]
    assert len(warned) == 1 and "try --init pca" in warned[0]
    # and the advice works: the same run with --init pca starts from PCA
    assert main([*common, "--init", "pca", "--quiet", "--out", str(tmp_path / "p")]) == 0
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg["init"]["kind"] == "pca"


# ---- errors in the data's units ----------------------------------------------------------


def test_eval_in_data_units_equals_a_hand_computation_through_the_scaler(tmp_path):
    rng = np.random.default_rng(1)
    table = (_low_rank(200, 12) * rng.uniform(0.1, 50, size=12)).astype(np.float32)
    path = tmp_path / "table.npy"
    np.save(path, table)
    out = tmp_path / "r"
    aekit.train(path, out=out, epochs=2, model_options={"latent_dim": 3}, device="cpu")
    model = aekit.load(out)
    assert model.scaler.kind == "minmax"  # per column: scaled and data errors differ
    scaled = model.scaler.transform(table)
    x_hat_scaled = model.reconstruct_scaled(scaled)
    x_hat = model.scaler.inverse_transform(x_hat_scaled).astype(np.float64)
    metrics = aekit.evaluate(out, path, split="all")  # every row, as computed here
    assert metrics["units"] == "data" and metrics["scaler"] == "minmax"
    assert metrics["mse"] == pytest.approx(np.mean((x_hat - table) ** 2), rel=1e-5)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(x_hat - table)), rel=1e-5)
    assert metrics["scaled_mse"] == pytest.approx(np.mean((x_hat_scaled - scaled) ** 2), rel=1e-5)
    assert metrics["mse"] != pytest.approx(metrics["scaled_mse"], rel=0.1)


def test_a_trained_model_replaces_its_start_only_when_better_beyond_noise(tmp_path):
    from aekit.apps.baseline import keep_or_revert
    from aekit.io.checkpoint import MODEL_FILE, read_tensors

    X = _low_rank()
    torch.manual_seed(0)
    net = build_model("linear", X.shape[1], latent_dim=4)
    pca_warm_start(net, X[:80])
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():  # a little worse than the start: PCA is the optimum of a linear map
        net.encoder[0].weight.mul_(0.98)
    kept = keep_or_revert(tmp_path, net, start, X[80:])
    assert kept["model"] == "start" and kept["z"] > -2
    saved, _ = read_tensors(tmp_path / MODEL_FILE)
    assert all(torch.equal(saved[k], start[k]) for k in start)
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())
    bad = {k: torch.zeros_like(v) for k, v in start.items()}  # a start far worse than PCA
    kept = keep_or_revert(tmp_path, net, bad, X[80:])
    assert kept["model"] == "trained" and kept["z"] < -2
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())


def test_a_resumed_warm_started_run_decides_as_the_uninterrupted_one(tmp_path):
    from safetensors.torch import load_file

    common = ["train", "--limit", "300", "--hidden", "16", "--latent-dim", "4", "--quiet"]
    assert main([*common, "--epochs", "4", "--out", str(tmp_path / "full")]) == 0
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "part")]) == 0
    assert (tmp_path / "part" / "start.safetensors").is_file()
    assert main(["train", "--resume", "--epochs", "4", "--out", str(tmp_path / "part")]) == 0
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    summaries = [json.loads((tmp_path / r / "summary.json").read_text()) for r in ("full", "part")]
    assert summaries[0]["validation"]["kept"] == summaries[1]["validation"]["kept"]
