"""Save and load models and training state: safetensors weights and JSON, never pickle.

A run directory holds ``model.safetensors`` (the weights), ``config.json`` (aekit version,
model name and config, scaler, training settings), and while training ``checkpoint.safetensors``
(weights, optimiser state and RNG state as tensors, the loop's counters as JSON metadata).
Every file is written to a temporary name in the same folder and renamed into place, so a run
killed at any instant leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from ..errors import ConfigError, ModelFileError
from ..nn.registry import model_spec
from .files import atomic_write, write_json

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"


CHECKSUM_KEY = "aekit.sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta=None) -> None:
    """Write a safetensors file atomically, with a checksum of its tensors in the metadata.

    It is serialised in memory and written by Python's file I/O, so that a full disk or a
    permission error is an OSError with its errno; :func:`read_tensors` verifies the checksum,
    so a file damaged on disk is refused rather than loaded as other weights.
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**(meta or {}), CHECKSUM_KEY: tensors_digest(tensors)}
    data = save_bytes(tensors, metadata=meta)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _check_safetensors(path: Path) -> None:
    """Refuse anything that is not a safetensors file before any parser sees it."""
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first bytes
    # may well be 0x80 or "PK" (a header of 384 bytes starts with 0x80), so test this first.
    header_len = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    fits = 0 < header_len <= path.stat().st_size - 8 and head[8:9] == b"{"
    if fits and path.suffix not in (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin"):
        return
    if head[:1] == b"\x80" or path.suffix in (".pkl", ".pickle"):
        kind = "a pickle"
    elif head[:2] == b"PK" or path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        kind = "a PyTorch .pt/zip (pickle) file"
    else:
        kind = "not a safetensors file"
    raise ModelFileError(
        f"{path} is {kind}; aekit loads only safetensors weights with a JSON config, "
        "because unpickling a file can run arbitrary code"
    )


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file and its metadata, refusing pickles."""
    path = Path(path)
    _check_safetensors(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{path} is corrupt or unreadable: {e}") from None
    expected = meta.pop(CHECKSUM_KEY, None)  # files written before 0.2 have none
    if expected is not None and tensors_digest(tensors) != expected:
        raise ModelFileError(
            f"{path} is corrupt: its tensors do not match the checksum written with them"
        )
    return tensors, meta


def model_record(model) -> dict[str, Any]:
    """The JSON description that rebuilds ``model`` through the registry."""
    return {"name": model.name, "config": asdict(model.config)}


# what a damaged record raises while the model is built (the last three: sizes torch refuses)
_BAD_RECORD = (KeyError, TypeError, ValueError, AttributeError, ConfigError, RuntimeError,
               OverflowError, MemoryError)  # fmt: skip


def build_from_record(record: dict[str, Any]):
    """Rebuild an (untrained) model from :func:`model_record`'s output."""
    try:
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise TypeError(f"expected {{'name': ..., 'config': {{...}}}}, got {record!r:.80}")
        spec = model_spec(record["name"])
        config = spec.cls.config_class(**record["config"])
        return spec.cls(config, name=record["name"])  # a value of the wrong type fails here
    except _BAD_RECORD as e:
        first = (str(e).strip() or type(e).__name__).splitlines()[0]
        raise ModelFileError(f"the model config is invalid: {first[:300]}") from None


# state-dict keys of files written by aekit 0.1 that the composed model renamed
_RENAMED = (("logvar.", "latent.logvar."),)


def upgrade_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of an older file mapped to today's layout (a Gaussian latent's head moved)."""
    out = {}
    for key, value in tensors.items():
        for old, new in _RENAMED:
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def write_config(model, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` (aekit version, model record, scaler, ``extra``) into ``path``."""
    from .. import __version__

    path = Path(path)
    config = {"aekit_version": __version__, "model": model_record(model)}
    if model.scaler is not None:
        config["scaler"] = model.scaler.to_dict()
    if getattr(model, "units", None) is not None:
        config["units"] = model.units.to_dict()
    config.update(extra or {})
    write_json(path / CONFIG_FILE, config)
    return path


def save(model, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into the folder ``path``.

    ``extra`` entries (training settings, data description) are stored in config.json too.
    """
    save_tensors(Path(path) / MODEL_FILE, model.state_dict())
    return write_config(model, path, extra)


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json as a dict, with clear errors for a missing or broken file."""
    path = Path(path)
    cfg_path = path / CONFIG_FILE if path.is_dir() else path.parent / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"{path} is not an aekit run: no {CONFIG_FILE} in it")
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{cfg_path} is not an aekit config: it holds no JSON object")
    _check_records(config, cfg_path)
    return config


_RECORDS = ("model", "scaler", "units", "data", "training", "init", "budget", "provenance")


def _check_records(config: dict[str, Any], cfg_path: Path) -> None:
    """The records jobs read without further checks have their types (a hand-edited or
    damaged file is refused here, in one line, not deep inside a job)."""
    bad = next((k for k in _RECORDS if k in config and not isinstance(config[k], dict)), None)
    data = config.get("data", {}) if bad is None else {}

    def ints(v, n: int) -> bool:
        return isinstance(v, list) and len(v) == n and all(_positive_int(x) for x in v)

    checks = {
        "source": lambda v: isinstance(v, str),
        "data_dir": lambda v: v is None or isinstance(v, str),
        "image_shape": lambda v: v is None or ints(v, 3),
        "color": lambda v: v is None or v in ("auto", "gray", "rgb"),
        "resize": lambda v: v is None or ints(v, 2),
    }
    field = next((k for k, ok in checks.items() if k in data and not ok(data[k])), None)
    if bad is not None or field is not None:
        what = f"'{bad}' record" if bad is not None else f"data record's '{field}'"
        raise ModelFileError(f"{cfg_path} is damaged: its {what} is malformed")


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31


def load(path: str | os.PathLike):
    """Rebuild a saved model through the registry: a run folder or its model.safetensors.

    Only safetensors and JSON are read; pickles and ``.pt`` files are refused unopened.
    """
    from ..data.scaling import Scaler

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no such run or model file: {path}")
    weights = path / MODEL_FILE if path.is_dir() else path
    if path.is_dir() and not weights.exists() and (path / CHECKPOINT_FILE).exists():
        raise ModelFileError(
            f"{path} has not finished its first epoch: there are no trained weights to use; "
            f"continue it with: aekit train --resume --out {path}"
        )
    _check_safetensors(weights)
    config = read_config(path)
    if "model" not in config:
        raise ModelFileError(f"{path}: config.json has no 'model' entry")
    model = build_from_record(config["model"])
    tensors, _ = read_tensors(weights)
    try:
        model.load_state_dict(upgrade_state_dict(tensors))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelFileError(f"{weights} does not match its config.json: {first}") from None
    if "scaler" in config:
        model.scaler = Scaler.from_dict(config["scaler"])
    if "units" in config:  # runs written before the record load unchecked
        from ..data.units import Units

        model.units = Units.from_dict(config["units"])
    model.eval()
    return model


# ---- training checkpoints -------------------------------------------------------------------


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
    from ..training.config import TrainState

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
