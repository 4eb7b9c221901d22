"""The composed model: architecture x latent kind x penalties x corruption, and its registry.

A model is an architecture (:class:`DenseAutoencoder`, :class:`ConvAutoencoder`, in
:mod:`aekit.nn.arch`) whose config (:class:`ModelConfig`) also names the latent kind
(:mod:`aekit.nn.latent`), the penalties (:mod:`aekit.nn.penalties`), the input corruption
(:mod:`aekit.nn.corruption`) and the loss; the presets in :mod:`aekit.nn.presets` name useful
combinations, and the registry serves them to every entry point.
"""

from __future__ import annotations

from . import presets  # noqa: F401  (registers the presets)
from .activations import ACTIVATIONS
from .arch import ConvAutoencoder, ConvConfig, DenseAutoencoder, DenseConfig
from .base import Autoencoder
from .config import LATENTS, ModelConfig
from .penalties import jacobian_frobenius_sq
from .registry import MODELS, ModelSpec, build_model, model_spec, register_model

__all__ = [
    "ACTIVATIONS",
    "LATENTS",
    "MODELS",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "DenseConfig",
    "ModelConfig",
    "ModelSpec",
    "build_model",
    "jacobian_frobenius_sq",
    "model_spec",
    "register_model",
]
