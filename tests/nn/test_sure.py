"""SURE / PURE training (aekit.nn.sure): the estimate against a hand computation, its
expectation against the supervised squared error, its gradient, the wiring and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.apps.denoise import noise_warning
from aekit.cli import main
from aekit.data.noise import Noise
from aekit.errors import ConfigError
from aekit.nn import build_model
from aekit.nn.base import eval_generator
from aekit.nn.sure import risk_estimate

TINY = {"width": 8, "depth": 3}


def _linear(A: torch.Tensor):
    return lambda y: y @ A.T  # (N, D) @ (D, D) -> (N, D)


@pytest.mark.parametrize("noise", ["gaussian:0.2", "poisson:12"])
def test_risk_estimate_matches_a_hand_computation(noise):
    """For a linear f(y) = A y the finite difference is exact: 0.5 (||y - A y||^2 - sum v +
    2 sum_i v_i b_i (A b)_i), v = sigma^2 or y / PEAK, computed here in NumPy."""
    rng = np.random.default_rng(0)
    D = 5
    A = rng.normal(size=(D, D)) * 0.3 + np.eye(D) * 0.5
    y = np.abs(rng.normal(0.5, 0.3, size=(3, D)))
    b = rng.normal(size=(3, D))
    n = Noise.parse(noise)
    v = np.full_like(y, n.level**2) if n.kind == "gaussian" else y / n.level
    f = y @ A.T
    hand = 0.5 * (((y - f) ** 2).sum(1) - v.sum(1) + 2 * (v * b * (b @ A.T)).sum(1))
    t = {k: torch.tensor(a) for k, a in (("A", A), ("y", y), ("b", b))}
    got, f_y = risk_estimate(_linear(t["A"]), t["y"], n, t["b"], 1e-3, reduction="none")
    np.testing.assert_allclose(got.numpy(), hand, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(f_y.numpy(), f)
    mean, _ = risk_estimate(_linear(t["A"]), t["y"], n, t["b"], 1e-3)
    assert float(mean) == pytest.approx(hand.mean())


@pytest.mark.parametrize("noise", ["gaussian:0.3", "poisson:8"])
def test_expectation_is_the_supervised_squared_error(noise):
    """Over many draws of the noise and of the probe, the mean SURE (PURE) of a tiny linear
    denoiser equals its mean squared error to the clean x within 4 standard errors, while
    the plain noisy residual ||y - f(y)||^2 misses it by far more."""
    g = torch.Generator().manual_seed(0)
    D, N = 4, 400_000
    A = torch.tensor([[0.6, 0.2, 0.0, 0.1], [0.1, 0.5, 0.2, 0.0],
                      [0.0, 0.3, 0.7, 0.1], [0.2, 0.0, 0.1, 0.4]], dtype=torch.float64)  # fmt: skip
    x = torch.tensor([0.2, 0.9, 0.5, 0.7], dtype=torch.float64).expand(N, D)
    n = Noise.parse(noise)
    y = n(x, g)
    b = torch.randn(x.shape, generator=g, dtype=x.dtype)
    sure, f_y = risk_estimate(_linear(A), y, n, b, 1e-4, reduction="none")
    supervised = 0.5 * (f_y - x).pow(2).sum(1)
    diff = sure - supervised
    se = float(diff.std()) / N**0.5
    assert abs(float(diff.mean())) < 4 * se
    naive = 0.5 * (y - f_y).pow(2).sum(1) - supervised
    assert abs(float(naive.mean())) > 10 * se


def test_gradient_matches_finite_differences():
    """autograd through the estimate (both passes of a small nonlinear denoiser) agrees
    with finite differences in float64 (torch.autograd.gradcheck)."""
    g = torch.Generator().manual_seed(1)
    y = torch.rand(3, 6, generator=g, dtype=torch.float64)
    b = torch.randn(3, 6, generator=g, dtype=torch.float64)
    W = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    V = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    for noise in (Noise.parse("gaussian:0.1"), Noise.parse("poisson:20")):

        def loss(W, V, noise=noise):
            fn = lambda t: t - torch.tanh(t @ W) @ V  # noqa: E731 - a residual denoiser
            return risk_estimate(fn, y, noise, b, 1e-3)[0]

        assert torch.autograd.gradcheck(loss, (W, V))


def test_dncnn_with_sure_scores_itself_by_the_estimate_and_saves(tmp_path, digits01):
    """The model's loss is risk_estimate of its own denoiser with the eval generator's probe,
    nothing is added to the input, gradients reach every weight, and it saves and loads."""
    torch.manual_seed(0)
    model = build_model("dncnn", 64, image_shape=(1, 8, 8), sure="gaussian:0.1", **TINY)
    assert model.config.noise is None and str(model.config.data_noise) == "gaussian:0.1"
    y = torch.from_numpy(digits01[:6])
    model.eval()
    b = torch.randn(y.shape, generator=eval_generator())
    eps = model.corruption.step * 0.1
    want, _ = risk_estimate(model.reconstruct, y, Noise.parse("gaussian:0.1"), b, eps)
    record = model(y)
    assert float(record["loss"].detach()) == pytest.approx(float(want), rel=1e-5)
    torch.testing.assert_close(record["x_hat"], model.reconstruct(y))
    model.train()
    model(y)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    aekit.save(model, tmp_path / "m")
    back = aekit.load(tmp_path / "m").eval()
    assert back.config.to_dict() == model.config.to_dict()
    torch.testing.assert_close(back(y)["loss"], record["loss"])


def test_sure_training_on_noisy_digits_alone_removes_noise():
    """A few hundred steps of SURE on noisy 8x8 digits alone bring the output closer to the
    unseen clean digits than the noisy input is."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x = torch.from_numpy((load_digits().data / 16.0).astype(np.float32))
    y = x + 0.2 * torch.randn(x.shape)
    model = build_model("dncnn", 64, image_shape=(1, 8, 8), sure="gaussian:0.2", **TINY)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(300):
        idx = torch.randint(0, len(y), (64,))
        loss = model(y[idx])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model.reconstruct(y)
    assert (out - x).pow(2).mean() < 0.6 * (y - x).pow(2).mean()


