"""Contract tests, parametrised over the registry: every model obeys them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError
from aekit.models import MODELS, build_model

NAMES = sorted(MODELS)


def make(name: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    kw = {"latent_dim": 5, **kw}
    if MODELS[name].defaults.get("hidden", (128,)) != ():
        kw.setdefault("hidden", (24,))
    return build_model(name, 64, **kw)


def test_registry_has_the_foundation_presets():
    assert {"dense", "linear", "tied"} <= set(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name, digits01):
    model = make(name)
    x = torch.from_numpy(digits01[:10])
    z = model.encode(x)
    assert z.shape == (10, 5)
    assert model.decode(z).shape == (10, 64)
    assert model(x).shape == (10, 64)
    assert model.encode_numpy(digits01).shape == (200, 5)


@pytest.mark.parametrize("name", NAMES)
def test_loss_finite_and_gradients_reach_every_parameter(name, digits01):
    model = make(name)
    loss = model.loss(torch.from_numpy(digits01[:32]))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name, digits01):
    model = make(name)
    x = torch.from_numpy(digits01[:16])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(model.loss(x)["loss"].detach())
    for _ in range(200):
        loss = model.loss(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 * first


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_is_exact(name, digits01, tmp_path):
    model = make(name)
    aekit.save(model, tmp_path / "run")
    loaded = aekit.load(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.name == name
    assert loaded.config == model.config
    for (k1, v1), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
    np.testing.assert_array_equal(
        model.reconstruct_numpy(digits01), loaded.reconstruct_numpy(digits01)
    )


@pytest.mark.parametrize("name", NAMES)
def test_seeded_training_is_bit_identical(name, digits01):
    def train(seed):
        model = make(name, seed=seed)
        aekit.fit(model, digits01, config=aekit.TrainConfig(epochs=3, batch_size=32, seed=seed))
        return model.state_dict()

    a, b, c = train(0), train(0), train(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seed_mse_is_half_frobenius_over_n():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    x_hat = torch.tensor([[0.5, 1.0], [0.0, 1.0], [0.5, 1.0]])
    # ||X - X_hat||_F^2 = 0.25 + 1 + 1 = 2.25; N = 3 -> 2.25 / 6
    assert float(aekit.losses.mse(x_hat, x)) == pytest.approx(2.25 / 6)
    assert float(aekit.losses.mae(x_hat, x)) == pytest.approx(2.5 / 3)


def test_bce_from_logits_is_stable_and_correct():
    from aekit.losses import bce_with_logits

    logits = torch.tensor([[100.0, -100.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64)
    # -log(1 - s(100)) = 100 + log(1 + e^-100); -log s(-100) likewise; -log s(0) = log 2
    expected = 100 + 100 + np.log(2)
    assert float(bce_with_logits(logits, x)) == pytest.approx(expected, rel=1e-12)


def test_tied_decoder_uses_encoder_weights_transposed(digits01):
    model = make("tied", hidden=())
    assert not any(k.startswith("decoder") and k.endswith("weight") for k in model.state_dict())
    x = torch.from_numpy(digits01[:4])
    W, b = model.encoder[0].weight, model.encoder[0].bias  # (latent, in)
    z = x @ W.T + b
    expected = torch.sigmoid(z @ W + model.decoder[0].bias)
    torch.testing.assert_close(model(x), expected)


def test_linear_autoencoder_matches_pca(digits01):
    """The linear AE's optimum spans the top principal subspace: its error equals PCA's."""
    from sklearn.decomposition import PCA

    X = digits01.astype(np.float64)
    pca = PCA(4).fit(X)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    torch.manual_seed(0)
    model = build_model("linear", 64, latent_dim=4).double()
    config = aekit.TrainConfig(epochs=1500, optimizer="adam", lr=0.01, batch_size=len(X))
    aekit.fit(model, X, config=config)
    ae_mse = np.mean((model.reconstruct_numpy(X) - X) ** 2)
    assert ae_mse == pytest.approx(pca_mse, rel=0.01)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"activation": "swish"}, "unknown activation"),
        ({"loss": "huber"}, "unknown loss"),
        ({"loss": "bce", "output_activation": "identity"}, "needs outputs in [0, 1]"),
        ({"hidden": (0,)}, "positive"),
        ({"latent_dim": 0}, "positive"),
        ({"colour": "red"}, "no setting colour"),
    ],
)
def test_bad_model_settings_raise_config_error(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        build_model("dense", 64, **kwargs)


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model("nope", 64)


def test_output_activation_auto_follows_data_range_but_not_over_a_preset():
    from aekit.runs import resolve_output_activation

    X01, Xneg = np.array([[0.0, 1.0]]), np.array([[-1.0, 1.0]])
    assert resolve_output_activation("dense", "auto", X01) == "sigmoid"
    assert resolve_output_activation("dense", None, Xneg) == "identity"
    assert resolve_output_activation("dense", "identity", X01) == "identity"
    assert resolve_output_activation("linear", "auto", X01) == "identity"  # linear stays linear
