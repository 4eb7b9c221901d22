"""Training settings and the loop's state: plain dataclasses that travel as JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from ..io.state import TrainState  # noqa: F401 - the checkpoint's record, named here too

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
DEFAULT_STEPS = 5000  # the default budget: optimiser steps, whatever the data's size
MIN_EPOCHS, MAX_EPOCHS = 10, 2000  # every row is seen at least 10 times, and a tiny set
PATIENCE_SHARE = 0.1  # early stopping waits a tenth of the budget (at least 5 epochs)
ENGINES = ("torch", "numpy")
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass
class TrainConfig:
    """Training settings. ``gd`` is full-batch gradient descent (``batch_size`` is ignored);
    ``patience`` > 0 turns on early stopping on the validation loss. ``engine`` "numpy" trains
    with the seed's NumPy engine (:mod:`aekit.backends.numpy`) through the same loop.
    ``precision`` is the arithmetic of the torch engine: fp32, tf32 (CUDA matmuls and
    convolutions in TensorFloat-32) or bf16 (autocast to bfloat16). ``cuda_graphs`` lets the
    torch engine capture the step in CUDA graphs on a CUDA device (False: every step eager);
    it changes how the steps run, not what they compute, so a resume may change it."""

    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    patience: int = 0
    min_delta: float = 0.0
    engine: str = "torch"
    precision: str = "fp32"
    cuda_graphs: bool = True

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
        if not isinstance(self.cuda_graphs, bool):
            raise ConfigError(f"cuda_graphs must be True or False, got {self.cuda_graphs!r}")
        if self.patience < 0:
            raise ConfigError("patience must be >= 0 (0 turns early stopping off)")
        if self.engine == "numpy" and self.precision != "fp32":
            raise ConfigError("the NumPy engine computes in its arrays' dtype: use precision fp32")


def steps_per_epoch(n_train: int, batch_size: int, optimizer: str = "adam") -> int:
    """Optimiser steps in one epoch of ``n_train`` rows (``gd``: one full-batch step)."""
    if optimizer == "gd":
        return 1
    return max(1, math.ceil(int(n_train) / max(1, min(int(batch_size), int(n_train)))))


@dataclass(frozen=True)
class Budget:
    """The default budget for one data size: a number of optimiser steps turned into epochs.

    An epoch of 300 rows is three steps of 128 and one of 60,000 rows is 469, so "20 epochs"
    means twenty times more training on the larger data. The default instead fixes the number
    of steps (``DEFAULT_STEPS``), rounds up to whole epochs (at least ``MIN_EPOCHS``, at most
    ``MAX_EPOCHS``) and stops early when the validation loss has not improved for a tenth of
    the budget. An explicit ``epochs`` is never replaced: this is only the default.
    """

    epochs: int
    patience: int
    steps: int
    steps_per_epoch: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "steps", **asdict(self)}


def default_budget(
    n_train: int, batch_size: int = 128, optimizer: str = "adam", steps: int | None = None
) -> Budget:
    """Epochs and early-stopping patience for ``steps`` (default ``DEFAULT_STEPS``) optimiser
    steps on ``n_train`` rows.

    Examples
    --------
    >>> default_budget(270).epochs, default_budget(54_000).epochs
    (1667, 12)
    """
    steps = DEFAULT_STEPS if steps is None else steps
    if int(n_train) <= 0 or int(steps) <= 0:
        raise ConfigError("the budget needs at least one training row and one step")
    per_epoch = steps_per_epoch(n_train, batch_size, optimizer)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(int(steps) / per_epoch)))
    patience = max(5, math.ceil(PATIENCE_SHARE * epochs))
    return Budget(epochs, patience, int(steps), per_epoch)
