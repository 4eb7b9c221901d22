"""Latent kinds: what happens between the encoder's features and the decoder.

A latent kind is an ``nn.Module`` built from the model config and the width of the features
that the code layer reads. It turns features into the code (:meth:`encode`, deterministic) and
computes the objective's latent part in training (:meth:`forward`, which returns the record the
loop minimises: ``loss`` and its terms, ``x_hat``, ``code``). A new kind is one new file here
and a row in :data:`LATENTS`; its settings are checked by its ``check_config``. A part whose
objective changes with time defines ``on_epoch_start(epoch)``, which the training loop calls.
"""

from __future__ import annotations

from .deterministic import DeterministicLatent
from .gaussian import GaussianLatent
from .hyperprior import HyperpriorLatent
from .quantized import QuantizedLatent

LATENTS: dict[str, type] = {
    "deterministic": DeterministicLatent,
    "gaussian": GaussianLatent,
    "quantized": QuantizedLatent,
    "hyperprior": HyperpriorLatent,
}

__all__ = [
    "LATENTS",
    "DeterministicLatent",
    "GaussianLatent",
    "HyperpriorLatent",
    "QuantizedLatent",
]
