"""The bridge between the NumPy engine (:mod:`aekit.scratch`) and the PyTorch dense model.

:func:`to_scratch` and :func:`from_scratch` move weights both ways exactly (the same
``nn.Linear`` layout, see :mod:`aekit.scratch.interop`). :func:`fit_numpy` trains a
:class:`~aekit.models.dense.DenseAutoencoder` with the NumPy engine under the contract of
:func:`aekit.training.fit`: the same :class:`TrainConfig`, :class:`TrainState`, history records,
early stopping, divergence error and per-epoch sample order, and after every epoch the torch
model holds the trained weights before ``on_epoch_end(model, optimizer, state, improved)`` runs.

The optimiser handed to ``on_epoch_end`` is a :class:`NumpyOptimizer`: the engine's optimiser
behind ``state_dict()`` / ``load_state_dict()`` in ``torch.optim``'s own format (parameter
indices in ``model.parameters()`` order, tensors in torch's layout, Adam's ``step`` as a
float32 tensor). :func:`aekit.checkpoint.save_checkpoint` and ``load_checkpoint`` therefore
work unchanged, and a checkpoint written by either engine resumes under the other.

What the NumPy engine represents: seed 000's plain dense model (deterministic code, no
penalty, no input noise; ``hidden`` any depth, mirrored decoder, tied or not) whose hidden,
code and decoder-hidden layers share one activation, with ``output_activation`` sigmoid or
identity, loss ``mse`` or ``bce``, in float32 or float64. Anything else raises
:class:`~aekit.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from . import scratch
from .errors import ConfigError, DataError, TrainingDivergedError
from .models.dense import DenseAutoencoder, DenseConfig
from .models.registry import model_spec
from .training import (
    OPTIMIZERS,
    TrainConfig,
    TrainState,
    _progress_bar,
    epoch_permutation,
    make_optimizer,
)

__all__ = [
    "NumpyOptimizer",
    "check_representable",
    "copy_into",
    "evaluate_numpy",
    "fit_numpy",
    "from_scratch",
    "to_scratch",
]

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
EpochCallback = Callable[[torch.nn.Module, "NumpyOptimizer", TrainState, bool], None]


# DenseConfig fields the engine maps; every other field (a Gaussian latent, a penalty, input
# noise, ...) must keep its default. image_shape only describes the data of a dense model.
MAPPED_FIELDS = frozenset(
    ("input_dim", "latent_dim", "hidden", "decoder_hidden", "activation", "latent_activation")
    + ("output_activation", "tied", "loss", "image_shape")
)


# ---- weights both ways ------------------------------------------------------------------------


def _changed_fields(config: Any) -> list[str]:
    """``name=value`` of every unmapped config field that differs from its default."""
    changed = []
    for f in dataclasses.fields(config):
        if f.name in MAPPED_FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        value = getattr(config, f.name)
        if value != default:
            changed.append(f"{f.name}={value!r}")
    return changed


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


# ---- the optimiser, checkpointable as torch.optim --------------------------------------------


class NumpyOptimizer:
    """The engine's optimiser ``name`` for ``model``, with torch.optim's state_dict format.

    Parameters
    ----------
    name : {"gd", "sgd", "momentum", "adam"}
        As :func:`aekit.training.make_optimizer`; the update rules are the same.
    model : DenseAutoencoder
        Fixes the parameter order (``model.parameters()``) and the torch layout of the state.
    lr : float
        Learning rate.

    Notes
    -----
    ``state_dict()`` returns ``{"state": {i: {...}}, "param_groups": [group]}`` exactly as the
    torch optimiser of the same name would after the same steps: ``momentum_buffer`` per
    parameter for momentum; ``step`` (float32 scalar tensor), ``exp_avg`` and ``exp_avg_sq``
    for Adam; nothing for gd/sgd. ``load_state_dict`` accepts that format (from either engine)
    and takes lr, momentum, betas and eps from the saved group, as torch does.
    """

    def __init__(self, name: str, model: DenseAutoencoder, lr: float) -> None:
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
        sm = to_scratch(model)  # checks that the engine can represent the model
        self.name, self.dtype = name, sm.dtype
        # (torch key, engine name, is_weight) in model.parameters() order
        self.names: list[tuple[str, str, bool]] = sm._torch_names()
        if [k for k, _, _ in self.names] != [k for k, _ in model.named_parameters()]:
            raise ConfigError("the model's parameter order differs from the NumPy engine's")
        self.shapes = {name: p.shape for name, p in sm.params.items()}
        # torch's param group, built on first need: creating a torch optimiser imports
        # torch._dynamo (about a second), which training alone should not pay for
        self.group: dict[str, Any] | None = None
        self.opt = self._build({"lr": lr})  # the engine's defaults are torch's

    def _build(self, g: Mapping[str, Any]) -> scratch.Optimizer:
        if self.name == "adam":
            betas = tuple(g.get("betas", (0.9, 0.999)))
            return scratch.Adam(g["lr"], betas=betas, eps=g.get("eps", 1e-8))
        if self.name == "momentum":
            return scratch.Momentum(g["lr"], momentum=g.get("momentum", 0.9))
        return scratch.GradientDescent(g["lr"])

    def _torch_group(self) -> dict[str, Any]:
        """The param group torch's optimiser ``name`` has (hyper-parameters, no params)."""
        if self.group is None:
            dummy = torch.zeros(1, dtype=torch.float64 if self.dtype == np.float64 else None)
            opt = make_optimizer(self.name, [dummy], self.opt.lr)
            self.group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        return self.group

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """One update of the engine's ``params`` in place."""
        self.opt.step(params, grads)

    def _buffers(self) -> dict[str, dict[str, np.ndarray]]:
        """torch's per-parameter state names -> the engine's arrays, by engine name."""
        if isinstance(self.opt, scratch.Adam):
            return {"exp_avg": self.opt.m, "exp_avg_sq": self.opt.v}
        if isinstance(self.opt, scratch.Momentum):
            return {"momentum_buffer": self.opt.velocity}
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The state in torch.optim's format (fresh CPU tensors in torch's layout)."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        buffers = self._buffers()
        for idx, (_, name, is_weight) in enumerate(self.names):
            entry = {}
            for key, arrays in buffers.items():
                if name in arrays:
                    a = arrays[name]
                    a = np.ascontiguousarray(a.T) if is_weight else a.reshape(-1).copy()
                    entry[key] = torch.from_numpy(a)
            if entry and isinstance(self.opt, scratch.Adam):
                entry = {"step": torch.tensor(float(self.opt.t)), **entry}
            if entry:
                state[idx] = entry
        group = {**self._torch_group(), "params": list(range(len(self.names)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict`'s format (also a torch optimiser's state_dict)."""
        groups = list(state_dict["param_groups"])
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.names):
            raise ValueError(
                f"optimizer state has {[len(g['params']) for g in groups]} parameters per "
                f"group, the model {len(self.names)}"
            )
        self.group = {k: v for k, v in groups[0].items() if k != "params"}
        self.opt = self._build(self.group)
        steps = set()
        buffers = self._buffers()
        for idx, entry in state_dict["state"].items():
            _, name, is_weight = self.names[int(idx)]
            for key, arrays in buffers.items():
                t = torch.as_tensor(entry[key]).detach().cpu().numpy()
                a = np.array(t.T if is_weight else t.reshape(1, -1), self.dtype, order="C")
                if a.shape != self.shapes[name]:
                    raise ValueError(f"optimizer state {idx}.{key} has the wrong shape {t.shape}")
                arrays[name] = a
            if "step" in entry and isinstance(self.opt, scratch.Adam):
                steps.add(int(float(entry["step"])))
        if len(steps) > 1:
            raise ValueError(f"Adam's step counts differ between parameters: {sorted(steps)}")
        if steps:
            self.opt.t = steps.pop()


# ---- training -------------------------------------------------------------------------------


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


def fit_numpy(
    model: DenseAutoencoder,
    X: Any,
    X_val: Any = None,
    config: TrainConfig | None = None,
    *,
    optimizer: NumpyOptimizer | None = None,
    state: TrainState | None = None,
    on_epoch_end: EpochCallback | None = None,
    progress: bool = False,
) -> TrainState:
    """Train ``model`` with the NumPy engine in its dtype; the contract of training.fit.

    Parameters
    ----------
    model : DenseAutoencoder
        Trained in place: its weights are overwritten after every epoch.
    X, X_val : arrays or tensors (N, D_in), already scaled; X_val enables the validation loss
        and early stopping.
    config : TrainConfig
        ``gd`` is full batch; minibatches of epoch e are consecutive slices of X in the order
        ``epoch_permutation(N, config.seed, e)``, as in training.fit.
    optimizer, state : pass both to resume: a :class:`NumpyOptimizer` whose
        ``load_state_dict`` received the checkpoint's optimiser state, and its TrainState.
    on_epoch_end : called as ``on_epoch_end(model, optimizer, state, improved)`` after every
        epoch, with ``model`` already holding the epoch's weights.
    progress : show a tqdm bar per epoch.

    Raises
    ------
    ConfigError
        When the engine cannot represent ``model`` (see :func:`to_scratch`).
    TrainingDivergedError
        When a batch loss is NaN or infinite; ``model`` keeps the last completed epoch's
        weights and nothing of the failed epoch is handed on.
    """
    config = config or TrainConfig()
    state = state or TrainState()
    sm = to_scratch(model)
    kind = model.config.loss
    optimizer = optimizer or NumpyOptimizer(config.optimizer, model, config.lr)
    X = _as_array(X, sm.dtype, sm.d_in)
    X_val = None if X_val is None or len(X_val) == 0 else _as_array(X_val, sm.dtype, sm.d_in)
    n = len(X)
    bs = n if config.optimizer == "gd" else min(int(config.batch_size), n)
    while state.epoch < config.epochs and not state.stopped_early:
        epoch = state.epoch
        t0 = time.perf_counter()
        train_loss = _run_epoch(sm, optimizer, X, bs, epoch, config, kind, progress)
        if not math.isfinite(train_loss):
            raise TrainingDivergedError(
                f"the training loss became {train_loss} in epoch {epoch + 1}; training stopped "
                f"and the last good state (epoch {epoch}) was kept; try a smaller learning rate"
            )
        copy_into(model, sm)
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "train_loss": train_loss}
        monitored = train_loss
        if X_val is not None:
            monitored = record["val_loss"] = evaluate_numpy(sm, X_val, kind)
        record["seconds"] = seconds
        record["samples_per_s"] = n / seconds if seconds > 0 else float("inf")
        improved = monitored < state.best_loss - config.min_delta
        if improved:
            state.best_loss, state.best_epoch, state.bad_epochs = monitored, epoch + 1, 0
        else:
            state.bad_epochs += 1
        state.epoch = epoch + 1
        state.history.append(record)
        if config.patience and X_val is not None and state.bad_epochs >= config.patience:
            state.stopped_early = True
        if on_epoch_end is not None:
            on_epoch_end(model, optimizer, state, improved)
    return state


def _run_epoch(sm, optimizer, X, bs: int, epoch: int, config, kind: str, progress: bool):
    """One pass over X in the epoch's seeded order; the mean loss, or the first non-finite one."""
    n = len(X)
    order = epoch_permutation(n, config.seed, epoch).numpy() if bs < n else None
    buf = np.empty((bs, X.shape[1]), X.dtype) if order is not None else None
    total = 0.0
    bar = _progress_bar(n, epoch, config.epochs) if progress else None
    try:
        for i in range(0, n, bs):
            if order is None:  # full batch: X itself
                xb = X[i : i + bs]
            else:  # gather the batch's rows into one reused buffer
                idx = order[i : i + bs]
                xb = np.take(X, idx, axis=0, out=buf[: len(idx)])
            # X was checked once above, so the unchecked core of loss_and_gradients is used
            with np.errstate(over="ignore", invalid="ignore"):
                value, grads = sm._loss_and_gradients(xb, kind)
            if not math.isfinite(value):
                return value
            optimizer.step(sm.params, grads)
            total += value * len(xb)
            if bar is not None:
                bar.update(len(xb))
                if bar.n >= n or (i // bs) % 50 == 0:
                    bar.set_postfix(loss=f"{total / min(i + bs, n):.5g}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return total / n
