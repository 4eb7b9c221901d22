"""Generation: the Frechet distance, the code density, seeded sampling and interpolation, and
``aekit sample / interpolate / fit-density``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.mixture import GaussianMixture

import aekit
from aekit.apps import generation
from aekit.apps.density import CodeDensity, density_path
from aekit.cli import main
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.functional.frechet import frechet_distance, frechet_distance_features
from aekit.nn import build_model

# ---- the Frechet distance -------------------------------------------------------------------


def _spd(rng, d: int) -> np.ndarray:
    A = rng.standard_normal((d, d))
    return A @ A.T + 0.1 * np.eye(d)


def test_frechet_distance_of_one_dimensional_gaussians_is_the_closed_form():
    """In 1-D, W2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2."""
    for m1, s1, m2, s2 in [(0.0, 1.0, 3.0, 2.0), (-1.5, 0.3, 0.5, 0.3), (2.0, 4.0, 2.0, 0.5)]:
        got = frechet_distance([m1], [[s1**2]], [m2], [[s2**2]])
        assert got == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12, abs=1e-12)


def test_frechet_distance_of_commuting_covariances_is_the_closed_form():
    """S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T: FD = |dmu|^2 + sum (sqrt a - sqrt b)^2."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, Q @ np.diag(a) @ Q.T, mu2, Q @ np.diag(b) @ Q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(1)
    for d in (2, 5, 8):
        s1, s2 = _spd(rng, d), _spd(rng, d)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        cross = scipy.linalg.sqrtm(s1 @ s2).real
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * cross)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
        # symmetric in its two Gaussians, although S1 S2 is not symmetric
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_feature_sets():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((500, 4))
    assert frechet_distance_features(a, a) == pytest.approx(0.0, abs=1e-9)
    shifted = frechet_distance_features(a, a + np.array([1.0, 0, 0, 2.0]))
    assert shifted == pytest.approx(5.0, rel=1e-9)  # a shift moves only the mean term
    with pytest.raises(DataError, match="share a dimension"):
        frechet_distance_features(a, a[:, :3])
    with pytest.raises(DataError, match="N >= 2"):
        frechet_distance_features(a[:1], a)


# ---- the code density -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixture_codes() -> np.ndarray:
    """Codes of two well-separated Gaussians in 3-D, 70% / 30%."""
    rng = np.random.default_rng(0)
    a = rng.multivariate_normal([4, 0, 0], np.diag([1.0, 0.5, 0.2]), 1400)
    b = rng.multivariate_normal([-4, 1, 0], [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]], 600)
    return np.concatenate([a, b])


def test_density_recovers_a_mixture_and_samples_it(mixture_codes):
    density = CodeDensity.fit(mixture_codes, 2, seed=0)
    order = np.argsort(-density.weights)
    np.testing.assert_allclose(density.weights[order], [0.7, 0.3], atol=0.01)
    np.testing.assert_allclose(density.means[order], [[4, 0, 0], [-4, 1, 0]], atol=0.1)
    Z = density.sample(20_000, seed=3)
    np.testing.assert_allclose(Z.mean(0), mixture_codes.mean(0), atol=0.1)
    np.testing.assert_allclose(np.cov(Z.T), np.cov(mixture_codes.T), atol=0.25)


@pytest.mark.parametrize("kind", ["full", "diag", "tied", "spherical"])
def test_density_log_density_matches_scikit_learn(mixture_codes, kind):
    """Every covariance type, expanded to full matrices, is the same density as sklearn's."""
    gm = GaussianMixture(3, covariance_type=kind, random_state=0).fit(mixture_codes)
    density = CodeDensity.fit(mixture_codes, 3, covariance_type=kind, seed=0)
    np.testing.assert_allclose(
        density.log_density(mixture_codes[:50]), gm.score_samples(mixture_codes[:50]), rtol=1e-6
    )


def test_density_sampling_is_seeded(mixture_codes):
    density = CodeDensity.fit(mixture_codes, 2, seed=0)
    np.testing.assert_array_equal(density.sample(100, seed=5), density.sample(100, seed=5))
    assert not np.allclose(density.sample(100, seed=5), density.sample(100, seed=6))


def test_density_saved_and_loaded_without_pickle(mixture_codes, tmp_path, monkeypatch):
    density = CodeDensity.fit(mixture_codes, 2, seed=0)
    path = density.save(tmp_path / "density.safetensors")
    monkeypatch.setattr(pickle, "loads", _no_pickle)  # loading must never unpickle
    monkeypatch.setattr(pickle, "load", _no_pickle)
    back = CodeDensity.load(path)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(back, name), getattr(density, name))
    assert back.info == density.info
    np.testing.assert_array_equal(back.sample(50, seed=1), density.sample(50, seed=1))


def _no_pickle(*args, **kwargs):
    raise AssertionError("unpickling was attempted")


def test_density_refuses_a_pickle_and_bad_input(mixture_codes, tmp_path):
    bad = tmp_path / "density.safetensors"
    bad.write_bytes(pickle.dumps({"weights": [1.0]}))
    with pytest.raises(ModelFileError, match="pickle"):
        CodeDensity.load(bad)
    with pytest.raises(ConfigError, match="covariance type"):
        CodeDensity.fit(mixture_codes, 2, covariance_type="banded")
    with pytest.raises(ConfigError, match="at least that many codes"):
        CodeDensity.fit(mixture_codes[:3], 5)
    with pytest.raises(DataError, match="finite"):
        CodeDensity.fit(np.full((10, 2), np.nan), 2)


# ---- sampling and interpolation of models ----------------------------------------------------


