"""The NumPy engine of the seed's matrix derivation: imports NumPy only, never torch.

>>> import numpy as np
>>> from aekit.scratch import Autoencoder, gradcheck
>>> X = np.random.default_rng(0).random((32, 8))
>>> model = Autoencoder(8, 3, encoder_activation="tanh", seed=0)
>>> sorted(model.params)
['W_D', 'W_E', 'b_D', 'b_E']
>>> history = model.fit(X, epochs=5, batch_size=8, optimizer="adam", lr=1e-2)
>>> history[-1] < history[0]
True
>>> gradcheck(model, X[:4]) < 1e-6
True
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation, get_activation
from .engine import Autoencoder, Layer
from .gradcheck import gradcheck, numerical_gradients, relative_error
from .losses import LOSSES, bce_with_logits, mse
from .optim import OPTIMIZERS, Adam, GradientDescent, Momentum, Optimizer, make_optimizer

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "Activation",
    "Adam",
    "Autoencoder",
    "GradientDescent",
    "Layer",
    "Momentum",
    "Optimizer",
    "bce_with_logits",
    "get_activation",
    "gradcheck",
    "make_optimizer",
    "mse",
    "numerical_gradients",
    "relative_error",
]
