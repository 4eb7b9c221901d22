"""Devices by name: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``,
``cuda:N``, ``mps``, each checked against this machine before any work starts."""

from __future__ import annotations

import torch

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None): CUDA when available, else the CPU; anything else is checked."""
    if isinstance(device, torch.device):
        device = str(device)
    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} asked for, but CUDA is not available here; use cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ConfigError("device 'mps' asked for, but MPS is not available; use cpu or auto")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use one of {', '.join(DEVICES)}")
    return dev


def check_device(device, precision: str = "fp32") -> torch.device:
    """The resolved device, refusing a precision it has not (tf32 is CUDA's); checks early."""
    dev = resolve_device(device)
    if precision == "tf32" and dev.type != "cuda":
        raise ConfigError("precision tf32 is a CUDA arithmetic; use fp32 or bf16 on the CPU")
    return dev
