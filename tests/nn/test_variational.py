"""The Gaussian latent: ELBO parts, warm-up, free bits, IWAE, sampling and the NLL estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import aekit
from aekit.apps import generation as variational
from aekit.errors import ConfigError
from aekit.functional import losses
from aekit.nn import build_model
from aekit.nn.latent.gaussian import kl_weight, reparameterise


def small_vae(seed=0, **kw):
    torch.manual_seed(seed)
    return build_model("vae", 64, **{"latent_dim": 3, "hidden": (16,), **kw})


def test_reparameterisation_draws_from_the_posterior():
    mu, logvar = torch.tensor([1.0, -2.0]), torch.tensor([0.0, math.log(0.25)])
    z = reparameterise(mu, logvar, 100_000, torch.Generator().manual_seed(0))
    assert z.shape == (100_000, 2)
    torch.testing.assert_close(z.mean(0), mu, atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 0.5]), atol=0.01, rtol=0)


def test_elbo_parts_in_evaluation_mode(digits01):
    """loss = recon + KL, with the closed-form KL and the sample drawn by the eval generator."""
    model = small_vae().eval()
    x = torch.from_numpy(digits01[:8])
    terms = model.loss(x)
    mu, logvar = model.posterior(x)
    torch.testing.assert_close(terms["kl"], losses.gaussian_kl(mu, logvar).sum(1).mean())
    z = reparameterise(mu, logvar, None, torch.Generator().manual_seed(0))
    logits = model.decode_logits(z)
    recon = losses.negative_log_likelihood("bce", torch.sigmoid(logits), logits, x).mean()
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["loss"], recon + terms["kl"])


def test_codes_and_reconstructions_use_the_posterior_mean(digits01):
    model = small_vae()  # training mode: loss() samples, encode/forward never do
    x = torch.from_numpy(digits01[:8])
    mu, _ = model.posterior(x)
    torch.testing.assert_close(model.encode(x), mu)
    np.testing.assert_array_equal(model.encode_numpy(digits01), model.encode_numpy(digits01))
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.decode_logits(mu)))


def test_kl_warm_up_follows_the_epoch_set_by_the_loop(digits01):
    """The latent's schedule runs before each epoch; the weight the step sees ramps up."""
    model = small_vae(beta=2.0, kl_warmup=4)
    seen = []

    class Spy(aekit.Callback):  # runs after the parts' schedules, before the epoch trains
        def on_epoch_start(self, loop, epoch):
            model.train()
            seen.append(float(model.latent.kl_weight()))
            expected = kl_weight(model.config.latent_settings, epoch, True)
            assert float(model.latent.kl_weight()) == expected

    aekit.fit(
        model, digits01[:64], config=aekit.TrainConfig(epochs=6, batch_size=32), callbacks=[Spy()]
    )
    assert seen == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    # validation: always the full weight
    assert kl_weight(model.config.latent_settings, 1, training=False) == 2.0
    model.eval()
    model.latent.kl_scale.fill_(0.0)
    assert model.latent.kl_weight() == 2.0  # eval mode ignores the warm-up factor


def test_free_bits_charge_at_least_f_nats_per_unit(digits01):
    model = small_vae(free_bits=0.5).eval()
    x = torch.from_numpy(digits01[:8])
    terms = model.loss(x)
    mu, logvar = model.posterior(x)
    per_unit = losses.gaussian_kl(mu, logvar).mean(0)
    assert (per_unit < 0.5).any()  # the floor bites at initialisation
    torch.testing.assert_close(terms["loss"], terms["recon"] + per_unit.clamp_min(0.5).sum())


def test_log_variance_is_clamped_so_nothing_becomes_nan(digits01):
    model = small_vae()
    with torch.no_grad():
        model.latent.logvar.weight.fill_(1e4)  # sigma^2 = exp(huge) without the clamp
    terms = model.loss(torch.from_numpy(digits01[:8]))
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_iwae_bound_tightens_with_k(digits01):
    model = small_vae()
    x = digits01[:20]
    bounds = [
        variational.log_likelihood(model, x, k, seed=s).mean()
        for k in (1, 10, 200)
        for s in range(3)
    ]
    b1, b10, b200 = (np.mean(bounds[i : i + 3]) for i in (0, 3, 6))
    assert b1 < b10 < b200


def test_iwae_objective_matches_the_estimator_in_evaluation(digits01):
    model = small_vae(iwae_samples=7).eval()
    x = torch.from_numpy(digits01[:5])
    terms = model.loss(x)  # eval: samples from the fixed generator, as the estimator with seed 0
    log_px = variational.log_likelihood(model, digits01[:5], 7, batch_size=5, seed=0)
    assert float(terms["loss"].detach()) == pytest.approx(-log_px.mean(), rel=1e-5)


def test_nll_matches_numerical_integration_on_a_one_dimensional_latent():
    """p(x) = integral of p(x|z) N(z; 0, 1) dz for a Bernoulli decoder, by the trapezoid rule."""
    torch.manual_seed(3)
    model = build_model("vae", 4, latent_dim=1, hidden=()).double()
    X = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=np.float64)
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        logits = model.decode_logits(z)  # (G, 4)
    exact = []
    for x in torch.from_numpy(X):
        log_px_z = -losses.negative_log_likelihood("bce", None, logits, x[None].expand_as(logits))
        integrand = torch.exp(log_px_z + losses.gaussian_log_density(z))
        exact.append(math.log(float(torch.trapezoid(integrand, z[:, 0]))))
    estimate = variational.log_likelihood(model, X, samples=20_000, seed=0)
    np.testing.assert_allclose(estimate, exact, atol=0.01)


def test_nll_matches_the_closed_form_of_a_linear_gaussian_model():
    """x = W z + b + e with z ~ N(0, I), e ~ N(0, I): p(x) = N(x; b, W W^T + I) exactly."""
    torch.manual_seed(0)
    model = build_model(
        "vae", 5, latent_dim=2, hidden=(), loss="mse", output_activation="identity"
    ).double()
    W, b = model.decoder[0].weight.detach(), model.decoder[0].bias.detach()  # (5, 2), (5,)
    exact = torch.distributions.MultivariateNormal(b, W @ W.T + torch.eye(5, dtype=torch.float64))
    X = torch.randn(4, 5, dtype=torch.float64)
    estimate = variational.log_likelihood(model, X.numpy(), samples=20_000, seed=1)
    np.testing.assert_allclose(estimate, exact.log_prob(X).numpy(), atol=0.01)
    assert variational.nll(model, X.numpy(), 100) == pytest.approx(-estimate.mean(), abs=0.1)


def test_sampling_and_interpolation(digits01):
    model = small_vae()
    s = variational.sample(model, 6, seed=1)
    assert s.shape == (6, 64) and ((s >= 0) & (s <= 1)).all()
    np.testing.assert_array_equal(s, variational.sample(model, 6, seed=1))
    path = variational.interpolate(model, digits01[0], digits01[1], steps=5)
    assert path.shape == (5, 64)
    np.testing.assert_allclose(path[[0, -1]], model.reconstruct_numpy(digits01[:2]), atol=1e-6)


def test_generative_helpers_refuse_deterministic_models(digits01):
    torch.manual_seed(0)
    model = build_model("dense", 64)
    with pytest.raises(ConfigError, match="Gaussian latent"):
        variational.sample(model, 2)
    with pytest.raises(ConfigError, match="Gaussian latent"):
        variational.log_likelihood(model, digits01[:2], 10)
    assert variational.interpolate(model, digits01[0], digits01[1], 3).shape == (3, 64)
