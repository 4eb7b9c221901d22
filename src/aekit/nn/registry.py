"""The model registry: one name -> (model class, preset defaults), used by every entry point.

The CLI's ``--model``, :func:`aekit.load`, the scikit-learn estimator and the parametrised
contract tests all go through :data:`MODELS`, so a model registered here is available
everywhere at once (CompressAI's ``registry/torch.py`` is the pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """A registered preset: the class that builds it and the config values it fixes."""

    name: str
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, summary: str = "", **defaults: Any):
    """Class decorator registering ``cls`` under ``name`` with preset config ``defaults``."""

    def wrap(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelSpec(name, cls, dict(defaults), summary)
        return cls

    return wrap


def model_spec(name: str) -> ModelSpec:
    """Look up a preset by name, with a clear error listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}"
        ) from None


def build_model(name: str, input_dim: int, **overrides: Any):
    """Build the preset ``name`` for inputs of width ``input_dim``.

    ``overrides`` are config fields (``latent_dim``, ``hidden``, ``activation``, ...) or the
    parts' flat names (``kl_weight``/``beta``, ``rate_weight``, ``sparse_weight``, ``noise``,
    ...: :meth:`~aekit.nn.config.ModelConfig.from_values`); a value of None keeps the preset's
    default. Unknown names raise :class:`ConfigError`.
    """
    spec = model_spec(name)
    values = {**spec.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        config = spec.cls.config_class.from_values(input_dim=input_dim, **values)
    except ConfigError as e:
        raise ConfigError(f"model {name!r}: {e}") from None
    return spec.cls(config, name=name)
