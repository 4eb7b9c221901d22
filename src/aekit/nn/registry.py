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
    check_fits(spec.cls, config, name, copies=TRAINING_COPIES)
    return spec.cls(config, name=name)


# a model in training holds its weights, their gradients and Adam's two moments
TRAINING_COPIES = 4


def check_fits(cls: type, config, name: str, copies: int = 1) -> None:
    """Refuse a model whose weights (times ``copies``) would take more memory than allowed
    (:func:`aekit.data.images.max_memory`: half this machine's, or ``AEKIT_MAX_MEMORY``),
    before any of it is allocated: the model is built on the meta device, which holds
    shapes only, and its parameters and buffers counted. Raises
    :class:`~aekit.errors.MemoryLimitError` (one line)."""
    import torch

    from ..data.images import max_memory, said_bytes
    from ..errors import MemoryLimitError

    try:
        with torch.device("meta"):
            probe = cls(config, name=name)
    except Exception:  # noqa: BLE001 - not buildable on meta: the real build says why, if at all
        return
    tensors = [*probe.parameters(), *probe.buffers()]
    need = copies * sum(t.numel() * t.element_size() for t in tensors)
    limit = max_memory()
    if need > limit:
        what = "to train (weights, gradients, Adam's moments)" if copies > 1 else "of weights"
        raise MemoryLimitError(
            f"model {name!r} with these sizes needs {said_bytes(need)} {what}, over the "
            f"{said_bytes(limit)} allowed (AEKIT_MAX_MEMORY; by default half this machine's "
            "memory): choose smaller sizes"
        )
