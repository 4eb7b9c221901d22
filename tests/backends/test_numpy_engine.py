"""The NumPy engine behind the PyTorch dense model: weights, forward, training, checkpoints."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from aekit.backends.numpy import NumpyOptimizer, from_scratch, to_scratch
from aekit.errors import ConfigError, DataError, TrainingDivergedError
from aekit.io import checkpoint as ckpt
from aekit.nn import MODELS, build_model
from aekit.nn.arch.dense import DenseAutoencoder, DenseConfig
from aekit.scratch import Autoencoder
from aekit.training import TrainConfig, TrainState, fit, make_optimizer


def fit_numpy(model, X, X_val=None, config=None, **kwargs):
    """The one loop with the NumPy engine: what ``aekit train --engine numpy`` runs."""
    config = dataclasses.replace(config or TrainConfig(), engine="numpy")
    return fit(model, X, X_val, config, **kwargs)


HIDDEN = [(), (5,)]  # one and two layers on each side


def dense(hidden=(5,), tied=False, loss="mse", seed=0, dtype=torch.float64, **kwargs):
    torch.manual_seed(seed)
    options = {"activation": "tanh", "latent_activation": "tanh", **kwargs}
    model = build_model("dense", 8, hidden=hidden, latent_dim=3, tied=tied, loss=loss, **options)
    return model.to(dtype)


def data(n=40, d=8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d))  # in [0, 1): valid BCE targets too


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b, atol=0.0) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        if atol == 0.0:
            assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=atol, msg=k)


# ---------------------------------------------------------------- weights both ways
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_is_exact(tied, hidden, dtype):
    model = dense(hidden, tied, dtype=dtype, output_activation="identity")
    sm = to_scratch(model)
    assert sm.tied is tied and sm.hidden == hidden and sm.dtype == DTYPE[dtype]
    assert sm.encoder_activation == "tanh" and sm.decoder_activation == "identity"
    again = from_scratch(sm)
    assert again.config == model.config and next(again.parameters()).dtype == dtype
    assert_same_weights(again, model)
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert not np.shares_memory(p.detach().numpy(), q.detach().numpy())
    # and the other way: scratch -> torch -> scratch
    back = to_scratch(from_scratch(sm))
    for name, p in sm.params.items():
        np.testing.assert_array_equal(back.params[name], p)
        assert not np.shares_memory(back.params[name], p)


DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def test_dtype_can_be_chosen_and_from_scratch_keeps_the_name_and_loss():
    sm = to_scratch(dense(dtype=torch.float32), dtype=np.float64)
    assert sm.dtype == np.float64
    model = from_scratch(sm, name="tied", loss="bce")
    assert model.name == "tied" and model.config.loss == "bce"
    assert next(model.parameters()).dtype == torch.float64


def test_no_hidden_layer_needs_only_the_latent_activation():
    # with hidden=() the model's `activation` is never applied: the seed's model fits the engine
    model = dense((), activation="relu", latent_activation="sigmoid", output_activation="sigmoid")
    sm = to_scratch(model)
    assert sm.encoder_activation == "sigmoid" and list(sm.params) == ["W_E", "b_E", "W_D", "b_D"]


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize(
    "loss,output", [("mse", "identity"), ("mse", "sigmoid"), ("bce", "sigmoid")]
)
def test_forward_and_loss_agree(loss, output, tied, hidden):
    model = dense(hidden, tied, loss=loss, output_activation=output)
    sm = to_scratch(model)
    X = data()
    with torch.no_grad():
        X_hat = model.reconstruct(torch.from_numpy(X)).numpy()
        value = model.loss(torch.from_numpy(X))["loss"].item()
    np.testing.assert_allclose(sm.forward(X), X_hat, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sm.encode(X), model.encode_numpy(X), rtol=1e-12, atol=1e-12)
    assert sm.loss(X, loss) == pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: dense(activation="relu", latent_activation="identity"), "one activation"),
        (lambda: dense(decoder_hidden=(4,)), "mirrored decoder"),
        (lambda: dense(loss="mae"), "no loss 'mae'"),
        (lambda: dense(dtype=torch.float16), "float32 or float64"),
        (lambda: torch.nn.Linear(3, 3), "dense autoencoders only"),
    ],
)
def test_unrepresentable_models_raise_config_error(build, message):
    with pytest.raises(ConfigError, match=message):
        to_scratch(build())
    with pytest.raises(ConfigError, match=message):
        fit_numpy(build(), data(d=3), config=TrainConfig(epochs=1))


@dataclass
class _PenalisedConfig(DenseConfig):
    penalty: float = 0.0  # a setting the NumPy engine knows nothing about


@pytest.mark.parametrize("preset", ["sparse", "denoising", "contractive", "vae", "conv"])
def test_only_the_plain_model_is_accepted(preset):
    if preset not in MODELS:
        pytest.skip(f"no {preset!r} model registered")
    options = {"image_shape": (1, 8, 8)} if preset == "conv" else {}
    with pytest.raises(ConfigError, match="plain autoencoder|dense autoencoders only"):
        to_scratch(build_model(preset, 64, **options))


def test_any_setting_the_engine_does_not_map_must_keep_its_default():
    base = {"input_dim": 8, "latent_dim": 3, "hidden": (), "latent_activation": "tanh"}
    assert to_scratch(DenseAutoencoder(_PenalisedConfig(**base))).d_latent == 3
    with pytest.raises(ConfigError, match="this model sets penalty=0.5"):
        to_scratch(DenseAutoencoder(_PenalisedConfig(**base, penalty=0.5)))


def test_from_scratch_refuses_what_the_torch_model_lacks():
    with pytest.raises(ConfigError, match="output activation"):
        from_scratch(Autoencoder(8, 3, decoder_activation="tanh"))
    with pytest.raises(ConfigError, match="unknown model"):
        from_scratch(Autoencoder(8, 3), name="nope")


# ------------------------------------------------------- training agrees with torch
@pytest.mark.parametrize(
    "optimizer,lr,tied,loss",
    [
        ("gd", 0.5, False, "mse"),
        ("sgd", 0.2, False, "mse"),
        ("sgd", 0.2, True, "bce"),
        ("momentum", 0.05, True, "mse"),
        ("adam", 0.01, False, "mse"),
        ("adam", 0.01, True, "bce"),
    ],
)
def test_100_steps_agree_with_the_torch_engine(optimizer, lr, tied, loss):
    """aekit.training.fit (fused torch.optim) and fit_numpy from the same weights, float64."""
    X = data(n=40)  # batches of 10: 4 steps per epoch; gd is full batch
    epochs = 100 if optimizer == "gd" else 25  # 100 steps either way
    config = TrainConfig(epochs=epochs, batch_size=10, optimizer=optimizer, lr=lr, seed=3)
    ref = dense(tied=tied, loss=loss, output_activation="sigmoid")
    model = copy.deepcopy(ref)
    start = weights(ref)
    expected = fit(ref, X, config=config)
    got = fit_numpy(model, X, config=config)
    moved = max((v - start[k]).abs().max().item() for k, v in model.state_dict().items())
    assert moved > 1e-2  # the comparison is not between two untouched copies
    assert_same_weights(model, ref, atol=1e-8)
    train = [r["train_loss"] for r in got.history]
    np.testing.assert_allclose(train, [r["train_loss"] for r in expected.history], rtol=1e-10)
    assert train[-1] < train[0]


def test_history_and_early_stopping_follow_training_fit():
    X = data(n=60)
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-2)
    ref, model = dense(), dense()
    expected = fit(ref, X[:45], X[45:], config)
    got = fit_numpy(model, X[:45], X[45:], config)
    assert [list(r) for r in got.history] == [list(r) for r in expected.history]
    assert (got.epoch, got.best_epoch, got.bad_epochs) == (expected.epoch, 3, 0)
    for g, e in zip(got.history, expected.history, strict=True):
        assert g["val_loss"] == pytest.approx(e["val_loss"], rel=1e-10)
        assert g["samples_per_s"] > 0 and g["seconds"] > 0
    assert got.best_loss == pytest.approx(expected.best_loss, rel=1e-10)
    # a learning rate this small cannot improve the validation loss by min_delta
    stall = TrainConfig(epochs=50, lr=1e-9, patience=3, min_delta=1.0)
    state = fit_numpy(dense(), X[:45], X[45:], stall)
    assert state.stopped_early and state.epoch == 4 and state.best_epoch == 1
    assert not fit_numpy(dense(), X, config=stall).stopped_early  # no validation: no stopping


def test_on_epoch_end_sees_each_epochs_weights():
    X = data()
    seen = []

    def record(m, opt, st, improved):
        assert isinstance(opt, NumpyOptimizer) and improved == (st.best_epoch == st.epoch)
        seen.append((st.epoch, weights(m)))

    config = TrainConfig(epochs=3, batch_size=8, lr=1e-2)
    model = dense()
    fit_numpy(model, X, config=config, on_epoch_end=record)
    assert [e for e, _ in seen] == [1, 2, 3]
    one = dense()
    fit_numpy(one, X, config=TrainConfig(epochs=1, batch_size=8, lr=1e-2))
    for k, v in one.state_dict().items():
        assert torch.equal(seen[0][1][k], v)
        assert torch.equal(seen[2][1][k], model.state_dict()[k])
        assert not torch.equal(seen[0][1][k], seen[2][1][k])


# ------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_resume_from_a_checkpoint_file_is_exact(optimizer, tmp_path):
    """float32, through aekit.io.checkpoint unchanged: 3 + 3 epochs equal 6 epochs bit for bit."""
    X = data(n=50).astype(np.float32)
    config = TrainConfig(epochs=6, batch_size=16, optimizer=optimizer, lr=1e-2, seed=2)
    ref = dense(dtype=torch.float32)
    fit_numpy(ref, X, config=config)

    def save(m, opt, st, improved):
        if st.epoch == 3:
            ckpt.save_checkpoint(tmp_path / "c.safetensors", m, opt, st)

    first = dense(dtype=torch.float32)
    fit_numpy(first, X, config=TrainConfig(**{**vars(config), "epochs": 3}), on_epoch_end=save)
    resumed = dense(seed=7, dtype=torch.float32)  # other weights: all must come from the file
    opt = NumpyOptimizer(optimizer, resumed, lr=123.0)  # lr too: the file's group wins
    state = ckpt.load_checkpoint(tmp_path / "c.safetensors", resumed, opt)
    assert state.epoch == 3
    fit_numpy(resumed, X, config=config, optimizer=opt, state=state)
    assert_same_weights(resumed, ref)


@pytest.mark.parametrize("first_engine", ["torch", "numpy"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_checkpoints_are_interchangeable_between_engines(optimizer, first_engine, tmp_path):
    """A checkpoint written by one engine resumes under the other (float64, 1e-8)."""
    X = data(n=50)
    config = TrainConfig(epochs=6, batch_size=16, optimizer=optimizer, lr=1e-2, seed=1)
    ref = dense(tied=True)
    fit(ref, X, config=config)
    half = TrainConfig(**{**vars(config), "epochs": 3})
    path = tmp_path / "c.safetensors"

    def save(m, opt, st, improved):
        ckpt.save_checkpoint(path, m, opt, st)

    (fit if first_engine == "torch" else fit_numpy)(
        dense(tied=True), X, config=half, on_epoch_end=save
    )
    resumed = dense(tied=True, seed=5)
    if first_engine == "torch":  # continue with the NumPy engine
        opt = NumpyOptimizer(optimizer, resumed, config.lr)
        state = ckpt.load_checkpoint(path, resumed, opt)
        fit_numpy(resumed, X, config=config, optimizer=opt, state=state)
    else:  # continue with the torch engine
        opt = make_optimizer(optimizer, resumed.parameters(), config.lr)
        state = ckpt.load_checkpoint(path, resumed, opt)
        fit(resumed, X, config=config, optimizer=opt, state=state)
    assert state.epoch == 6
    assert_same_weights(resumed, ref, atol=1e-8)


def test_optimizer_state_dict_has_torchs_format():
    X = data()
    model = dense(tied=True)
    ref = copy.deepcopy(model)
    config = TrainConfig(epochs=2, batch_size=8, optimizer="adam", lr=1e-2)
    opt = make_optimizer("adam", ref.parameters(), config.lr)
    fit(ref, X, config=config, optimizer=opt)
    mine = NumpyOptimizer("adam", model, config.lr)
    fit_numpy(model, X, config=config, optimizer=mine)
    expected, got = opt.state_dict(), mine.state_dict()
    assert got["param_groups"] == expected["param_groups"]
    assert list(got["state"]) == list(expected["state"])
    for idx, entry in expected["state"].items():
        assert list(got["state"][idx]) == list(entry)
        for key, value in entry.items():
            assert got["state"][idx][key].dtype == value.dtype
            torch.testing.assert_close(got["state"][idx][key], value, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="parameters per group"):
        NumpyOptimizer("adam", dense(hidden=()), 1e-2).load_state_dict(got)


# ------------------------------------------------------------------------ errors
class _NaNAfter(NumpyOptimizer):
    """Writes a NaN into the weights after its ``n``-th step, so the next loss is NaN."""

    def __init__(self, *args, n: int) -> None:
        super().__init__(*args)
        self.n, self.calls = n, 0

    def step(self, params, grads) -> None:
        super().step(params, grads)
        self.calls += 1
        if self.calls == self.n:
            next(iter(params.values()))[0, 0] = np.nan


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_epoch():
    X, seen = data(n=64), []
    model = dense()
    opt = _NaNAfter("adam", model, 1e-2, n=2 * 8 + 3)  # 64 samples / 8 = 8 steps per epoch

    def record(m, o, st, improved):
        seen.append((st.epoch, weights(m)))

    with pytest.raises(TrainingDivergedError, match=r"epoch 3.*last good state \(epoch 2\)"):
        fit_numpy(
            model,
            X,
            config=TrainConfig(epochs=5, batch_size=8, lr=1e-2),
            optimizer=opt,
            on_epoch_end=record,
        )
    assert [e for e, _ in seen] == [1, 2]  # the diverged epoch was never handed on
    for k, v in model.state_dict().items():  # the model keeps epoch 2's weights
        assert torch.equal(v, seen[1][1][k])


def test_a_real_divergence_raises_without_numpy_warnings(recwarn):
    model = dense(
        hidden=(), activation="identity", latent_activation="identity", output_activation="identity"
    )
    config = TrainConfig(epochs=50, batch_size=8, optimizer="sgd", lr=10.0)
    with pytest.raises(TrainingDivergedError, match="try a smaller learning rate"):
        fit_numpy(model, data(n=64) * 10, config=config)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_data_of_the_wrong_width_raises_data_error():
    with pytest.raises(DataError, match=r"expects \(n, 8\)"):
        fit_numpy(dense(), data(d=5), config=TrainConfig(epochs=1))


def test_accepts_tensors_and_trains_in_float32():
    X = torch.from_numpy(data().astype(np.float32))
    model = dense(dtype=torch.float32)
    state = fit_numpy(model, X, X[:10], TrainConfig(epochs=3, batch_size=8, lr=1e-2))
    assert isinstance(state, TrainState) and state.epoch == 3
    assert next(model.parameters()).dtype == torch.float32
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]
