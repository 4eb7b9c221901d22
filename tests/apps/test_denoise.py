"""Denoising: the blind-spot objective, aekit.denoise / aekit denoise, noise kinds and warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.data.noise import Noise, corrupt
from aekit.errors import ConfigError
from aekit.nn import build_model
from aekit.nn.base import eval_generator

TINY = {"width": 8, "depth": 3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One epoch on 300 digits (0-16 values): a dncnn with Gaussian noise, a plain dense."""
    root = tmp_path_factory.mktemp("denoise")
    dn = aekit.train("digits", out=root / "dn", model="dncnn", limit=300, epochs=1,
                     model_options={**TINY, "noise": "gaussian:0.1"})  # fmt: skip
    plain = aekit.train("digits", out=root / "plain", limit=300, epochs=1,
                        model_options={"hidden": (16,), "latent_dim": 4})  # fmt: skip
    return {"dncnn": dn.out, "plain": plain.out}


@pytest.mark.parametrize("name, kw", [("blindspot", TINY), ("dense", {"blindspot": 0.1})])
def test_blind_spot_loss_touches_only_masked_pixels(name, kw, digits01):
    """d loss / d x_hat is exactly 0 at unmasked pixels and nonzero at masked ones, and a
    masked pixel's input does not depend on its own value (J-invariance)."""
    torch.manual_seed(0)
    model = build_model(name, 64, image_shape=(1, 8, 8), **kw).eval()
    x = torch.from_numpy(digits01[:6]).requires_grad_(True)
    record = model(x)  # eval mode: the mask comes from the fixed eval generator
    _, mask = model.corruption(x.detach(), eval_generator())
    assert 0 < mask.sum() < mask.numel()
    grad = torch.autograd.grad(record["loss"], record["x_hat"], retain_graph=True)[0]
    assert torch.all(grad[mask == 0] == 0)
    assert torch.all(grad[mask == 1] != 0)
    x_tilde, _ = model.corruption(x, eval_generator())
    jac = torch.autograd.grad(x_tilde.sum(), x)[0]
    assert torch.all(jac[mask == 1] == 0)  # no masked value reaches the input anywhere


def test_noise_kinds_levels_as_fractions_and_ranges():
    assert Noise.parse("gaussian:25/255").level == pytest.approx(25 / 255)
    X = np.full((2000, 16), 0.5, np.float32)
    shot = corrupt(X, "poisson:20")
    assert np.allclose(shot * 20, np.round(shot * 20), atol=1e-4)  # counts / peak
    assert shot.mean() == pytest.approx(0.5, abs=0.01)
    assert shot.var() == pytest.approx(0.5 / 20, rel=0.1)  # Poisson: var = mean / peak
    spread = (corrupt(X, "gaussian:0.01-0.3") - X).std(axis=1)  # one level per sample
    assert spread.min() < 0.05 and spread.max() > 0.25
    assert str(Noise.parse("gaussian:0.01-0.3")) == "gaussian:0.01-0.3"
    for bad, fragment in (("gaussian:0.3-0.1", "backwards"), ("poisson:0", "peak"),
                          ("mask:0.2-1.5", "probability")):  # fmt: skip
        with pytest.raises(ConfigError, match=fragment):
            Noise.parse(bad)


def test_denoise_keeps_shape_units_and_takes_any_size_for_dncnn(runs, digits01):
    X = (digits01[:5] * 16).reshape(5, 8, 8)  # the run's units: 0-16
    out = aekit.denoise(runs["dncnn"], X)
    assert out.shape == (5, 8, 8) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 16 and out.max() > 4  # clipped, in 0-16
    rows = aekit.denoise(runs["dncnn"], X.reshape(5, 64))
    np.testing.assert_allclose(rows.reshape(5, 8, 8), out, atol=1e-5)
    big = np.random.default_rng(0).uniform(0, 16, (3, 12, 10)).astype(np.float32)
    model = aekit.load(runs["dncnn"])
    out = aekit.denoise(model, big)  # a size it was not trained on, each image at its own
    assert out.shape == (3, 12, 10)
    np.testing.assert_allclose(aekit.denoise(model, big[1:2])[0], out[1], atol=1e-5)


