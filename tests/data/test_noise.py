"""Input corruptions (aekit.data.noise): parsing, statistics, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.data.noise import Noise, binarize, corrupt
from aekit.errors import ConfigError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gaussian:0.3", Noise("gaussian", 0.3)),
        ("mask:0.25", Noise("mask", 0.25)),
        ("salt-pepper:0.1", Noise("salt-pepper", 0.1)),
        ("Gaussian:0.5:clip", Noise("gaussian", 0.5, clip=True)),
    ],
)
def test_parse_and_round_trip(text, expected):
    noise = Noise.parse(text)
    assert noise == expected
    assert Noise.parse(str(noise)) == noise


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("gaussian", "KIND:LEVEL"),
        ("gaussian:0.3:clamp", "KIND:LEVEL"),
        ("blur:2", "unknown noise"),
        ("mask:1.5", "probability"),
        ("gaussian:-1", ">= 0"),
        ("gaussian:abc", "not a number"),
    ],
)
def test_bad_specs_are_config_errors(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Noise.parse(text)


def test_gaussian_noise_has_the_asked_sigma():
    x = torch.full((200, 500), 0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    diff = Noise("gaussian", 0.3)(x, g) - x
    assert abs(float(diff.mean())) < 0.003 and float(diff.std()) == pytest.approx(0.3, rel=0.01)
    clipped = Noise("gaussian", 2.0, clip=True)(x, g)
    assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0


def test_masking_zeroes_the_asked_fraction_and_nothing_else():
    x = torch.rand(200, 500, dtype=torch.float64) + 1.0  # never 0 before masking
    out = Noise("mask", 0.25)(x, torch.Generator().manual_seed(0))
    zero = out == 0
    assert float(zero.double().mean()) == pytest.approx(0.25, abs=0.005)
    assert torch.equal(out[~zero], x[~zero])


def test_salt_and_pepper_sets_half_to_0_and_half_to_1():
    x = torch.full((200, 500), 0.5)
    out = Noise("salt-pepper", 0.2)(x, torch.Generator().manual_seed(0))
    assert float((out == 0).float().mean()) == pytest.approx(0.1, abs=0.004)
    assert float((out == 1).float().mean()) == pytest.approx(0.1, abs=0.004)
    assert float((out == 0.5).float().mean()) == pytest.approx(0.8, abs=0.004)


def test_corruption_leaves_its_input_alone_and_repeats_with_a_seed():
    X = np.random.default_rng(0).random((20, 10)).astype(np.float32)
    before = X.copy()
    a, b = corrupt(X, "gaussian:0.5:clip", seed=3), corrupt(X, "gaussian:0.5:clip", seed=3)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and not np.array_equal(a, corrupt(X, "gaussian:0.5:clip", 4))


def test_global_rng_drives_noise_without_a_generator():
    x = torch.zeros(4, 6)
    torch.manual_seed(5)
    a = Noise("gaussian", 1.0)(x)
    torch.manual_seed(5)
    torch.testing.assert_close(Noise("gaussian", 1.0)(x), a)


def test_binarize_draws_bernoulli():
    X = np.full((400, 500), 0.3, dtype=np.float32)
    B = binarize(X, seed=0)
    assert set(np.unique(B)) == {0.0, 1.0} and B.dtype == np.float32
    assert B.mean() == pytest.approx(0.3, abs=0.005)
    np.testing.assert_array_equal(B, binarize(X, seed=0))
