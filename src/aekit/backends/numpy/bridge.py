"""Weights both ways between a PyTorch dense model and the NumPy engine (:mod:`aekit.scratch`),
exactly (the same ``nn.Linear`` layout, see :mod:`aekit.scratch.interop`), and the check of
what the engine can represent: seed 000's plain dense model (deterministic code, no penalty, no
input noise; ``hidden`` any depth, mirrored decoder, tied or not) whose hidden, code and
decoder-hidden layers share one activation, with ``output_activation`` sigmoid or identity, loss
``mse`` or ``bce``, in float32 or float64. Anything else raises
:class:`~aekit.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ... import scratch
from ...errors import ConfigError
from ...nn.arch.dense import DenseAutoencoder, DenseConfig
from ...nn.registry import model_spec

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


# DenseConfig fields the engine maps; every other field (a Gaussian latent, a penalty, input
# noise, ...) must keep its default. image_shape only describes the data of a dense model.
MAPPED_FIELDS = frozenset(
    ("input_dim", "latent_dim", "hidden", "decoder_hidden", "activation", "latent_activation")
    + ("output_activation", "tied", "loss", "image_shape")
)


def _changed_fields(config: Any) -> list[str]:
    """``name=value`` of every unmapped setting (a field, or a part's setting under its flat
    name) that differs from its default."""
    default = type(config)(input_dim=config.input_dim).flat()
    return [
        f"{name}={value!r}" if not hasattr(value, "kind") else f"{name}={str(value)!r}"
        for name, value in config.flat().items()
        if name not in MAPPED_FIELDS and default.get(name, dataclasses.MISSING) != value
    ]


def _encoder_activation(config: DenseConfig) -> str:
    """The engine's one ``s_enc``, or ConfigError when the model needs two."""
    if not config.hidden:  # no hidden layers: only the code layer has an encoder activation
        return config.latent_activation
    if config.activation != config.latent_activation:
        raise ConfigError(
            "the NumPy engine applies one activation to the hidden and code layers; got "
            f"activation={config.activation!r}, latent_activation={config.latent_activation!r} "
            f"(set latent_activation={config.activation!r}, or use no hidden layers)"
        )
    return config.activation


def check_representable(model: torch.nn.Module) -> str:
    """Raise ConfigError unless the NumPy engine can train ``model``; return its ``s_enc``."""
    if not isinstance(model, DenseAutoencoder):
        raise ConfigError(
            f"the NumPy engine trains dense autoencoders only, not {type(model).__name__}"
        )
    config = model.config
    changed = _changed_fields(config)
    if changed:
        raise ConfigError(
            "the NumPy engine trains the seed's plain autoencoder (deterministic code, no "
            f"penalty, no input noise); this model sets {', '.join(changed)}"
        )
    if config.decoder_hidden is not None and config.decoder_hidden != tuple(
        reversed(config.hidden)
    ):
        raise ConfigError(
            "the NumPy engine needs a mirrored decoder; got hidden="
            f"{list(config.hidden)}, decoder_hidden={list(config.decoder_hidden)}"
        )
    if config.loss not in scratch.LOSSES:
        raise ConfigError(
            f"the NumPy engine has no loss {config.loss!r}; use one of {', '.join(scratch.LOSSES)}"
        )
    dtype = next(model.parameters()).dtype
    if dtype not in DTYPES:
        raise ConfigError(f"the NumPy engine computes in float32 or float64, not {dtype}")
    return _encoder_activation(config)


def to_scratch(model: DenseAutoencoder, dtype: Any = None) -> scratch.Autoencoder:
    """The NumPy-engine copy of a dense model, with exactly its weights.

    Parameters
    ----------
    model : DenseAutoencoder
        A float32 or float64 model the engine can represent (see the module docstring).
    dtype : np.float32, np.float64 or None
        The copy's dtype; None keeps the model's.

    Returns
    -------
    aekit.scratch.Autoencoder
        Shares no memory with ``model``.

    Raises
    ------
    ConfigError
        For a model the engine cannot represent: another architecture, ``activation`` !=
        ``latent_activation`` with hidden layers, a decoder that does not mirror the encoder,
        loss ``mae``, or a dtype other than float32/float64.
    """
    enc = check_representable(model)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    if dtype is None:
        dtype = DTYPES[next(model.parameters()).dtype]
    return scratch.Autoencoder.from_torch_layout(
        state, enc, model.config.output_activation, dtype=dtype
    )


def from_scratch(
    sm: scratch.Autoencoder, name: str = "dense", loss: str = "mse"
) -> DenseAutoencoder:
    """The PyTorch dense model (registry preset ``name``) with exactly the weights of ``sm``.

    The result has ``sm``'s dtype, ``activation = latent_activation = sm.encoder_activation``
    and ``output_activation = sm.decoder_activation``, which must be sigmoid or identity
    (ConfigError otherwise).
    """
    spec = model_spec(name)
    if not issubclass(spec.cls, DenseAutoencoder):
        raise ConfigError(f"model {name!r} is not a dense autoencoder")
    if sm.decoder_activation not in ("sigmoid", "identity"):
        raise ConfigError(
            "the PyTorch dense model's output activation is sigmoid or identity, got "
            f"decoder_activation={sm.decoder_activation!r}"
        )
    model = spec.cls(DenseConfig(**sm.to_config(), loss=loss), name=name)
    if sm.dtype == np.float64:
        model = model.double()
    tensors = {k: torch.from_numpy(v) for k, v in sm.state_dict_torch_layout().items()}
    model.load_state_dict(tensors, strict=True)
    return model


@torch.no_grad()
def copy_into(model: DenseAutoencoder, sm: scratch.Autoencoder) -> None:
    """Overwrite ``model``'s weights in place with those of ``sm`` (same architecture)."""
    params = dict(model.named_parameters())
    for key, value in sm.state_dict_torch_layout().items():
        params[key].copy_(torch.from_numpy(value))