def _vae(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("vae", 64, hidden=(16,), latent_dim=3)


def test_prior_sampling_is_seeded():
    model = _vae()
    s = generation.sample(model, 8, seed=4)
    np.testing.assert_array_equal(s, generation.sample(model, 8, seed=4))
    assert not np.allclose(s, generation.sample(model, 8, seed=5))


def test_deterministic_model_samples_its_density(digits01):
    torch.manual_seed(0)
    model = build_model("dense", 64, hidden=(16,), latent_dim=3)
    density = CodeDensity.fit(model.encode_scaled(digits01), 4, seed=0)
    s = generation.sample(model, 8, seed=2, density=density)
    expected = model.decode_scaled(density.sample(8, seed=2).astype(np.float32))
    np.testing.assert_array_equal(s, expected)
    np.testing.assert_array_equal(s, generation.sample(model, 8, seed=2, density=density))
    with pytest.raises(ConfigError, match="fit a density on its codes"):
        generation.sample(model, 8)
    wrong = CodeDensity.fit(np.random.default_rng(0).standard_normal((50, 2)), 1)
    with pytest.raises(ConfigError, match="2-dimensional codes"):
        generation.sample(model, 8, density=wrong)


def test_spherical_path_keeps_the_norm_and_hits_both_ends():
    za, zb = np.array([3.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0])
    path = generation.code_path(za, zb, 7, "spherical")
    np.testing.assert_allclose(path[[0, -1]], [za, zb], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)  # the chord dips to 2.12
    linear = generation.code_path(za, zb, 7, "linear")
    np.testing.assert_allclose(linear[3], (za + zb) / 2)
    # parallel codes have no plane to turn in: the chord
    np.testing.assert_allclose(generation.code_path(za, 2 * za, 3, "spherical")[1], 1.5 * za)


def test_interpolation_is_spherical_for_a_gaussian_latent(digits01):
    model = _vae()
    za, zb = model.encode_scaled(digits01[:2])
    expected = model.decode_scaled(generation.code_path(za, zb, 5, "spherical").astype("f4"))
    np.testing.assert_allclose(generation.interpolate(model, digits01[0], digits01[1], 5), expected)
    with pytest.raises(ConfigError, match="unknown interpolation"):
        generation.interpolate(model, digits01[0], digits01[1], 5, method="cubic")


# ---- saved runs and the CLI -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "ae"
    aekit.train("digits", out=out, epochs=1, model_options={"hidden": (16,), "latent_dim": 3})
    return out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("aekit: error:")
    return err


def test_sampling_a_deterministic_run_without_a_density_is_one_clear_line(tmp_path, capsys):
    out = tmp_path / "ae"
    aekit.train("digits", out=out, epochs=1, model_options={"hidden": (8,), "latent_dim": 2})
    capsys.readouterr()
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 2
    line = _error_line(capsys)
    assert "deterministic" in line and f"aekit fit-density {out}" in line
    assert not (tmp_path / "s.png").exists()


def test_fit_density_then_sample_repeats_exactly(ae_run, tmp_path, capsys):
    assert main(["fit-density", str(ae_run), "--components", "3"]) == 0
    assert density_path(ae_run).is_file()
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for path in (a, b):
        assert main(["sample", str(ae_run), "--n", "12", "--seed", "3", "--out", str(path)]) == 0
    np.testing.assert_array_equal(np.load(a), np.load(b))
    model = aekit.load(ae_run)
    scaled, _ = generation.sample_run(ae_run, 12, seed=3)
    np.testing.assert_allclose(np.load(a), model.scaler.inverse_transform(scaled), rtol=1e-6)
    assert main(["sample", str(ae_run), "--n", "10", "--out", str(tmp_path / "s.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "s.png").size == (4 * 10 + 2, 3 * 10 + 2)  # 4 x 3 tiles of 8+2


def test_interpolate_writes_one_row_per_pair(ae_run, tmp_path, capsys):
    out = tmp_path / "paths.npy"
    argv = ["interpolate", str(ae_run), "--pairs", "2", "--steps", "5", "--out", str(out)]
    assert main(argv) == 0
    assert np.load(out).shape == (10, 64)
    assert main([*argv[:-2], "--out", str(tmp_path / "p.gif")]) == 2
    assert "use a .png, .npy or .csv" in _error_line(capsys)


def test_a_density_of_other_weights_is_refused(tmp_path, capsys):
    out = tmp_path / "ae"
    aekit.train("digits", out=out, epochs=1, model_options={"hidden": (8,), "latent_dim": 2})
    generation.fit_density(out, n_components=2)
    aekit.train("digits", out=out, epochs=2, resume=True)  # trained further: other weights
    capsys.readouterr()
    assert main(["sample", str(out), "--out", str(tmp_path / "s.npy")]) == 2
    assert "fit it again" in _error_line(capsys)


def test_commands_have_help_with_an_example(capsys):
    for cmd in ("sample", "interpolate", "fit-density"):
        assert main([cmd, "--help"]) == 0
        assert f"aekit {cmd} runs/" in capsys.readouterr().out


def test_a_density_fits_the_runs_training_rows_only(tmp_path):
    """Without data, the density sees the rows the run trained on, not its validation rows."""
    from aekit.data import load_dataset, train_val_split

    out = tmp_path / "ae"
    aekit.train(
        "digits", out=out, epochs=1, seed=3, model_options={"hidden": (8,), "latent_dim": 2}
    )
    density, _ = generation.fit_density(out, n_components=2)
    X = load_dataset("digits").X
    X_train, X_val = train_val_split(X, 0.1, 3)
    assert density.info["n_codes"] == len(X_train) < len(X)
    model = aekit.load(out)
    expected = CodeDensity.fit(model.encode_numpy(X_train), 2, seed=0)
    np.testing.assert_allclose(density.means, expected.means, rtol=1e-6, atol=1e-9)
