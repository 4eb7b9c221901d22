"""Training settings and the loop's state: plain dataclasses that travel as JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
ENGINES = ("torch", "numpy")
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass
class TrainConfig:
    """Training settings. ``gd`` is full-batch gradient descent (``batch_size`` is ignored);
    ``patience`` > 0 turns on early stopping on the validation loss. ``engine`` "numpy" trains
    with the seed's NumPy engine (:mod:`aekit.backends.numpy`) through the same loop.
    ``precision`` is the arithmetic of the torch engine: fp32, tf32 (CUDA matmuls and
    convolutions in TensorFloat-32) or bf16 (autocast to bfloat16)."""

    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    patience: int = 0
    min_delta: float = 0.0
    engine: str = "torch"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for what, value, choices in (
            ("engine", self.engine, ENGINES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in choices:
                raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
        for name in ("epochs", "batch_size", "seed", "patience"):
            value = getattr(self, name)
            try:
                whole = not isinstance(value, bool) and int(value) == value
            except (TypeError, ValueError, OverflowError):
                whole = False
            if not whole:
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            setattr(self, name, int(value))
        if self.epochs < 0 or self.batch_size <= 0:
            raise ConfigError("epochs must be >= 0 and batch_size > 0")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a positive number, got {self.lr}")
        if self.patience < 0:
            raise ConfigError("patience must be >= 0 (0 turns early stopping off)")
        if self.engine == "numpy" and self.precision != "fp32":
            raise ConfigError("the NumPy engine computes in its arrays' dtype: use precision fp32")


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
