"""The training checkpoint: the loop's counters (:class:`TrainState`) with the weights, the
optimiser's state and the RNG state, in one safetensors file.

The record lives here, below :mod:`aekit.training` (which re-exports it), so that the files
know nothing of the loop: :mod:`aekit.io` imports nothing of ``training/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..errors import ModelFileError
from .tensors import read_tensors, save_tensors, upgrade_state_dict


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


def save_checkpoint(path, model, optimizer, state) -> None:
    """One file with weights, optimiser state and RNG state; counters go in its metadata.

    Every tensor is stored on the CPU, so the file resumes on any device; the CUDA generator's
    state is stored too when CUDA is in use, so that a resumed GPU run draws the same numbers.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, Any] = {}
    for idx, per_param in opt["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    device = _model_device(model)
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    meta = {
        "train_state": json.dumps(state.to_dict()),
        "param_groups": json.dumps(opt["param_groups"]),
        "optim_scalars": json.dumps(scalars),
    }
    save_tensors(path, tensors, meta)


def _model_device(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# how the optimiser runs on this device: kept from the new optimiser, not taken from the file
_DEVICE_FLAGS = ("capturable", "fused", "foreach")


def load_checkpoint(path, model, optimizer, lr: float | None = None):
    """Restore model, optimiser and RNG from :func:`save_checkpoint`; return the TrainState.

    ``lr`` replaces the saved learning rate (a resumed run may change it).

    The model and the optimiser stay on the device they are on: a checkpoint written on a GPU
    resumes on a CPU and the other way round. The CUDA generator is restored when the file has
    its state and the model is on a CUDA device.
    """
    tensors, meta = read_tensors(path)
    try:
        model.load_state_dict(
            upgrade_state_dict(
                {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
            )
        )
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = v
        for k, v in json.loads(meta["optim_scalars"]).items():
            idx, key = k.split(".", 1)
            opt_state.setdefault(int(idx), {})[key] = v
        groups = json.loads(meta["param_groups"])
        current = getattr(optimizer, "param_groups", [])  # the NumPy engine's has none
        here = [{k: g[k] for k in _DEVICE_FLAGS if k in g} for g in current]
        for group, flags in zip(groups, here, strict=False):
            group.update(flags)
            if lr is not None:
                group["lr"] = lr
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        torch.set_rng_state(tensors["rng.torch"])
        device = _model_device(model)
        if "rng.cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        return TrainState(**json.loads(meta["train_state"]))
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise ModelFileError(f"checkpoint {path} cannot be resumed: {e}") from None
