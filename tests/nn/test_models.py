"""Contract tests, parametrised over the registry: every model obeys them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError
from aekit.functional import losses
from aekit.nn import MODELS, build_model

NAMES = sorted(MODELS)


def make(name: str, seed: int = 0, **kw):
    """A small model of preset ``name`` for the 8x8 digits (64 features)."""
    torch.manual_seed(seed)
    kw = {"latent_dim": 5, "image_shape": (1, 8, 8), **kw}
    defaults = MODELS[name].defaults
    if defaults.get("latent") == "hyperprior":  # the spatial codec (dct: 16 coefficients)
        kw.pop("latent_dim")
        kw.update(stages=2, hyper_channels=4)
    elif "channels" in defaults:
        kw.setdefault("channels", (4, 8))
    elif "width" in defaults:  # a fully convolutional denoiser: no code, no hidden layers
        kw.pop("latent_dim")
        kw.setdefault("width", 8)
    elif defaults.get("hidden", (128,)) != ():
        kw.setdefault("hidden", (24,))
    return build_model(name, 64, **kw)


def test_registry_has_every_preset():
    expected = {"dense", "linear", "tied", "sparse", "denoising", "contractive", "vae", "conv"}
    assert expected | {"conv-vae"} <= set(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name, digits01, device):
    model = make(name).to(device)
    x = torch.from_numpy(digits01[:10]).to(device)
    if not model.has_code:  # a fully convolutional denoiser: reconstructions, no code
        assert model.reconstruct(x).shape == (10, 64) and model(x)["x_hat"].shape == (10, 64)
        with pytest.raises(ConfigError, match="no code"):
            model.encode(x)
        return
    z = model.encode(x)
    assert z.shape == (10, 5)
    assert model.decode(z).shape == (10, 64)
    assert model.reconstruct(x).shape == (10, 64)
    record = model(x)  # forward: the record the objective needs
    assert record["x_hat"].shape == (10, 64) and record["code"].shape == (10, 5)
    assert record["loss"].ndim == 0 and torch.isfinite(record["loss"])
    assert model.encode_numpy(digits01).shape == (200, 5)


@pytest.mark.parametrize("name", NAMES)
def test_loss_finite_and_gradients_reach_every_parameter(name, digits01, device):
    model = make(name).to(device)
    loss = model.loss(torch.from_numpy(digits01[:32]).to(device))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name, digits01, device):
    """The loss stays finite and falls, and the (deterministic) reconstruction gets close."""
    model = make(name).to(device)
    x = torch.from_numpy(digits01[:16]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mse_before = np.mean((model.reconstruct_numpy(digits01[:16]) - digits01[:16]) ** 2)
    losses = []
    for _ in range(200):
        loss = model.loss(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    if hasattr(model, "probabilities"):  # a context model: bits of a random plane and scale
        model.eval()  # the same planes before and after (eval's fixed generator), no code
        assert float(model.loss(x)["loss"].detach()) < 0.8 * np.mean(losses[:10])
        return
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    if model.config.blindspot:  # scored where it cannot see the value: not the identity map
        return
    mse_after = np.mean((model.reconstruct_numpy(digits01[:16]) - digits01[:16]) ** 2)
    # the dct codec starts near the identity (the DCT and its inverse): then the data's spread
    reference = max(mse_before, float(np.var(digits01[:16])))
    assert mse_after < 0.4 * reference


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
def test_seeded_training_is_bit_identical(name, digits01, device):
    def train(seed):
        model = make(name, seed=seed)
        torch.manual_seed(seed)  # the global RNG (noise, reparameterisation) as a run seeds it
        if device == "cuda":
            torch.cuda.manual_seed(seed)
        config = aekit.TrainConfig(epochs=3, batch_size=32, seed=seed)
        aekit.fit(model, digits01, config=config, device=device)
        return {k: v.cpu() for k, v in model.state_dict().items()}

    a, b, c = train(0), train(0), train(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seed_mse_is_half_frobenius_over_n():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    x_hat = torch.tensor([[0.5, 1.0], [0.0, 1.0], [0.5, 1.0]])
    # ||X - X_hat||_F^2 = 0.25 + 1 + 1 = 2.25; N = 3 -> 2.25 / 6
    assert float(losses.mse(x_hat, x)) == pytest.approx(2.25 / 6)
    assert float(losses.mae(x_hat, x)) == pytest.approx(2.5 / 3)


def test_bce_from_logits_is_stable_and_correct():
    from aekit.functional.losses import bce_with_logits

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
    torch.testing.assert_close(model.reconstruct(x), expected)


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
    from aekit.apps.train import resolve_output_activation

    X01, Xneg = np.array([[0.0, 1.0]]), np.array([[-1.0, 1.0]])
    assert resolve_output_activation("dense", "auto", X01) == "sigmoid"
    assert resolve_output_activation("dense", None, Xneg) == "identity"
    assert resolve_output_activation("dense", "identity", X01) == "identity"
    assert resolve_output_activation("linear", "auto", X01) == "identity"  # linear stays linear


def test_old_dense_configs_still_load():
    """A config written before the family existed (no latent, penalties...) rebuilds as before."""
    from aekit.io.checkpoint import build_from_record

    old = {
        "input_dim": 64,
        "latent_dim": 4,
        "hidden": [16],
        "decoder_hidden": None,
        "activation": "relu",
        "latent_activation": "identity",
        "output_activation": "sigmoid",
        "tied": False,
        "loss": "mse",
    }
    model = build_from_record({"name": "dense", "config": old})
    assert model.config.latent == "deterministic" and model.config.is_plain
    assert list(model.state_dict()) == [
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.1.weight",
        "encoder.1.bias",
        "decoder.0.weight",
        "decoder.0.bias",
        "decoder.1.weight",
        "decoder.1.bias",
    ]


def test_gaussian_latent_adds_only_a_logvar_head():
    plain = make("dense").state_dict()
    vae = make("vae").state_dict()
    assert set(vae) - set(plain) == {"latent.logvar.weight", "latent.logvar.bias"}
    assert vae["latent.logvar.weight"].shape == vae["encoder.1.weight"].shape  # mu's twin


def test_a_vae_file_of_aekit_0_1_still_loads(tmp_path):
    """0.1 stored the log-variance head as logvar.*; loading maps it to latent.logvar.*."""
    from safetensors.torch import load_file, save_file

    model = make("vae")
    aekit.save(model, tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    old = {k.replace("latent.logvar.", "logvar."): v for k, v in load_file(path).items()}
    assert "logvar.weight" in old
    save_file(old, path)
    again = aekit.load(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


@pytest.mark.parametrize(
    "image_shape, channels", [((1, 8, 8), (3,)), ((3, 16, 12), (4, 6)), ((2, 8, 16), (5, 7, 9))]
)
def test_conv_takes_any_channel_count_and_image_size_the_strides_divide(image_shape, channels):
    d = int(np.prod(image_shape))
    model = build_model("conv", d, image_shape=image_shape, channels=channels, hidden=(10,))
    x = torch.rand(3, d)
    assert model.encode(x).shape == (3, 16)
    out = model.reconstruct(x)
    assert out.shape == (3, d) and ((out >= 0) & (out <= 1)).all()  # sigmoid output
    n = len(channels)
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * n
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.decoder) == n


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"image_shape": (1, 6, 6)}, "divisible by 4"),
        ({"image_shape": None}, "needs image data"),
        ({"image_shape": (1, 8, 9)}, "C * H * W"),
        ({"channels": ()}, "at least one"),
    ],
)
def test_conv_settings_are_validated(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("*", r"\*")):
        build_model("conv", 36 if kwargs.get("image_shape") == (1, 6, 6) else 64, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, fragment",
    [
        ("dense", {"sparse_weight": 1.0}, "activations in \\(0, 1\\)"),
        ("vae", {"sparse_weight": 1.0, "latent_activation": "sigmoid"}, "deterministic"),
        ("dense", {"beta": 4.0}, "applies to a gaussian latent"),
        ("dense", {"iwae_samples": 5}, "applies to a gaussian latent"),
        ("vae", {"loss": "ssim", "image_shape": (1, 8, 8)}, "needs a likelihood"),
        ("vae", {"free_bits": 0.5, "iwae_samples": 5}, "free_bits"),
        ("dense", {"noise": "speckle:1"}, "unknown noise"),
        ("dense", {"blindspot": 0.1}, "image_shape"),
        ("dncnn", {"image_shape": (1, 8, 8), "output_activation": "sigmoid"}, "identity"),
        ("dense", {"loss": "ssim"}, "image_shape"),
        ("dense", {"sparse_target": 1.5, "latent_activation": "sigmoid"}, "\\(0, 1\\)"),
        ("dense", {"contractive_weight": -1.0}, ">= 0"),
        ("dense", {"latent": "uniform"}, "unknown latent kind"),
    ],
)
def test_family_settings_are_validated(name, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_model(name, 64, **kwargs)


def test_parts_combine_without_a_new_class():
    """A denoising convolutional VAE with an L1 code penalty is a config, not a class."""
    model = make("conv", latent="gaussian", loss="bce", noise="mask:0.25", l1_weight=0.01)
    assert type(model) is type(make("conv"))
    terms = model.loss(torch.rand(8, 64))
    assert {"loss", "recon", "kl", "l1"} <= set(terms)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"] + terms["l1"])


def test_a_safetensors_header_that_starts_like_a_pickle_still_loads(tmp_path):
    """A 384-byte header begins with 0x80, a pickle's first byte: it is still safetensors."""
    from aekit.io.checkpoint import read_tensors, save_tensors

    tensors = {"w": torch.arange(3.0)}
    for pad in range(600):
        path = tmp_path / f"t{pad}.safetensors"
        save_tensors(path, tensors, {"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header starting with 0x80")
    loaded, meta = read_tensors(path)
    assert torch.equal(loaded["w"], tensors["w"]) and meta["pad"] == "x" * pad


def test_ssim_is_a_trainable_loss_for_image_models(digits01):
    model = make("conv", loss="ssim")
    x = torch.from_numpy(digits01[:8])
    loss = model.loss(x)["loss"]
    assert 0 < float(loss.detach()) < 2
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
