"""Architectures: how features are computed from the input and the input from a code."""

from __future__ import annotations

from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder, DenseConfig

__all__ = ["ConvAutoencoder", "ConvConfig", "DenseAutoencoder", "DenseConfig"]
