"""AutoencoderTransformer: scikit-learn's estimator checks, then behaviour on real digits."""

from __future__ import annotations

import functools
import pickle
from dataclasses import fields

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.nn import MODELS, model_spec
from aekit.sklearn import AutoencoderTransformer


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: on 2 busy cores, intra-op threads cost more than they save."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """All 1797 scikit-learn digits scaled to [0, 1], float64 (1797, 64)."""
    return load_digits().data / 16.0


def _check_function(check):
    while isinstance(check, functools.partial):
        check = check.func
    return check


@parametrize_with_checks(
    [
        AutoencoderTransformer(max_iter=5, random_state=0),
        AutoencoderTransformer(model="linear", max_iter=5, random_state=0),
        AutoencoderTransformer(model="tied", latent_dim=3, max_iter=5, random_state=0),
        AutoencoderTransformer(model="denoising", max_iter=5, random_state=0),
        AutoencoderTransformer(model="contractive", max_iter=5, random_state=0),
        AutoencoderTransformer(model="vae", loss="mse", max_iter=5, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    if _check_function(check).__name__ == "check_array_api_input":
        # This check runs with NumPy inputs only (the estimator declares no array API
        # support); sklearn refuses array_api_dispatch unless SCIPY_ARRAY_API=1, which only
        # matters for non-NumPy arrays reaching SciPy. Set it so the check runs, not skips.
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_fit_transform_shape_dtype_and_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits[:200], columns=[f"px{i}" for i in range(64)])
    est = AutoencoderTransformer(latent_dim=3, max_iter=5, random_state=0)
    Z = est.fit_transform(X)
    assert Z.shape == (200, 3) and Z.dtype == np.float64
    assert est.n_features_in_ == 64
    assert list(est.feature_names_in_) == list(X.columns)
    names = est.get_feature_names_out()
    assert list(names) == [
        "autoencodertransformer0",
        "autoencodertransformer1",
        "autoencodertransformer2",
    ]
    assert est.transform(X.astype(np.float32)).dtype == np.float32
    assert est.inverse_transform(Z).shape == (200, 64)
    assert est.n_iter_ == 5 and len(est.loss_curve_) == 5 and est.validation_scores_ is None


def test_float64_transform_agrees_with_float32(digits):
    est = AutoencoderTransformer(latent_dim=4, max_iter=5, random_state=0).fit(digits[:300])
    Z64 = est.transform(digits[:300])
    Z32 = est.transform(digits[:300].astype(np.float32))
    np.testing.assert_allclose(Z64, Z32, rtol=1e-4, atol=1e-5)


def test_dense_reconstructs_digits_better_than_pca(digits):
    X = digits
    pca = PCA(2).fit(X)
    pca2_mse = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)  # about 0.052
    est = AutoencoderTransformer(latent_dim=16, max_iter=100, random_state=0).fit(X)
    mse = np.mean((est.inverse_transform(est.transform(X)) - X) ** 2)  # about 0.008
    assert mse < 0.015
    assert mse < pca2_mse / 3
    assert est.score(X) == pytest.approx(-mse, rel=1e-6)
    assert est.loss_curve_[-1] < est.loss_curve_[0] / 2


def test_linear_model_score_approaches_pca(digits):
    """A linear AE's optimum spans the top principal subspace: its error tends to PCA's."""
    X, k = digits, 4
    pca = PCA(k).fit(X)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    est = AutoencoderTransformer(
        model="linear",
        latent_dim=k,
        max_iter=150,
        learning_rate_init=0.01,
        batch_size=100,
        random_state=0,
    ).fit(X)
    assert est.model_.config.output_activation == "identity"  # linear all the way through
    ae_mse = -est.score(X)  # within 0.3 % of PCA's over seeds 0-5
    assert ae_mse >= pca_mse * (1 - 1e-4), "no rank-k linear map beats PCA on its own data"
    assert ae_mse == pytest.approx(pca_mse, rel=0.02)


def test_early_stopping_stops_and_keeps_the_best_epoch(digits):
    X = digits[:300]  # small enough that the validation loss bottoms out (epoch 50-150)
    params = dict(
        latent_dim=16,
        learning_rate_init=0.01,
        early_stopping=True,
        validation_fraction=0.2,
        random_state=0,
    )
    est = AutoencoderTransformer(max_iter=1000, n_iter_no_change=5, **params).fit(X)
    scores = est.validation_scores_
    assert est.n_iter_ < 1000
    assert len(scores) == len(est.loss_curve_) == est.n_iter_
    best_epoch = int(np.argmin(scores)) + 1
    assert est.n_iter_ == best_epoch + 5
    assert est.best_validation_loss_ == min(scores)
    # same seed -> same split and trajectory: a run that ends at the best epoch holds its weights
    short = AutoencoderTransformer(max_iter=best_epoch, n_iter_no_change=1000, **params).fit(X)
    assert short.n_iter_ == best_epoch
    np.testing.assert_array_equal(est.transform(X), short.transform(X))


def test_random_state_makes_fits_repeatable(digits):
    X = digits[:300]
    torch_rng = torch.random.get_rng_state()
    make = lambda seed: AutoencoderTransformer(latent_dim=4, max_iter=10, random_state=seed)  # noqa: E731
    Z = make(0).fit_transform(X)
    np.testing.assert_array_equal(make(0).fit_transform(X), Z)
    assert not np.allclose(make(1).fit_transform(X), Z, atol=1e-3)
    assert torch.equal(torch.random.get_rng_state(), torch_rng), "global torch RNG untouched"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"solver": "lbfgs"}, "solver must be one of .*adam.*got 'lbfgs'"),
        ({"activation": "swish"}, "activation must be one of .* got 'swish'"),
        ({"batch_size": 0}, "batch_size must be a positive int or 'auto', got 0"),
        ({"batch_size": "big"}, "batch_size must be a positive int or 'auto'"),
        ({"model": "nope"}, "model must be one of .*dense.*got 'nope'"),
        ({"latent_dim": 0}, "latent_dim must be a positive int"),
        ({"hidden_layer_sizes": (64, 0)}, "hidden_layer_sizes must be"),
        ({"learning_rate_init": -1.0}, "learning_rate_init must be a positive number"),
        ({"max_iter": 2.5}, "max_iter must be a positive int"),
        ({"loss": "huber"}, "loss must be one of mse, mae, bce"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)"),
        ({"validation_fraction": 0.0, "early_stopping": True}, "give it > 0"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be a positive int"),
        ({"early_stopping": "yes"}, "early_stopping must be True or False"),
    ],
)
def test_bad_params_raise_value_error_at_fit(digits, params, message):
    est = AutoencoderTransformer(**{"max_iter": 2, **params})  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        est.fit(digits[:50])


def test_bad_data_raise_value_error(digits):
    with pytest.raises(ValueError, match="bce"):
        AutoencoderTransformer(loss="bce", max_iter=1).fit(digits[:50] * 2 - 1)
    est = AutoencoderTransformer(latent_dim=3, max_iter=1).fit(digits[:50])
    with pytest.raises(ValueError, match="latent_dim=3"):
        est.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="64 features"):
        est.transform(digits[:5, :10])


def test_pipeline_with_standard_scaler(digits):
    X = digits[:500]
    pipe = make_pipeline(
        StandardScaler(), AutoencoderTransformer(latent_dim=8, max_iter=30, random_state=0)
    )
    Z = pipe.fit_transform(X)
    assert Z.shape == (500, 8)
    assert pipe.get_feature_names_out()[0] == "autoencodertransformer0"
    Xs = pipe[0].transform(X)
    # standardised data are not in [0, 1], so the output layer is linear; the score must beat
    # predicting the mean (whose per-element MSE is the mean variance of Xs)
    assert pipe[-1].model_.config.output_activation == "identity"
    assert pipe.score(X) > -0.6 * np.mean(Xs**2)


def test_grid_search_uses_score(digits):
    X = digits[:400]
    search = GridSearchCV(
        AutoencoderTransformer(max_iter=30, learning_rate_init=0.01, random_state=0),
        {"latent_dim": [1, 8]},
        cv=2,
    ).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0)
    assert search.best_params_ == {"latent_dim": 8}
    assert search.best_estimator_.transform(X).shape == (400, 8)


def test_pickle_round_trip_gives_identical_transforms(digits):
    X = digits[:200]
    est = AutoencoderTransformer(model="tied", latent_dim=5, max_iter=5, random_state=0).fit(X)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.transform(X), est.transform(X))
    Z = est.transform(X)
    np.testing.assert_array_equal(clone.inverse_transform(Z), est.inverse_transform(Z))
    assert clone.score(X) == est.score(X)


def _preset_estimator(name: str) -> AutoencoderTransformer:
    conv = "channels" in {f.name for f in fields(model_spec(name).cls.config_class)}  # images
    return AutoencoderTransformer(
        model=name,
        latent_dim=4,
        max_iter=3,
        random_state=0,
        image_shape=(1, 8, 8) if conv else None,
    )


@pytest.mark.parametrize("name", sorted(n for n, s in MODELS.items() if s.cls.has_code))
def test_every_preset_is_an_estimator(name, digits):
    """Each registry preset fits, transforms deterministically, decodes and scores."""
    X = digits[:300]
    est = _preset_estimator(name).fit(X)
    Z = est.transform(X)
    assert Z.shape == (300, 4) and np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z, est.transform(X))  # a Gaussian latent uses its mean
    assert est.inverse_transform(Z).shape == X.shape
    assert est.model_.name == name
    assert np.isfinite(est.score(X)) and est.score(X) < 0


def test_a_preset_without_a_code_is_refused_in_one_line(digits):
    with pytest.raises(ValueError, match="no code"):
        AutoencoderTransformer(model="dncnn", image_shape=(1, 8, 8), max_iter=1).fit(digits[:50])


def test_loss_none_keeps_the_presets_likelihood(digits):
    assert _preset_estimator("vae").fit(digits[:100]).model_.config.loss == "bce"
    assert _preset_estimator("dense").fit(digits[:100]).model_.config.loss == "mse"
    est = _preset_estimator("vae").set_params(loss="mse").fit(digits[:100])
    assert est.model_.config.loss == "mse"


def test_conv_without_image_shape_explains_itself(digits):
    with pytest.raises(ValueError, match="image_shape"):
        AutoencoderTransformer(model="conv", max_iter=1).fit(digits[:50])
    with pytest.raises(ValueError, match="image_shape"):
        AutoencoderTransformer(model="conv", image_shape=(1, 8, 9), max_iter=1).fit(digits[:50])


def test_validation_fraction_zero_without_early_stopping_is_accepted(digits):
    """As MLPRegressor: the fraction only matters when early_stopping holds data out."""
    est = AutoencoderTransformer(latent_dim=2, max_iter=2, validation_fraction=0.0, random_state=0)
    assert est.fit_transform(digits).shape == (len(digits), 2)
