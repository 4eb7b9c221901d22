"""Training: the one loop, its callbacks, and the strategies that run its steps.

from aekit.training import TrainConfig, fit
state = fit(model, X, config=TrainConfig(epochs=20), device="auto")
"""

from __future__ import annotations

from .callbacks import BestWeights, Callback, Progress
from .config import ENGINES, OPTIMIZERS, PRECISIONS, TrainConfig, TrainState
from .loggers import MLflowLogger, RunLogger, TensorBoardLogger
from .loop import Loop, fit
from .optim import make_optimizer
from .strategy import TorchStrategy, epoch_permutation, evaluate_loss, resolve_device

__all__ = [
    "ENGINES",
    "OPTIMIZERS",
    "PRECISIONS",
    "BestWeights",
    "Callback",
    "Loop",
    "MLflowLogger",
    "Progress",
    "RunLogger",
    "TensorBoardLogger",
    "TorchStrategy",
    "TrainConfig",
    "TrainState",
    "epoch_permutation",
    "evaluate_loss",
    "fit",
    "make_optimizer",
    "resolve_device",
]