def test_cli_folder_in_folder_out_keeps_names_and_sizes(runs, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = {"a.png": (8, 8), "sub/b.png": (12, 10), "c.jpg": (8, 8)}
    for name, (h, w) in sizes.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 17, (h, w), dtype=np.uint8)).save(tmp_path / "in" / name)
    # the run is of 0-16 values: the 8-bit files are used as they are
    code = main(["denoise", str(runs["dncnn"]), "--data", str(tmp_path / "in"), "--out",
                 str(tmp_path / "out"), "--units", "as-is"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in
                     (tmp_path / "out").rglob("*.png"))  # fmt: skip
    assert written == ["a.png", "c.png", "sub/b.png"]
    assert Image.open(tmp_path / "out" / "sub/b.png").size == (10, 12)  # (W, H) kept


def test_cli_npy_in_npy_out_same_shape(runs, tmp_path, digits01):
    X = (digits01[:4] * 16).reshape(4, 8, 8)
    np.save(tmp_path / "noisy.npy", X)
    assert main(["denoise", str(runs["plain"]), "--data", str(tmp_path / "noisy.npy"),
                 "--out", str(tmp_path / "clean.npy")]) == 0  # fmt: skip
    out = np.load(tmp_path / "clean.npy")
    assert out.shape == (4, 8, 8) and 0 <= out.min() and out.max() <= 16


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--data", "{tmp}/missing.npy", "--out", "{tmp}/o.npy"], "no such data file"),
        (["--data", "{tmp}/wide.npy", "--out", "{tmp}/o.npy"], "features but the model"),
        (["--data", "{tmp}/wide.npy", "--out", "{tmp}/o.npy", "--noise", "blur:1"], "unknown"),
        (["--data", "{tmp}/wide.npy", "--out", "{tmp}/o.txt"], "use a .npy or .csv"),
        (["--out", "{tmp}/o.npy"], "--data is required"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, argv, fragment):
    np.save(tmp_path / "wide.npy", np.zeros((3, 65), np.float32))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["denoise", str(runs["dncnn"]), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aekit: error:") and fragment in err[0], err


def test_noise_of_another_kind_and_a_model_without_noise_warn_in_one_line(
    runs, tmp_path, capsys, digits01
):
    np.save(tmp_path / "x.npy", digits01[:3] * 16)
    base = ["--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy")]
    assert main(["denoise", str(runs["dncnn"]), *base, "--noise", "poisson:30"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aekit: warning:") and "poisson" in err[0], err
    assert main(["denoise", str(runs["dncnn"]), *base, "--noise", "gaussian:0.1"]) == 0
    assert capsys.readouterr().err == ""  # the kind it was trained on: nothing to say
    assert main(["denoise", str(runs["plain"]), *base]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without input noise" in err[0], err
    with warnings.catch_warnings(record=True) as caught:  # the same from Python
        warnings.simplefilter("always")
        aekit.denoise(runs["dncnn"], digits01[:2] * 16, noise="salt-pepper:0.1")
    assert len(caught) == 1 and "salt-pepper" in str(caught[0].message)


def test_blindspot_is_not_residual_and_dncnn_is():
    """With the last layer at zero, dncnn returns its input (x - 0) and blindspot returns 0:
    a residual blind-spot model would add the unseen pixel's noise back when denoising."""
    x = torch.rand(2, 64)
    for name, same in (("dncnn", True), ("blindspot", False)):
        model = build_model(name, 64, image_shape=(1, 8, 8), **TINY).eval()
        with torch.no_grad():
            model.layers[-1].weight.zero_()
            model.layers[-1].bias.zero_()
            out = model.reconstruct(x)
        assert torch.equal(out, x) if same else torch.equal(out, torch.zeros_like(x))


def test_shrink_keeps_an_estimate_within_the_noise_and_trusts_the_input_beyond_it():
    from aekit.apps.denoise import shrink_to_input

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 64, 64, generator=g)
    sigma = 0.1
    y = x + sigma * torch.randn(x.shape, generator=g)
    noise = Noise.parse(f"gaussian:{sigma}")
    good = shrink_to_input(x, y, noise)  # the estimate is the clean image: keep it
    assert (good - x).pow(2).mean() < 0.1 * (y - x).pow(2).mean()
    off = x + 0.5  # an estimate far off: the output moves most of the way to the input
    bad = shrink_to_input(off, y, noise)
    assert (bad - x).pow(2).mean() < 0.1 * (off - x).pow(2).mean()
    shot = shrink_to_input(x, y, Noise.parse("poisson:30"))
    assert torch.isfinite(shot).all()


def test_shrink_refuses_in_one_line_without_blindspot_or_noise(runs, tmp_path, capsys, digits01):
    X = (digits01[:3] * 16).reshape(3, 8, 8)
    with pytest.raises(ConfigError, match="blind spot"):
        aekit.denoise(runs["dncnn"], X, noise="gaussian:0.1", shrink=True)
    model = build_model("blindspot", 64, image_shape=(1, 8, 8), **TINY)
    with pytest.raises(ConfigError, match="Gaussian or Poisson"):
        aekit.denoise(model, X / 16, units="as-is", shrink=True)
    out = aekit.denoise(model, X / 16, units="as-is", noise="gaussian:0.1", shrink=True)
    assert out.shape == (3, 8, 8)
    np.save(tmp_path / "x.npy", X)
    argv = ["denoise", str(runs["dncnn"]), "--data", str(tmp_path / "x.npy"), "--out",
            str(tmp_path / "o.npy"), "--noise", "gaussian:0.1", "--shrink"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "blind spot" in err[0], err
