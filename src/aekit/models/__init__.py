"""Autoencoder models and the registry that names them.

A model is an architecture (:class:`DenseAutoencoder`, :class:`ConvAutoencoder`) whose config
also fixes the latent kind, penalties, input corruption and loss (:class:`ModelConfig`); the
presets in :mod:`aekit.models.presets` name useful combinations.
"""

from __future__ import annotations

from . import presets  # noqa: F401  (registers the presets)
from .base import ACTIVATIONS, Autoencoder
from .config import LATENTS, ModelConfig
from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder, DenseConfig
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
