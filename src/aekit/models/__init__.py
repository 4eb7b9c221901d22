"""Autoencoder models and the registry that names them."""

from __future__ import annotations

from .base import ACTIVATIONS, Autoencoder
from .dense import DenseAutoencoder, DenseConfig
from .registry import MODELS, ModelSpec, build_model, model_spec, register_model

__all__ = [
    "ACTIVATIONS",
    "MODELS",
    "Autoencoder",
    "DenseAutoencoder",
    "DenseConfig",
    "ModelSpec",
    "build_model",
    "model_spec",
    "register_model",
]
