"""The NumPy engine against finite differences, torch autograd and torch.optim (float64)."""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aekit.scratch import ACTIVATIONS, OPTIMIZERS, Adam, Autoencoder, gradcheck, relative_error

ACTS = list(ACTIVATIONS)
SRC = Path(__file__).resolve().parents[2] / "src"
HIDDEN = [(), (5,)]  # one and two layers on each side
TORCH_ACTS = {
    "identity": lambda a: a,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def small_data(n: int = 7, d: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d))  # in [0, 1): valid BCE targets too


def away_from_kinks(X: np.ndarray, **kwargs) -> Autoencoder:
    """A model whose pre-activations all lie >= 1e-4 from 0, so relu is smooth near them."""
    for seed in range(50):
        model = Autoencoder(X.shape[1], 3, seed=seed, **kwargs)
        _, pre, _ = model._forward(X, model.layers)
        if min(np.abs(a).min() for a in pre) > 1e-4:
            return model
    raise AssertionError("no seed keeps the pre-activations away from 0")


# ------------------------------------------------------------------ torch reference
def torch_reconstruct(model: Autoencoder, state: dict, X: torch.Tensor) -> torch.Tensor:
    """X_hat of the same network written directly with torch ops on (out, in) weights."""
    L = len(model.layers) // 2
    H = X
    for k in range(L):
        A = F.linear(H, state[f"encoder.{k}.weight"], state[f"encoder.{k}.bias"])
        H = TORCH_ACTS[model.encoder_activation](A)
    for k in range(L):
        W = state[f"encoder.{L - 1 - k}.weight"].T if model.tied else state[f"decoder.{k}.weight"]
        A = F.linear(H, W, state[f"decoder.{k}.bias"])
        act = model.decoder_activation if k == L - 1 else model.encoder_activation
        H = TORCH_ACTS[act](A)
    return H


