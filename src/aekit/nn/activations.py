"""The elementwise activations a config names, as modules."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")


def activation_module(name: str) -> nn.Module:
    """The nn.Module for an activation name (validated by the configs)."""
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}[
        name
    ]()
