"""The fit loop: determinism, early stopping, divergence, resume equivalence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError, ModelFileError, TrainingDivergedError
from aekit.io import checkpoint as ckpt
from aekit.nn import build_model
from aekit.training import TrainConfig, TrainState, fit, make_optimizer


def small_model(seed=0):
    torch.manual_seed(seed)
    return build_model("dense", 64, hidden=(32,), latent_dim=6)


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(optimizer, digits01):
    model = small_model()
    lr = {"gd": 0.05, "sgd": 0.02, "momentum": 0.005, "adam": 3e-3}[optimizer]
    epochs = 100 if optimizer == "gd" else 15  # gd takes one step per epoch
    config = TrainConfig(epochs=epochs, optimizer=optimizer, lr=lr, batch_size=32)
    state = fit(model, digits01, config=config)
    losses = [r["train_loss"] for r in state.history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0]


def test_gd_is_full_batch(digits01):
    """gd takes exactly one step per epoch whatever batch_size says."""
    model = small_model()
    opt = make_optimizer("gd", model.parameters(), 0.01)
    fit(model, digits01, config=TrainConfig(epochs=3, optimizer="gd", batch_size=7), optimizer=opt)
    ref = small_model()
    x = torch.from_numpy(digits01)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.01)
    for _ in range(3):
        loss = ref.loss(x)["loss"]
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_history_records_validation_and_speed(digits01):
    state = fit(small_model(), digits01[:150], digits01[150:], TrainConfig(epochs=2))
    assert [r["epoch"] for r in state.history] == [1, 2]
    for r in state.history:
        assert {"train_loss", "val_loss", "seconds", "samples_per_s"} <= set(r)
        assert r["samples_per_s"] > 0


def test_early_stopping_stops_when_validation_stalls(digits01, device):
    # a learning rate this small cannot improve the validation loss by min_delta
    config = TrainConfig(epochs=50, lr=1e-9, patience=3, min_delta=1.0)
    state = fit(small_model(), digits01[:150], digits01[150:], config, device=device)
    assert state.stopped_early
    assert state.epoch == 4 and state.best_epoch == 1


def test_resume_in_process_equals_uninterrupted(digits01, device):
    config = TrainConfig(epochs=6, batch_size=32, seed=3)
    ref = small_model()
    fit(ref, digits01, config=config, device=device)

    model = small_model()
    saved = {}

    def stop_after_3(m, opt, st, improved):
        if st.epoch == 3:
            saved["ckpt"] = (
                {k: v.clone() for k, v in m.state_dict().items()},
                opt.state_dict(),
                TrainState(**st.to_dict()),
            )

    fit(
        model,
        digits01,
        config=TrainConfig(epochs=3, batch_size=32, seed=3),
        on_epoch_end=stop_after_3,
        device=device,
    )
    # rebuild everything from the saved pieces, as a new process would
    resumed = small_model(seed=99).to(device)
    weights, opt_state, state = saved["ckpt"]
    resumed.load_state_dict(weights)
    opt = make_optimizer("adam", resumed.parameters(), 1e-3)
    opt.load_state_dict(opt_state)
    fit(resumed, digits01, config=config, optimizer=opt, state=state, device=device)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_checkpoint_file_round_trip_restores_optimizer_and_rng(digits01, tmp_path):
    model = small_model()
    opt = make_optimizer("adam", model.parameters(), 1e-3)
    state = fit(model, digits01, config=TrainConfig(epochs=2), optimizer=opt)
    torch.manual_seed(1234)
    rng_before = torch.get_rng_state()
    ckpt.save_checkpoint(tmp_path / "c.safetensors", model, opt, state)
    torch.manual_seed(0)
    model2 = small_model(seed=5)
    opt2 = make_optimizer("adam", model2.parameters(), 1e-3)
    state2 = ckpt.load_checkpoint(tmp_path / "c.safetensors", model2, opt2)
    assert state2 == state
    assert torch.equal(torch.get_rng_state(), rng_before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k])
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for idx in s1:
        for key in s1[idx]:
            assert torch.equal(torch.as_tensor(s1[idx][key]), torch.as_tensor(s2[idx][key]))


class _NaNAfter(torch.nn.Module):
    """Wraps a model; its loss turns NaN from the ``n``-th call on."""

    def __init__(self, inner, n):
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        if self.calls >= self.n:
            out = {**out, "loss": out["loss"] * float("nan")}
        return out


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_epoch(digits01, device):
    seen = []
    model = _NaNAfter(small_model(), n=2 * 7 + 3)  # 200 samples / 32 = 7 steps per epoch

    def record(m, opt, st, improved):
        seen.append(st.epoch)

    with pytest.raises(TrainingDivergedError, match="epoch 3.*last good state \\(epoch 2\\)"):
        config = TrainConfig(epochs=5, batch_size=32)
        # a Python counter in forward does not run when a CUDA graph replays: eager here
        fit(model, digits01, config=config, on_epoch_end=record, device=device, cuda_graphs=False)
    assert seen == [1, 2]  # the diverged epoch was never handed on to be checkpointed


def test_a_diverging_run_stops_with_only_finite_epochs_handed_on(digits01, device):
    """Divergence through the maths itself (as a captured step sees it), not a wrapper."""
    torch.manual_seed(0)
    model = build_model("dense", 64, hidden=(32,), output_activation="identity")
    seen = []

    def record(m, opt, st, improved):
        seen.append(st.history[-1]["train_loss"])

    config = TrainConfig(epochs=20, batch_size=8, optimizer="sgd", lr=50.0)
    with pytest.raises(TrainingDivergedError, match="last good state"):
        fit(model, digits01, config=config, on_epoch_end=record, device=device)
    assert all(math.isfinite(v) for v in seen)


def test_run_api_keeps_last_good_checkpoint_on_divergence(digits01, tmp_path):
    with pytest.raises(TrainingDivergedError):
        aekit.train(
            digits01,
            out=tmp_path / "run",
            optimizer="sgd",
            lr=1e4,
            epochs=5,
            model_options={"output_activation": "identity"},
        )
    run = tmp_path / "run"
    tensors, meta = ckpt.read_tensors(run / "checkpoint.safetensors")
    assert json.loads(meta["train_state"])["epoch"] == 0  # it diverged in its first epoch
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))
    with pytest.raises(ModelFileError, match="has not finished its first epoch"):
        aekit.load(run)  # no untrained weights are ever scored
    # the epoch-0 checkpoint resumes, here with a learning rate that works
    result = aekit.train(digits01, out=run, resume=True, lr=0.01, epochs=3)
    assert result.state.epoch == 3
    assert json.loads((run / "config.json").read_text())["training"]["lr"] == 0.01
    model = aekit.load(run)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"lr": -1.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"patience": -1}, "patience"),
        ({"epochs": 2.5}, "whole number"),
        ({"batch_size": "64"}, "whole number"),
    ],
)
def test_bad_training_settings(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig(**kwargs)


def test_train_refuses_to_overwrite_a_run(digits01, tmp_path):
    aekit.train(digits01, out=tmp_path / "run", epochs=1)
    with pytest.raises(ConfigError, match="already holds a run"):
        aekit.train(digits01, out=tmp_path / "run", epochs=1)


def test_python_api_round_trip(digits01, tmp_path):
    """Build, fit, encode, decode, save, load: the README's Python example."""
    model = aekit.build_model("dense", 64, latent_dim=8, hidden=(32,))
    aekit.fit(model, digits01, config=aekit.TrainConfig(epochs=5))
    Z = model.encode_numpy(digits01)
    X_hat = model.decode_numpy(Z)
    aekit.save(model, tmp_path / "m")
    again = aekit.load(tmp_path / "m")
    np.testing.assert_array_equal(again.decode_numpy(again.encode_numpy(digits01)), X_hat)


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(terminal, monkeypatch):
    """A bar per epoch on a terminal; nothing in a log or a pipe (carriage-return debris)."""
    import io
    import sys

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    stream = Stream()
    monkeypatch.setattr(sys, "stderr", stream)
    X = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    net = build_model("dense", 6, hidden=(8,), latent_dim=2)
    fit(net, X, config=TrainConfig(epochs=2, batch_size=16), progress=True)
    assert ("epoch 2/2" in stream.getvalue()) == terminal
