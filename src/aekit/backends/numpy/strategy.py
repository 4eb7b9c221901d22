"""The NumPy engine as a strategy of the one loop (:func:`aekit.training.fit` with
``TrainConfig(engine="numpy")``): the loop keeps the epochs, the seeded order, the history,
early stopping, the divergence error and the callbacks; the strategy computes the steps, and
after every epoch the torch model holds the trained weights before the callbacks run."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import torch

from ... import scratch
from ...errors import ConfigError, DataError
from ...nn.arch.dense import DenseAutoencoder
from ...training.config import TrainConfig
from ...training.strategy import epoch_permutation
from .bridge import copy_into, to_scratch
from .optim import NumpyOptimizer


def _as_array(X: Any, dtype: np.dtype, width: int) -> np.ndarray:
    """X (array or tensor) as one C-contiguous array of ``dtype``, checked once."""
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.ndim != 2 or X.shape[1] != width or len(X) == 0:
        raise DataError(
            f"data has shape {X.shape} but the model expects (n, {width}) with n >= 1; "
            "use data of the width the model was trained on"
        )
    return X


def evaluate_numpy(sm: scratch.Autoencoder, X: np.ndarray, kind: str, batch_size=4096) -> float:
    """Mean per-sample loss over X, batch losses weighted by batch size (as evaluate_loss)."""
    total = 0.0
    for i in range(0, len(X), batch_size):
        xb = X[i : i + batch_size]
        total += sm.loss(xb, kind) * len(xb)
    return total / len(X)


class NumpyStrategy:
    """The NumPy engine behind the loop's strategy methods (see :mod:`aekit.training.strategy`).

    The loop hands it the seeded order and the batch bounds; it gathers each batch into one
    reused buffer, computes the seed's hand-written gradients and steps its optimiser in
    place. At the end of every finite epoch the torch model receives the engine's weights, so
    that callbacks (checkpoints, best weights) see them as they would the torch engine's.
    """

    def setup(self, model: DenseAutoencoder, optimizer, config: TrainConfig) -> NumpyOptimizer:
        self.model = model
        self.sm = to_scratch(model)  # refuses what the engine cannot represent
        self.kind = model.config.loss
        if optimizer is None:
            optimizer = NumpyOptimizer(config.optimizer, model, config.lr)
        if not isinstance(optimizer, NumpyOptimizer):
            raise ConfigError(
                f"the NumPy engine steps its own optimiser, not {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.total = 0.0
        self.buf: np.ndarray | None = None
        self.synced = False
        return optimizer

    def prepare(self, X: Any) -> np.ndarray:
        return _as_array(X, self.sm.dtype, self.sm.d_in)

    def session(self):
        return contextlib.nullcontext()

    def epoch_data(self, X: np.ndarray, seed: int, epoch: int, shuffle: bool):
        return X, epoch_permutation(len(X), seed, epoch).numpy() if shuffle else None

    def begin_epoch(self, epoch: int) -> None:
        if not self.synced:  # a callback may have restored a checkpoint into the model
            self.sm = to_scratch(self.model)
            self.synced = True
        self.total = 0.0

    def step(self, data, start: int, size: int) -> None:
        if not math.isfinite(self.total):  # diverged: the loop raises at the epoch's end
            return
        X, order = data
        if order is None:  # full batch: X itself
            xb = X[start : start + size]
        else:  # gather the batch's rows into one reused buffer
            if self.buf is None or len(self.buf) < size:
                self.buf = np.empty((size, X.shape[1]), X.dtype)
            xb = np.take(X, order[start : start + size], axis=0, out=self.buf[:size])
        # X was checked once in prepare, so the unchecked core of loss_and_gradients is used
        with np.errstate(over="ignore", invalid="ignore"):
            value, grads = self.sm._loss_and_gradients(xb, self.kind)
        if not math.isfinite(value):
            self.total = value
            return
        self.optimizer.step(self.sm.params, grads)
        self.total += value * len(xb)

    def end_epoch(self) -> dict[str, float]:
        if math.isfinite(self.total):
            copy_into(self.model, self.sm)
        # the plain model's loss is its reconstruction term, as the torch engine records it
        return {"loss": self.total, "recon": self.total}

    def weights_finite(self) -> bool:
        return all(np.isfinite(p).all() for p in self.sm.params.values())

    def evaluate(self, X: np.ndarray) -> float:
        return evaluate_numpy(self.sm, X, self.kind)

    def end_fit(self) -> None:
        pass

    def running_loss(self, samples: int) -> float:
        return self.total / max(samples, 1)
