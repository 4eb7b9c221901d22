"""Architectures: how features are computed from the input and the input from a code."""

from __future__ import annotations

from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder, DenseConfig
from .dncnn import DnCNN, DnCNNConfig

__all__ = [
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "DenseConfig",
    "DnCNN",
    "DnCNNConfig",
]
