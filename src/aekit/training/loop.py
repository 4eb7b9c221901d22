"""The one training loop: it knows nothing about which autoencoder it trains, or on what.

Every engine (PyTorch on any device, the seed's NumPy engine), the estimators and the CLI
train through :func:`fit`. Per epoch it takes the seeded order (a pure function of seed and
epoch, so a resumed run repeats it), lets the strategy run the steps, reads the summed terms
once, guards against a non-finite loss, evaluates the validation data, keeps the early-stopping
counters and hands a record to the callbacks. What varies is a callback (checkpoints, best
weights, schedules, progress) or the strategy (device, precision, CUDA graphs, the NumPy
engine). The model's ``forward`` returns the record with ``"loss"``; randomness inside it
comes from torch's global RNG, which checkpoints save and restore.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch

from ..errors import ConfigError, TrainingDivergedError
from .callbacks import Callback, PartSchedules, Progress
from .config import TrainConfig, TrainState
from .distributed import is_writer
from .engines import make_strategy
from .strategy import Strategy

EpochEndFunction = Callable[[torch.nn.Module, object, TrainState, bool], None]


class Loop:
    """One fit: the model, its optimiser, the strategy that runs the steps, the callbacks."""

    def __init__(
        self, model, config: TrainConfig, strategy: Strategy, callbacks: Iterable[Callback]
    ) -> None:
        self.model, self.config, self.strategy = model, config, strategy
        self.callbacks = list(callbacks)
        self.batch_callbacks = [
            cb for cb in self.callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.optimizer = None
        self.state = TrainState()
        self.stop_training = False
        self.has_validation = False
        self.n_train = 0

    def run(self, X, X_val=None, optimizer=None, state: TrainState | None = None) -> TrainState:
        config, strategy = self.config, self.strategy
        self.state = state or TrainState()
        self.optimizer = strategy.setup(self.model, optimizer, config)
        X = strategy.prepare(X)
        X_val = None if X_val is None or len(X_val) == 0 else strategy.prepare(X_val)
        self.has_validation = X_val is not None
        self.n_train = n = len(X)
        if n == 0:
            raise ConfigError("there is no training data: the training set is empty")
        bs = n if config.optimizer == "gd" else min(int(config.batch_size), n)
        with strategy.session():
            for cb in self.callbacks:
                cb.on_fit_start(self)
            while self._more_epochs():
                self._epoch(X, X_val, bs)
            strategy.end_fit()
            for cb in self.callbacks:
                cb.on_fit_end(self)
        return self.state

    def _more_epochs(self) -> bool:
        st = self.state
        return st.epoch < self.config.epochs and not st.stopped_early and not self.stop_training

    def _epoch(self, X, X_val, bs: int) -> None:
        config, strategy, st, n = self.config, self.strategy, self.state, self.n_train
        epoch = st.epoch
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        self.model.train()
        t0 = time.perf_counter()
        strategy.begin_epoch(epoch)
        Xs = strategy.epoch_data(X, config.seed, epoch, shuffle=bs < n)
        for start in range(0, n, bs):
            strategy.step(Xs, start, min(bs, n - start))
            for cb in self.batch_callbacks:
                cb.on_batch_end(self, min(start + bs, n))
        sums = strategy.end_epoch()  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        train_loss = sums["loss"] / n
        if not math.isfinite(train_loss):
            _diverged(f"the training loss became {train_loss}", epoch)
        if not strategy.weights_finite():  # the last step can overflow after its loss was read
            _diverged("the weights became non-finite", epoch)
        record = {"epoch": epoch + 1, "train_loss": train_loss}
        record.update({f"train_{k}": v / n for k, v in sums.items() if k != "loss"})
        monitored = train_loss
        if X_val is not None:
            monitored = record["val_loss"] = strategy.evaluate(X_val)
            if not math.isfinite(monitored):
                _diverged(f"the validation loss became {monitored}", epoch)
        record["seconds"] = seconds
        record["samples_per_s"] = n / seconds if seconds > 0 else float("inf")
        improved = monitored < st.best_loss - config.min_delta
        if improved:
            st.best_loss, st.best_epoch, st.bad_epochs = monitored, epoch + 1, 0
        else:
            st.bad_epochs += 1
        st.epoch = epoch + 1
        st.history.append(record)
        if config.patience and X_val is not None and st.bad_epochs >= config.patience:
            st.stopped_early = True
        for cb in self.callbacks:
            cb.on_epoch_end(self, record, improved)


def _diverged(what: str, epoch: int) -> None:
    raise TrainingDivergedError(
        f"{what} in epoch {epoch + 1}; training stopped and the last good state (epoch "
        f"{epoch}) was kept; try a smaller learning rate"
    )


class _EpochEndFunction(Callback):
    """``on_epoch_end(model, optimizer, state, improved)`` as a callback."""

    def __init__(self, fn: EpochEndFunction) -> None:
        self.fn = fn

    def on_epoch_end(self, loop, record, improved) -> None:
        self.fn(loop.model, loop.optimizer, loop.state, improved)


def fit(
    model: torch.nn.Module,
    X,
    X_val=None,
    config: TrainConfig | None = None,
    *,
    optimizer=None,
    state: TrainState | None = None,
    callbacks: Iterable[Callback] = (),
    on_epoch_end: EpochEndFunction | None = None,
    progress: bool = False,
    device=None,
    precision: str | None = None,
    cuda_graphs: bool | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    strategy: Strategy | None = None,
) -> TrainState:
    """Train ``model`` on X (already scaled) and return the final :class:`TrainState`.

    Parameters
    ----------
    model : an :class:`aekit.nn.Autoencoder` (anything whose ``forward`` returns ``"loss"``).
    X, X_val : arrays or tensors (N, D_in); X_val enables validation loss and early stopping.
    config : :class:`TrainConfig` (its ``engine`` picks the torch or the NumPy engine).
    optimizer, state : pass both to resume (see :mod:`aekit.io.checkpoint`).
    callbacks : :class:`aekit.training.Callback` instances, run after the model parts'
        schedules (:class:`aekit.training.callbacks.PartSchedules`: a VAE's KL warm-up).
    on_epoch_end : a function ``on_epoch_end(model, optimizer, state, improved)`` called after
        every epoch (a shorthand for a callback).
    progress : show a tqdm bar per epoch.
    device : "auto", "cpu", "cuda", "cuda:N", "mps" or None (where the model is); the model
        and the data move there once.
    precision : "fp32", "tf32" or "bf16"; None takes ``config.precision``.
    cuda_graphs : capture the step in CUDA graphs on a CUDA device; None takes
        ``config.cuda_graphs``. A capture that fails, or whose first replay gives another loss
        than the eager step on the same batch, falls back to eager steps with one warning.
    augment : a function applied to each training batch inside the step.
    strategy : a ready :class:`~aekit.training.strategy.Strategy` instead of the above (a
        job builds its run's once: :func:`aekit.training.engines.make_strategy`).

    Raises
    ------
    TrainingDivergedError
        When the loss becomes NaN or infinite; nothing of that epoch is handed on.
    ConfigError
        For a device that is not there, or settings the engine cannot run.
    """
    config = config or TrainConfig()
    if strategy is None:
        strategy = make_strategy(config, device, precision, cuda_graphs, augment)
    cbs = [PartSchedules(), *callbacks]
    if on_epoch_end is not None:
        cbs.append(_EpochEndFunction(on_epoch_end))
    if progress and is_writer():  # one progress bar, from rank 0
        cbs.append(Progress())
    return Loop(model, config, strategy, cbs).run(X, X_val, optimizer, state)