@pytest.mark.parametrize("noise, fragment", [("mask:0.2", "blindspot"),
                                             ("salt-pepper:0.1", "blindspot"),
                                             ("gaussian:0.05-0.2", "one noise level"),
                                             ("gaussian:0.1:clip", "unclipped")])  # fmt: skip
def test_refuses_noise_it_cannot_handle_pointing_at_blindspot(noise, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_model("dncnn", 64, image_shape=(1, 8, 8), sure=noise)
    with pytest.raises(ConfigError, match="dncnn"):
        build_model("conv", 64, image_shape=(1, 8, 8), sure="gaussian:0.1")
    with pytest.raises(ConfigError, match="one input corruption"):
        build_model("dncnn", 64, image_shape=(1, 8, 8), sure="gaussian:0.1", noise="gaussian:0.1")


@pytest.mark.parametrize("extra, fragment", [([], "needs the noise your data hold"),
                                             (["--noise", "mask:0.3"], "blindspot")])  # fmt: skip
def test_cli_refuses_in_one_line(tmp_path, capsys, extra, fragment):
    argv = ["train", "--data", "digits", "--limit", "100", "--epochs", "1", "--model", "dncnn",
            "--self-supervised", "sure", "--out", str(tmp_path / "r"), *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_cli_trains_from_noisy_data_and_warns_on_another_noise(tmp_path, capsys):
    argv = ["train", "--data", "digits", "--limit", "200", "--epochs", "1", "--model", "dncnn",
            "--self-supervised", "sure", "--noise", "gaussian:0.1", "--out", str(tmp_path / "r"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    model = aekit.load(tmp_path / "r")
    assert str(model.config.data_noise) == "gaussian:0.1" and model.config.noise is None
    assert noise_warning(model, "gaussian:0.1") is None
    assert "poisson" in noise_warning(model, "poisson:30")
