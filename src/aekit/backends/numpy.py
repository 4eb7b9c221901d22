"""The bridge between the NumPy engine (:mod:`aekit.scratch`) and the PyTorch dense model.

:func:`to_scratch` and :func:`from_scratch` move weights both ways exactly (the same
``nn.Linear`` layout, see :mod:`aekit.scratch.interop`). :class:`NumpyStrategy` is the engine as
a strategy of the one loop (:func:`aekit.training.fit` with ``TrainConfig(engine="numpy")``): the
loop keeps the epochs, the seeded order, the history, early stopping, the divergence error and
the callbacks; the strategy computes the steps, and after every epoch the torch model holds the
trained weights before the callbacks run.

The optimiser handed to ``on_epoch_end`` is a :class:`NumpyOptimizer`: the engine's optimiser
behind ``state_dict()`` / ``load_state_dict()`` in ``torch.optim``'s own format (parameter
indices in ``model.parameters()`` order, tensors in torch's layout, Adam's ``step`` as a
float32 tensor). :func:`aekit.io.checkpoint.save_checkpoint` and ``load_checkpoint`` therefore
work unchanged, and a checkpoint written by either engine resumes under the other.

What the NumPy engine represents: seed 000's plain dense model (deterministic code, no
penalty, no input noise; ``hidden`` any depth, mirrored decoder, tied or not) whose hidden,
code and decoder-hidden layers share one activation, with ``output_activation`` sigmoid or
identity, loss ``mse`` or ``bce``, in float32 or float64. Anything else raises
:class:`~aekit.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .. import scratch
from ..errors import ConfigError, DataError
from ..nn.arch.dense import DenseAutoencoder, DenseConfig
from ..nn.registry import model_spec
from ..training.config import OPTIMIZERS, TrainConfig
from ..training.optim import make_optimizer
from ..training.strategy import epoch_permutation

__all__ = [
    "NumpyOptimizer",
    "NumpyStrategy",
    "check_representable",
    "copy_into",
    "evaluate_numpy",
    "from_scratch",
    "to_scratch",
]

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


# DenseConfig fields the engine maps; every other field (a Gaussian latent, a penalty, input
# noise, ...) must keep its default. image_shape only describes the data of a dense model.
MAPPED_FIELDS = frozenset(
    ("input_dim", "latent_dim", "hidden", "decoder_hidden", "activation", "latent_activation")
    + ("output_activation", "tied", "loss", "image_shape")
)


# ---- weights both ways ------------------------------------------------------------------------


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
