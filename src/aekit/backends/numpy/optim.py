"""The NumPy engine's optimiser behind ``state_dict()`` / ``load_state_dict()`` in
``torch.optim``'s own format, so that checkpoints of either engine resume under the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ... import scratch
from ...errors import ConfigError
from ...nn.arch.dense import DenseAutoencoder
from ...training.config import OPTIMIZERS
from ...training.optim import make_optimizer
from .bridge import to_scratch


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
