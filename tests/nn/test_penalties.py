"""Penalties and corruption inside the models' objective (aekit.nn.penalties)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from aekit.data.noise import Noise
from aekit.errors import ConfigError
from aekit.functional import losses
from aekit.nn import build_model, jacobian_frobenius_sq
from aekit.nn.base import eval_generator


def brute_force(model, x: torch.Tensor) -> torch.Tensor:
    """1/N sum_i ||J_f(x_i)||_F^2 from the full Jacobian of each sample, one at a time."""
    total = sum(
        jacobian(lambda v: model.encode(v[None])[0], x[i]).pow(2).sum() for i in range(len(x))
    )
    return total / len(x)


def models_for_jacobians():
    torch.manual_seed(0)
    return {
        "sigmoid layer": build_model("contractive", 20, latent_dim=6),
        "tanh layer": build_model("dense", 20, hidden=(), latent_dim=6, latent_activation="tanh"),
        "deep dense": build_model("dense", 20, hidden=(12, 9), latent_dim=6, activation="tanh"),
        "conv": build_model("conv", 2 * 4 * 4, image_shape=(2, 4, 4), channels=(3,), latent_dim=6),
        "vae mean": build_model("vae", 20, hidden=(8,), latent_dim=6),
    }


@pytest.mark.parametrize("which", list(models_for_jacobians()))
def test_jacobian_forms_match_the_brute_force_jacobian(which):
    model = models_for_jacobians()[which].double()
    x = torch.rand(7, model.input_dim, dtype=torch.float64)
    expected = brute_force(model, x)
    torch.testing.assert_close(jacobian_frobenius_sq(model, x, "exact"), expected)
    if model.closed_form_weight() is not None:
        torch.testing.assert_close(jacobian_frobenius_sq(model, x, "closed"), expected)
        torch.testing.assert_close(jacobian_frobenius_sq(model, x, "auto"), expected)
    g = torch.Generator().manual_seed(0)
    estimate = jacobian_frobenius_sq(model, x, "projection", samples=4000, generator=g)
    torch.testing.assert_close(estimate, expected, rtol=0.05, atol=0)


def test_closed_form_and_autograd_give_the_same_gradients():
    torch.manual_seed(0)
    a = build_model("contractive", 20, latent_dim=6).double()
    b = build_model("contractive", 20, latent_dim=6, contractive_method="exact").double()
    b.load_state_dict(a.state_dict())
    x = torch.rand(9, 20, dtype=torch.float64)
    for model in (a, b):
        model.loss(x)["contractive"].backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_closed_form_needs_a_single_layer():
    model = build_model(
        "dense", 20, hidden=(8,), contractive_weight=0.1, contractive_method="closed"
    )
    with pytest.raises(ConfigError, match="one dense layer"):
        model.loss(torch.rand(3, 20))


def test_exact_penalty_works_in_evaluation_under_no_grad():
    """The trainer scores validation data under no_grad: the Jacobian must still be taken."""
    torch.manual_seed(0)
    model = build_model("dense", 20, hidden=(8,), contractive_weight=0.5).eval()
    x = torch.rand(5, 20)
    with torch.no_grad():
        terms = model.loss(x)
    torch.testing.assert_close(terms["contractive"], 0.5 * brute_force(model, x))


def test_sparse_and_l1_terms_are_weighted_penalties_on_the_code():
    torch.manual_seed(0)
    model = build_model("sparse", 20, sparse_weight=0.7, l1_weight=0.2, hidden=(8,))
    x = torch.rand(6, 20)
    terms = model.loss(x)
    code = model.encode(x)
    torch.testing.assert_close(terms["sparse"], 0.7 * losses.sparsity_kl(code, 0.05))
    torch.testing.assert_close(terms["l1"], 0.2 * losses.l1_code(code))
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["sparse"] + terms["l1"])


def test_denoising_loss_compares_the_corrupted_inputs_reconstruction_with_the_clean_input():
    torch.manual_seed(0)
    model = build_model("denoising", 20, noise="mask:0.5", hidden=(8,))
    x = torch.rand(6, 20)
    torch.manual_seed(1)
    got = model.loss(x)["loss"]  # training mode: noise from the global RNG
    torch.manual_seed(1)
    x_tilde = Noise.parse("mask:0.5")(x)
    torch.testing.assert_close(got, losses.mse(model.reconstruct(x_tilde), x))
    assert not torch.allclose(got, losses.mse(model.reconstruct(x), x))


def test_evaluation_noise_is_fixed_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    model = build_model("denoising", 20, hidden=(8,)).eval()
    x = torch.rand(6, 20)
    state = torch.get_rng_state()
    a, b = model.loss(x)["loss"], model.loss(x)["loss"]
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    x_tilde = Noise.parse("gaussian:0.3")(x, eval_generator())
    torch.testing.assert_close(a, losses.mse(model.reconstruct(x_tilde), x))
