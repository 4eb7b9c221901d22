"""Training: the one loop, its callbacks, and the strategies that run its steps.

from aekit.training import TrainConfig, fit
state = fit(model, X, config=TrainConfig(epochs=20), device="auto")
"""

from __future__ import annotations

from .callbacks import BestWeights, Callback, Progress
from .config import ENGINES, OPTIMIZERS, PRECISIONS, TrainConfig, TrainState
from .devices import resolve_device
from .engines import STRATEGIES, make_strategy
from .loggers import MLflowLogger, RunLogger, TensorBoardLogger
from .loop import Loop, fit
from .optim import make_optimizer
from .strategy import Strategy, TorchStrategy, epoch_permutation, evaluate_loss

__all__ = [
    "ENGINES",
    "OPTIMIZERS",
    "PRECISIONS",
    "STRATEGIES",
    "BestWeights",
    "Callback",
    "Loop",
    "MLflowLogger",
    "Progress",
    "RunLogger",
    "Strategy",
    "TensorBoardLogger",
    "TorchStrategy",
    "TrainConfig",
    "TrainState",
    "epoch_permutation",
    "evaluate_loss",
    "fit",
    "make_optimizer",
    "make_strategy",
    "resolve_device",
]
