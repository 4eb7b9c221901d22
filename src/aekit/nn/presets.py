"""The named presets: each is an architecture with some config fields fixed.

The penalty weights suit images in [0, 1] of MNIST's size (benchmarks/quality_family.py): the
reconstruction loss sums over the features, so smaller inputs want smaller weights.

A preset is a row here, never a class: ``sparse`` is the dense architecture with a sigmoid
code and a sparsity weight, ``conv-vae`` the convolutional one with a Gaussian latent. Every
field can still be overridden (``build_model("conv", D, noise="mask:0.25", l1_weight=0.1)``),
which is how the CLI combines the parts.
"""

from __future__ import annotations

from .arch.codec import ConvCodec
from .arch.context import ContextModel
from .arch.conv import ConvAutoencoder
from .arch.dense import DenseAutoencoder
from .arch.dncnn import DnCNN
from .registry import register_model

PRESETS = {
    "dense": (
        DenseAutoencoder,
        "fully connected encoder and mirrored decoder (seed 000)",
        dict(hidden=(128,)),
    ),
    "linear": (
        DenseAutoencoder,
        "identity activations everywhere: the autoencoder that PCA solves in closed form",
        dict(
            hidden=(),
            activation="identity",
            latent_activation="identity",
            output_activation="identity",
        ),
    ),
    "tied": (
        DenseAutoencoder,
        "dense with decoder weights = encoder weights transposed (seed 002)",
        dict(tied=True),
    ),
    "sparse": (
        DenseAutoencoder,
        "dense with a sigmoid code and the KL sparsity penalty to rho = 0.05 (seed 003)",
        dict(latent_activation="sigmoid", sparse_weight=3.0, sparse_target=0.05),
    ),
    "denoising": (
        DenseAutoencoder,
        "dense trained to reconstruct clean inputs from Gaussian-noised ones (seeds 003, 004)",
        dict(noise="gaussian:0.3"),
    ),
    "contractive": (
        DenseAutoencoder,
        "one sigmoid encoder layer with the contractive penalty ||J_f(x)||_F^2 (seed 004)",
        dict(hidden=(), latent_activation="sigmoid", contractive_weight=0.03),
    ),
    "vae": (
        DenseAutoencoder,
        "variational: Gaussian latent, Bernoulli likelihood, KL to N(0, I) (seeds 003, 004)",
        dict(latent="gaussian", loss="bce"),
    ),
    "conv": (
        ConvAutoencoder,
        "stride-2 Conv2d + ReLU down, ConvTranspose2d up, sigmoid out (seeds 001, 003)",
        dict(channels=(32, 64)),
    ),
    "conv-vae": (
        ConvAutoencoder,
        "the convolutional architecture with a Gaussian latent (a convolutional VAE)",
        dict(channels=(32, 64), latent="gaussian", loss="bce"),
    ),
    "compress": (
        ConvAutoencoder,
        "image codec: the code rounded to integers and priced in bits by a learned entropy "
        "model; rate_weight weighs the rate (bits per pixel) against the squared error",
        dict(channels=(32, 64), latent="quantized", latent_dim=128, rate_weight=1.0),
    ),
    "codec": (
        ConvCodec,
        "image codec for any size, grey or colour: a block transform that starts at the DCT "
        "(--transform gdn: GDN transforms), a spatial code priced by a mean-scale hyperprior, "
        "one model for every rate (gain units over eight lambdas)",
        dict(
            latent="hyperprior", latent_dim=None, channels=64, stages=3,
            output_activation="identity", transform="dct",
        ),  # fmt: skip
    ),
    "lossless": (
        ContextModel,
        "learned lossless and near-lossless image coder: a context model over 2x2 phases "
        "at four scales (one network pass per phase), a logistic mixture per pixel; --step q",
        dict(block=2, scales=4, width=64, depth=6, mixtures=5, steps=(1, 2, 4, 8), anchor=True,
             free=2),
    ),
    "dncnn": (
        DnCNN,
        "fully convolutional residual denoiser (DnCNN): 3x3 convolutions predict the noise, "
        "subtracted from the input; no code, any image size when denoising",
        dict(depth=5, width=32, output_activation="identity"),
    ),
    "blindspot": (
        DnCNN,
        "self-supervised denoiser for noisy data alone (Noise2Self): dncnn's convolutions, "
        "not residual, trained with 5% of pixels masked (each replaced by its neighbours' "
        "mean) and scored on those only",
        dict(depth=5, width=32, output_activation="identity", blindspot=0.05, residual=False),
    ),
}

for _name, (_cls, _summary, _defaults) in PRESETS.items():
    register_model(_name, summary=_summary, **_defaults)(_cls)
