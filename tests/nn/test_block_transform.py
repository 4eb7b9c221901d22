"""The codec's block transform (nn/arch/block_transform.py): it starts at the orthonormal DCT."""

import numpy as np
import pytest
import torch
from scipy.fft import dctn

from aekit.errors import ConfigError
from aekit.nn import build_model
from aekit.nn.arch.block_transform import (
    START_SCALE,
    BlockAnalysis,
    BlockSynthesis,
    block_basis,
    dct_matrix,
)


@pytest.mark.parametrize("c,b", [(1, 4), (3, 8)])
def test_the_basis_is_orthonormal(c, b):
    w = block_basis(c, b).reshape(c * b * b, -1).double()
    eye = torch.eye(c * b * b, dtype=torch.float64)
    torch.testing.assert_close(w @ w.T, eye, atol=1e-6, rtol=0)


def test_grey_coefficients_are_scipys_orthonormal_dct_of_each_block():
    rng = np.random.default_rng(0)
    x = rng.random((1, 1, 16, 24)).astype(np.float32)
    y = BlockAnalysis(1, 8)(torch.from_numpy(x)).detach().numpy()  # (1, 64, 2, 3)
    for i in range(2):
        for j in range(3):
            ref = dctn(x[0, 0, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8], norm="ortho") * START_SCALE
            np.testing.assert_allclose(y[0, :, i, j].reshape(8, 8), ref, atol=1e-4)
    d = dct_matrix(8).numpy()
    np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-12)


def test_the_synthesis_inverts_the_analysis_at_the_start():
    x = torch.rand(2, 3, 16, 32)
    y = BlockAnalysis(3, 8)(x)
    back = BlockSynthesis(3, 8, post_channels=16)(y)  # the post-filter starts at zero
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)


def test_a_dct_codec_takes_any_size_and_its_code_has_a_channel_per_coefficient():
    model = build_model("codec", 3 * 64, image_shape=(3, 8, 8), stages=2, transform="dct",
                        hyper_channels=4, lambdas=(0.001, 0.1)).eval()  # fmt: skip
    assert model.config.latent_dim == 3 * 16
    for h, w in [(1, 1), (17, 33), (40, 3)]:
        x = torch.rand(2, 3, h, w)
        assert model.analysis(x).shape == (2, 48, -(-h // 4), -(-w // 4))
        assert model.reconstruct_images(x).shape == x.shape


def test_a_dct_codec_refuses_another_code_width_and_unknown_transforms():
    with pytest.raises(ConfigError, match="dct codec's code has C \\* 4\\^stages = 16 channels"):
        build_model("codec", 64, image_shape=(1, 8, 8), stages=2, transform="dct", latent_dim=6)
    with pytest.raises(ConfigError, match="unknown codec transform 'wavelet'"):
        build_model("codec", 64, image_shape=(1, 8, 8), stages=2, transform="wavelet")


def test_a_gdn_codec_hashes_as_before_the_transform_existed():
    model = build_model("codec", 64, image_shape=(1, 8, 8), stages=2, transform="gdn",
                        channels=8, latent_dim=6, hyper_channels=4)  # fmt: skip
    legacy = model.config.legacy_dict()
    assert "transform" not in legacy and "post_channels" not in legacy
    dct = build_model("codec", 64, image_shape=(1, 8, 8), stages=2, transform="dct",
                      hyper_channels=4)  # fmt: skip
    assert dct.config.legacy_dict()["transform"] == "dct"
    # a codec without gain_prior hashes as before it existed; one with it hashes it
    assert not dct.config.gain_prior and "gain_prior" not in dct.config.legacy_dict()
    gained = build_model("codec", 64, image_shape=(1, 8, 8), stages=2, transform="dct",
                         hyper_channels=4, gain_prior=True)  # fmt: skip
    assert gained.config.legacy_dict()["gain_prior"] is True