def torch_forward(model: Autoencoder, state: dict, X: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss in torch; BCE in the textbook form on probabilities, not the engine's logits."""
    X_hat = torch_reconstruct(model, state, X)
    N = X.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy(X_hat, X, reduction="sum") / N
    return 0.5 * ((X - X_hat) ** 2).sum() / N


def torch_state(model: Autoencoder) -> dict[str, torch.Tensor]:
    layout = model.state_dict_torch_layout()
    return {k: torch.tensor(v, requires_grad=True) for k, v in layout.items()}


def as_engine_layout(model: Autoencoder, torch_arrays: dict) -> dict[str, np.ndarray]:
    """Relabel torch-layout arrays (e.g. gradients) to the engine's names and shapes."""
    arrays = {k: v.detach().numpy() for k, v in torch_arrays.items()}
    other = Autoencoder.from_torch_layout(
        arrays, model.encoder_activation, model.decoder_activation
    )
    return other.params


# --------------------------------------------------------------------- gradients
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("enc,dec", itertools.product(ACTS, ACTS))
def test_gradcheck_mse(enc: str, dec: str, tied: bool, hidden: tuple) -> None:
    X = small_data()
    model = away_from_kinks(
        X, encoder_activation=enc, decoder_activation=dec, tied=tied, hidden=hidden
    )
    before = {k: v.copy() for k, v in model.params.items()}
    assert gradcheck(model, X) < 1e-6
    for name, value in before.items():  # every perturbed entry was restored exactly
        np.testing.assert_array_equal(model.params[name], value)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("enc", ACTS)
def test_gradcheck_bce(enc: str, tied: bool, hidden: tuple) -> None:
    X = small_data()
    model = away_from_kinks(
        X, encoder_activation=enc, decoder_activation="sigmoid", tied=tied, hidden=hidden
    )
    assert gradcheck(model, X, kind="bce") < 1e-6


def test_gradcheck_catches_a_wrong_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    X = small_data()
    model = Autoencoder(6, 3, encoder_activation="tanh", hidden=(5,))
    right = model.gradients(X)
    assert gradcheck(model, X) < 1e-6
    for name in right:  # a sign error in any single parameter shows
        wrong = {**right, name: -right[name]}
        monkeypatch.setattr(model, "gradients", lambda X, kind="mse", wrong=wrong: wrong)
        assert gradcheck(model, X) > 1e-3, name


def test_relative_error_definition() -> None:
    a = np.array([1.0, -2.0, 0.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(a, 1.5 * a) == pytest.approx(0.5 / 2.5)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize(
    "enc,dec,kind",
    [(e, d, "mse") for e, d in itertools.product(ACTS, ACTS)]
    + [(e, "sigmoid", "bce") for e in ACTS],
)
def test_matches_torch_autograd(enc: str, dec: str, kind: str, tied: bool, hidden: tuple) -> None:
    X = small_data(seed=1)
    model = Autoencoder(6, 3, enc, dec, tied=tied, seed=3, hidden=hidden)
    value, grads = model.loss_and_gradients(X, kind)
    state = torch_state(model)
    loss = torch_forward(model, state, torch.tensor(X), kind)
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-10, abs=1e-12)
    assert model.loss(X, kind) == value
    expected = as_engine_layout(model, {k: t.grad for k, t in state.items()})
    assert list(grads) == list(model.params) == list(expected)
    for name, g in grads.items():
        assert g.shape == model.params[name].shape and g.dtype == np.float64
        np.testing.assert_allclose(g, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)
    X_hat = torch_reconstruct(model, state, torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(model.forward(X), X_hat, rtol=1e-12, atol=1e-14)


# -------------------------------------------------------------------- optimisers
def torch_fit(model, X, optimizer, lr, batch_size, epochs, kind, seed=0):
    """torch.optim on identical weights with the engine's documented minibatch order."""
    state = torch_state(model)
    params = list(state.values())
    opt = {
        "gd": lambda: torch.optim.SGD(params, lr=lr),
        "sgd": lambda: torch.optim.SGD(params, lr=lr),
        "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
        "adam": lambda: torch.optim.Adam(params, lr=lr),
    }[optimizer]()
    N = X.shape[0]
    Xt = torch.tensor(X)
    history, steps = [], 0
    for epoch in range(epochs):
        order = np.arange(N)
        if batch_size < N:
            order = np.random.default_rng(seed + epoch).permutation(N)
        total = 0.0
        for start in range(0, N, batch_size):
            Xb = Xt[torch.from_numpy(order[start : start + batch_size])]
            opt.zero_grad()
            loss = torch_forward(model, state, Xb, kind)
            loss.backward()
            opt.step()
            total += loss.item() * Xb.shape[0]
            steps += 1
        history.append(total / N)
    return {k: v.detach().numpy() for k, v in state.items()}, history, steps


@pytest.mark.parametrize(
    "optimizer,lr,batch_size,tied,kind",
    [
        ("gd", 0.5, None, False, "mse"),
        ("sgd", 0.2, 5, False, "mse"),
        ("momentum", 0.05, 5, True, "mse"),
        ("adam", 0.01, 5, False, "bce"),
        ("adam", 0.01, 5, True, "mse"),
    ],
)
def test_optimizers_match_torch(optimizer, lr, batch_size, tied, kind) -> None:
    X = small_data(n=19, seed=2)  # batches of 5, 5, 5, 4: 4 steps per epoch
    epochs = 100 if batch_size is None else 25  # 100 steps either way
    model = Autoencoder(6, 3, "tanh", "sigmoid", tied=tied, seed=4, hidden=(5,))
    start = model.state_dict_torch_layout()
    expected, torch_history, steps = torch_fit(
        model, X, optimizer, lr, batch_size or 19, epochs, kind
    )
    history = model.fit(
        X, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, loss=kind
    )
    assert steps == 100
    got = model.state_dict_torch_layout()
    moved = max(np.abs(got[k] - start[k]).max() for k in got)
    assert moved > 1e-2  # the comparison is not between two untouched copies
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-8, err_msg=key)
    np.testing.assert_allclose(history, torch_history, rtol=1e-8)
    assert history[-1] < history[0]


def test_optimizer_state_keeps_float32() -> None:
    params = {"w": np.ones((2, 3), np.float32)}
    opt = Adam(lr=0.1)
    opt.step(params, {"w": np.full((2, 3), 0.5, np.float32)})
    assert params["w"].dtype == opt.m["w"].dtype == opt.v["w"].dtype == np.float32
    np.testing.assert_allclose(params["w"], 0.9, rtol=1e-6)  # first Adam step moves by lr


# ------------------------------------------------------------ dtype, shapes, data
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0  # (1797, 64) in [0, 1]


def test_float32_stays_float32() -> None:
    X = digits()[:300].astype(np.float32)
    model = Autoencoder(64, 8, "tanh", "sigmoid", dtype=np.float32, hidden=(32,))
    assert all(p.dtype == np.float32 for p in model.params.values())
    value, grads = model.loss_and_gradients(X)
    assert isinstance(value, float)
    assert all(g.dtype == np.float32 for g in grads.values())
    history = model.fit(X, epochs=5, batch_size=50, optimizer="adam", lr=1e-2)
    assert history[-1] < 0.7 * history[0]
    assert all(p.dtype == np.float32 for p in model.params.values())
    Z = model.encode(X)
    assert Z.dtype == model.decode(Z).dtype == model.forward(X).dtype == np.float32
    assert model.forward(X.astype(np.float64)).dtype == np.float32  # input takes model dtype


@pytest.mark.parametrize("optimizer,lr", [("gd", 1.0), ("sgd", 0.5), ("momentum", 0.1)])
def test_loss_decreases_on_digits(optimizer: str, lr: float) -> None:
    X = digits()
    model = Autoencoder(64, 16, "sigmoid", "sigmoid", seed=1)
    batch = None if optimizer == "gd" else 64
    history = model.fit(X, epochs=6, batch_size=batch, optimizer=optimizer, lr=lr, loss="bce")
    assert len(history) == 6 and all(np.isfinite(history))
    assert history[-1] < 0.9 * history[0]
    assert model.loss(X, "bce") < history[0]


def test_adam_mse_on_digits() -> None:
    X = digits()
    model = Autoencoder(64, 16, "relu", "sigmoid", seed=0, hidden=(32,))
    first = model.loss(X)
    history = model.fit(X, epochs=5, batch_size=64, optimizer="adam", lr=1e-2)
    assert history[-1] < 0.5 * first
    assert model.fit(X, epochs=1, shuffle=False, batch_size=64, lr=1e-3)[0] < first


def test_shapes_and_names() -> None:
    model = Autoencoder(6, 3)
    assert {k: v.shape for k, v in model.params.items()} == {
        "W_E": (6, 3),
        "b_E": (1, 3),
        "W_D": (3, 6),
        "b_D": (1, 6),
    }
    deep = Autoencoder(6, 3, hidden=(5, 4), tied=True)
    assert {k: v.shape for k, v in deep.params.items()} == {
        "W_E1": (6, 5),
        "b_E1": (1, 5),
        "W_E2": (5, 4),
        "b_E2": (1, 4),
        "W_E3": (4, 3),
        "b_E3": (1, 3),
        "b_D1": (1, 4),
        "b_D2": (1, 5),
        "b_D3": (1, 6),
    }
    X = small_data(n=4)
    assert deep.encode(X).shape == (4, 3)
    assert deep.decode(np.zeros((2, 3))).shape == (2, 6)
    assert deep.forward(X).shape == X.shape
    same = Autoencoder(6, 3, seed=5).forward(X)
    np.testing.assert_array_equal(same, Autoencoder(6, 3, seed=5).forward(X))


def test_init_matches_torch_linear_bounds() -> None:
    model = Autoencoder(100, 4, hidden=(25,))
    for name, fan_in in [("W_E1", 100), ("b_E1", 100), ("W_E2", 25), ("W_D1", 4), ("b_D2", 25)]:
        p = model.params[name]
        assert np.abs(p).max() <= 1 / np.sqrt(fan_in)
        assert np.abs(p).max() > 0.8 / np.sqrt(fan_in)  # uses the range, not a smaller one
    assert not np.array_equal(model.params["W_E1"], Autoencoder(100, 4, seed=1).params["W_E"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("tied", [False, True])
def test_torch_layout_round_trip(tied: bool, hidden: tuple, dtype) -> None:
    model = Autoencoder(6, 3, "relu", "sigmoid", tied=tied, seed=7, dtype=dtype, hidden=hidden)
    state = model.state_dict_torch_layout()
    L = len(hidden) + 1
    assert state["encoder.0.weight"].shape == ((hidden or (3,))[0], 6)
    assert state[f"decoder.{L - 1}.bias"].shape == (6,)
    assert ("decoder.0.weight" in state) is not tied
    # a real nn.Linear stack accepts the state strictly, and gives it back unchanged
    dims = [6, *hidden, 3]
    tdtype = torch.float32 if dtype is np.float32 else torch.float64
    net = torch.nn.Module()
    net.encoder = torch.nn.ModuleList(
        torch.nn.Linear(a, b, dtype=tdtype) for a, b in itertools.pairwise(dims)
    )
    net.decoder = torch.nn.ModuleList(
        torch.nn.Linear(a, b, dtype=tdtype) for a, b in itertools.pairwise(dims[::-1])
    )
    if tied:
        for layer in net.decoder:
            del layer.weight
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    again = Autoencoder.from_torch_layout(net.state_dict(), "relu", "sigmoid")
    assert again.tied is tied and again.hidden == tuple(hidden) and again.dtype == dtype
    assert list(again.params) == list(model.params)
    for name, p in model.params.items():
        assert again.params[name].dtype == p.dtype
        np.testing.assert_array_equal(again.params[name], p)
        assert not np.shares_memory(again.params[name], p)
    config = model.to_config()
    assert config == {
        "input_dim": 6,
        "latent_dim": 3,
        "hidden": list(hidden),
        "activation": "relu",
        "latent_activation": "relu",
        "output_activation": "sigmoid",
        "tied": tied,
    }
    assert Autoencoder.from_config(config, seed=7, dtype=dtype).to_config() == config


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m, X: Autoencoder(6, 3, encoder_activation="gelu"), "unknown activation 'gelu'"),
        (lambda m, X: Autoencoder(6, 3, decoder_activation="soft"), "unknown activation 'soft'"),
        (lambda m, X: m.fit(X, optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
        (lambda m, X: m.forward(X[:, :5]), r"shape \(N, 6\)"),
        (lambda m, X: m.fit(X[:, :5]), r"shape \(N, 6\)"),
        (lambda m, X: m.decode(X), r"Z must have shape \(N, 3\)"),
        (lambda m, X: m.loss(X, "bce"), "needs decoder_activation='sigmoid'"),
        (lambda m, X: m.fit(X, loss="bce"), "needs decoder_activation='sigmoid'"),
        (lambda m, X: m.loss(X, "l1"), "unknown loss 'l1'"),
        (lambda m, X: m.fit(X, optimizer="gd", batch_size=2), "'gd' is full-batch"),
        (lambda m, X: m.fit(X, lr=-1.0), "lr must be a positive"),
        (lambda m, X: m.fit(X, batch_size=0), "batch_size must be a positive integer"),
        (lambda m, X: m.forward(np.full((2, 6), np.nan)), "NaN"),
        (lambda m, X: Autoencoder(6, 3, dtype=np.int32), "float32 or float64"),
        (lambda m, X: Autoencoder(6, 0), "d_latent must be a positive integer"),
        (lambda m, X: Autoencoder(6, 3, hidden=5), "hidden must be a sequence"),
        (lambda m, X: gradcheck(Autoencoder(6, 3, dtype=np.float32), X), "float64"),
        (lambda m, X: Autoencoder.from_torch_layout({}), "encoder.0.weight"),
    ],
)
def test_bad_arguments_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(Autoencoder(6, 3), small_data())


def test_from_torch_layout_rejects_a_mismatched_state() -> None:
    state = Autoencoder(6, 3, hidden=(5,)).state_dict_torch_layout()
    with pytest.raises(ValueError, match="missing"):
        Autoencoder.from_torch_layout({k: v for k, v in state.items() if k != "decoder.0.bias"})
    state["decoder.1.weight"] = np.zeros((6, 4))
    with pytest.raises(ValueError, match=r"decoder.1.weight has shape \(6, 4\)"):
        Autoencoder.from_torch_layout(state)


def test_registries() -> None:
    assert set(ACTIVATIONS) == {"identity", "relu", "sigmoid", "tanh"}
    assert set(OPTIMIZERS) == {"gd", "sgd", "momentum", "adam"}


# ---------------------------------------------------------------- NumPy only
def test_importing_scratch_does_not_import_torch() -> None:
    code = (
        "import sys, aekit.scratch\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not bad, f'importing aekit.scratch imported torch: {bad[:3]}'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_scratch_sources_import_only_numpy_and_the_stdlib() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    for path in sorted((SRC / "aekit" / "scratch").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue  # relative imports stay inside aekit.scratch
            assert set(roots) <= allowed, f"{path.name} imports {roots}"
