"""The losses and regularisers of aekit.functional.losses against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aekit.errors import ConfigError
from aekit.functional import losses


def test_negative_log_likelihoods_by_hand():
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    logits = torch.tensor([[0.0, 0.0, math.log(3.0)]], dtype=torch.float64)  # p = .5, .5, .75
    x_hat = torch.sigmoid(logits)
    # Bernoulli: -log .5 - log .5 - log .75
    assert float(losses.negative_log_likelihood("bce", x_hat, logits, x)[0]) == pytest.approx(
        2 * math.log(2) - math.log(0.75)
    )
    # Gaussian N(x_hat, I): 0.5 sum (x - x_hat)^2 + 3/2 log 2 pi
    sq = 0.25 + 0.25 + 0.0625
    assert float(losses.negative_log_likelihood("mse", x_hat, logits, x)[0]) == pytest.approx(
        0.5 * sq + 1.5 * math.log(2 * math.pi)
    )
    # Laplace(x_hat, 1): sum |x - x_hat| + 3 log 2
    assert float(losses.negative_log_likelihood("mae", x_hat, logits, x)[0]) == pytest.approx(
        1.25 + 3 * math.log(2)
    )
    with pytest.raises(ConfigError, match="not a likelihood"):
        losses.negative_log_likelihood("ssim", x_hat, logits, x)


def test_gaussian_nll_is_seed_mse_plus_a_constant():
    x, x_hat = torch.rand(5, 7, dtype=torch.float64), torch.rand(5, 7, dtype=torch.float64)
    nll = losses.negative_log_likelihood("mse", x_hat, x_hat, x).mean()
    torch.testing.assert_close(nll, losses.mse(x_hat, x) + 3.5 * math.log(2 * math.pi))


def test_gaussian_kl_by_hand():
    mu = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    logvar = torch.tensor([0.0, math.log(4.0), 0.0], dtype=torch.float64)
    expected = [0.5, 0.5 * (4 - 1 - math.log(4)), 0.0]
    np.testing.assert_allclose(losses.gaussian_kl(mu, logvar).numpy(), expected)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.7, -1.2, 0.1], dtype=torch.float64)
    logvar = torch.tensor([-1.0, 0.5, -3.0], dtype=torch.float64)
    n = 400_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, 3, generator=g, dtype=torch.float64)
    log_q = losses.gaussian_log_density(z, mu, logvar)
    log_p = losses.gaussian_log_density(z)
    diff = log_q - log_p
    mc, stderr = float(diff.mean()), float(diff.std() / math.sqrt(n))
    exact = float(losses.gaussian_kl(mu, logvar).sum())
    assert abs(mc - exact) < 4 * stderr


def test_gaussian_log_density_matches_torch_distributions():
    z, mu, logvar = torch.randn(3, 4, 5, dtype=torch.float64).unbind(0)
    ref = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(losses.gaussian_log_density(z, mu, logvar), ref)
    ref0 = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(losses.gaussian_log_density(z), ref0)


def test_sparsity_kl_by_hand():
    # unit 0 averages 0.5 over the batch, unit 1 averages 0.05 (= rho: no penalty)
    code = torch.tensor([[0.2, 0.0], [0.8, 0.1]], dtype=torch.float64)
    rho = 0.05
    kl0 = rho * math.log(rho / 0.5) + (1 - rho) * math.log((1 - rho) / 0.5)
    assert float(losses.sparsity_kl(code, rho)) == pytest.approx(kl0)
    assert float(losses.bernoulli_kl(rho, torch.tensor(rho))) == pytest.approx(0.0, abs=1e-12)
    # a dead unit stays finite
    assert math.isfinite(float(losses.sparsity_kl(torch.zeros(4, 3), rho)))


def test_l1_code_by_hand():
    code = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    assert float(losses.l1_code(code)) == pytest.approx((3.0 + 0.5) / 2)


def test_contractive_closed_form_by_hand():
    W = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # row norms^2: 5, 9
    h = torch.tensor([[0.5, 0.5]])  # s' = h (1 - h) = 0.25 each
    assert float(losses.contractive_closed_form(h, W)) == pytest.approx(0.0625 * 14)
    assert float(losses.contractive_closed_form(h, W, "identity")) == pytest.approx(14.0)


def test_ssim_of_identical_images_is_a_zero_loss():
    x = torch.rand(3, 28 * 28, dtype=torch.float64)
    assert float(losses.ssim_loss(x, x, (1, 28, 28))) == pytest.approx(0.0, abs=1e-10)


def test_ssim_of_constant_images_by_hand():
    """With no variance SSIM is its luminance term (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b, c1 = 0.2, 0.6, 0.01**2
    x_hat = torch.full((2, 2 * 16 * 16), a, dtype=torch.float64)
    x = torch.full((2, 2 * 16 * 16), b, dtype=torch.float64)
    expected = 1 - (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(losses.ssim_loss(x_hat, x, (2, 16, 16))) == pytest.approx(expected)


def _ssim_brute_force(a: np.ndarray, b: np.ndarray, sigma=1.5, k=11) -> float:
    """SSIM of two (H, W) images: Gaussian-weighted local statistics in a window centred on
    every pixel, the images mirrored at the borders (torchmetrics' convention)."""
    a, b = np.pad(a, k // 2, mode="reflect"), np.pad(b, k // 2, mode="reflect")
    ax = np.arange(k) - (k - 1) / 2
    w = np.exp(-(ax**2) / (2 * sigma**2))
    w = np.outer(w, w) / np.outer(w, w).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(a.shape[0] - k + 1):
        for j in range(a.shape[1] - k + 1):
            pa, pb = a[i : i + k, j : j + k], b[i : i + k, j : j + k]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma**2, (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(
                (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


def test_ssim_matches_the_formula_on_random_images():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    b = np.clip(a + 0.2 * rng.standard_normal((16, 16)), 0, 1)
    flat_a, flat_b = torch.from_numpy(a).reshape(1, -1), torch.from_numpy(b).reshape(1, -1)
    got = 1 - float(losses.ssim_loss(flat_a, flat_b, (1, 16, 16)))
    assert got == pytest.approx(_ssim_brute_force(a, b), abs=1e-6)


def test_reconstruction_loss_dispatch():
    x = torch.rand(4, 64)
    x_hat = torch.rand(4, 64)
    logits = torch.logit(x_hat)
    assert losses.reconstruction_loss("mse", x_hat, logits, x) == losses.mse(x_hat, x)
    assert losses.reconstruction_loss("mae", x_hat, logits, x) == losses.mae(x_hat, x)
    ssim = losses.reconstruction_loss("ssim", x_hat, logits, x, (1, 8, 8))
    assert 0 < float(ssim) < 2
    with pytest.raises(ConfigError, match="needs images"):
        losses.reconstruction_loss("ssim", x_hat, logits, x)
