"""Save and load models: safetensors weights and a JSON config, never pickle.

A model folder (a run directory, :class:`aekit.io.rundir.Run`, which names its files) holds
the weights and ``config.json`` (aekit version, model name and config, scaler, training
settings); the model is rebuilt through the registry from its record. The files' formats live
below: :mod:`aekit.io.tensors` (safetensors with a checksum) and :mod:`aekit.io.state` (the
training checkpoint), both re-exported here. Every file is written to a temporary name in the
same folder and renamed into place, so a process killed at any instant leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MemoryLimitError, ModelFileError
from ..nn.registry import check_fits, model_spec
from .files import write_json  # noqa: F401 - named here by callers
from .rundir import Run
from .state import TrainState, load_checkpoint, save_checkpoint  # noqa: F401 - their old home
from .tensors import (  # noqa: F401 - their old home
    CHECKSUM_KEY,
    check_safetensors,
    read_tensors,
    save_tensors,
    tensors_digest,
    upgrade_state_dict,
)

# the run's names (aekit.io.rundir.Run spells them), kept for code that reads them here
MODEL_FILE = Run.BEST
CONFIG_FILE = Run.CONFIG
CHECKPOINT_FILE = Run.CHECKPOINT


def model_record(model) -> dict[str, Any]:
    """The JSON description that rebuilds ``model`` through the registry."""
    return {"name": model.name, "config": model.config.to_dict()}


# what a damaged record raises while the model is built (the last three: sizes torch refuses)
_BAD_RECORD = (KeyError, TypeError, ValueError, AttributeError, ConfigError, RuntimeError,
               OverflowError, MemoryError)  # fmt: skip


def config_from_record(record: dict[str, Any]):
    """The model config of :func:`model_record`'s output (flat names of earlier versions
    read too), or :class:`ModelFileError`."""
    return _from_record(record)[1]


def build_from_record(record: dict[str, Any]):
    """Rebuild an (untrained) model from :func:`model_record`'s output."""
    spec, config = _from_record(record)
    try:
        return spec.cls(config, name=record["name"])  # a value of the wrong type fails here
    except _BAD_RECORD as e:
        raise ModelFileError(f"the model config is invalid: {_first_line(e)}") from None


def _from_record(record):
    try:
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise TypeError(f"expected {{'name': ..., 'config': {{...}}}}, got {record!r:.80}")
        spec = model_spec(record["name"])
        config = spec.cls.config_class.from_values(**record["config"])  # old flat names too
        check_fits(spec.cls, config, record["name"])  # before a size a damaged file names
        return spec, config
    except MemoryLimitError as e:  # the file names sizes this machine cannot hold
        raise MemoryLimitError(f"the model config is invalid: {e}") from None
    except _BAD_RECORD as e:
        raise ModelFileError(f"the model config is invalid: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip() or type(e).__name__).splitlines()[0][:300]


def write_config(model, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` (aekit version, model record, scaler, ``extra``) into ``path``."""
    from .. import __version__

    config = {"aekit_version": __version__, "model": model_record(model)}
    if model.scaler is not None:
        config["scaler"] = model.scaler.to_dict()
    if getattr(model, "units", None) is not None:
        config["units"] = model.units.to_dict()
    config.update(extra or {})
    Run(path).write_config(config)
    return Path(path)


def save(model, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into the folder ``path``.

    ``extra`` entries (training settings, data description) are stored in config.json too.
    """
    Run(path).write_best(model.state_dict())
    return write_config(model, path, extra)


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json as a dict, with clear errors for a missing or broken file."""
    path = Path(path)
    return Run(path if path.is_dir() else path.parent).read_config(named=path)


def load(path: str | os.PathLike):
    """Rebuild a saved model through the registry: a run folder or its model.safetensors.

    Only safetensors and JSON are read; pickles and ``.pt`` files are refused unopened.
    """
    from ..data.scaling import Scaler

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no such run or model file: {path}")
    run = Run(path)
    weights = run.best_file if path.is_dir() else path
    if path.is_dir() and not weights.exists() and run.checkpoint_file.exists():
        raise ModelFileError(
            f"{path} has not finished its first epoch: there are no trained weights to use; "
            f"continue it with: aekit train --resume --out {path}"
        )
    check_safetensors(weights)
    config = read_config(path)
    if "model" not in config:
        raise ModelFileError(f"{path}: config.json has no 'model' entry")
    model = build_from_record(config["model"])
    tensors, _ = read_tensors(weights)
    try:
        model.load_state_dict(upgrade_state_dict(tensors))
    except RuntimeError as e:
        # torch's message: "Error(s) in loading state_dict for X:" then one line per tensor
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        first = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]
        first = first if len(first) <= 300 else first[:297] + "..."
        raise ModelFileError(f"{weights} does not match its config.json: {first}") from None
    if "scaler" in config:
        model.scaler = Scaler.from_dict(config["scaler"])
    if "units" in config:  # runs written before the record load unchecked
        from ..data.units import Units

        model.units = Units.from_dict(config["units"])
    model.eval()
    return model
