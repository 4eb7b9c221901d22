"""Continuing a run: which settings ``--resume`` may change, and finding the run's data again.

A resumed run must continue the same training, so settings that shape the model or the maths
of the steps (the model and its parts, batch size, optimiser, seed, engine, precision, scaling,
the validation split) may be given only with the values the run already has; a different one
is refused with one line. ``epochs``, ``lr``, ``patience``, ``min_delta`` and ``cuda_graphs``
may change (the new values are stored in config.json). The data may move: a new ``data`` path
or ``data_dir`` is accepted when the values are the ones the run was trained on (their sha256
fingerprint); different data are refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, load_dataset, train_val_split
from ..data.units import Units
from ..errors import ConfigError, DataError, ModelFileError
from ..io import checkpoint as ckpt
from ..training import TrainConfig
from ..training.distributed import is_writer
from .fitting import reading_options

CHANGEABLE = ("epochs", "lr", "patience", "min_delta", "cuda_graphs")


@dataclass
class ResumeJob:
    net: Any
    config: TrainConfig
    split: tuple  # (X_train, X_val or None, scaler)
    image_shape: tuple | None
    restore: bool  # False: the run never reached its first checkpoint and starts over


def prepare_resume(out: Path, *, data, data_dir, model, limit, scale, val_fraction,
                   image_shape, model_options, train_options) -> ResumeJob:  # fmt: skip
    """Check the request against the run in ``out`` and rebuild model, config and data."""
    cfg = ckpt.read_config(out)
    # no checkpoint: stopped before training began; the stored settings start it over
    restore = (out / ckpt.CHECKPOINT_FILE).is_file()
    if not restore and (out / ckpt.MODEL_FILE).exists():
        raise ModelFileError(f"{out} has no {ckpt.CHECKPOINT_FILE} to resume from")
    try:
        stored_data, training, record = dict(cfg["data"]), dict(cfg["training"]), cfg["model"]
    except KeyError as e:
        raise ModelFileError(f"{out}/config.json lacks {e}; it was not written by train") from None
    conflicts = []
    if model is not None and model != record["name"]:
        conflicts.append(f"model (the run has {record['name']}, not {model})")
    conflicts += _model_conflicts(record["config"], model_options or {})
    for key, value in train_options.items():
        if key not in CHANGEABLE and key in training and value != training[key]:
            conflicts.append(f"{key} (the run has {training[key]!r}, not {value!r})")
    for key, value in (("limit", limit), ("val_fraction", val_fraction)):
        if value is not None and value != stored_data.get(key):
            conflicts.append(f"{key} (the run has {stored_data.get(key)!r}, not {value!r})")
    stored_shape = stored_data.get("image_shape")
    if image_shape is not None and stored_shape and list(image_shape) != stored_shape:
        conflicts.append(f"image_shape (the run has {stored_shape}, not {list(image_shape)})")
    scaler = Scaler.from_dict(cfg["scaler"])
    if scale is not None and scale != scaler.kind:
        conflicts.append(f"scale (the run has {scaler.kind}, not {scale})")
    if conflicts:
        raise ConfigError(
            "--resume continues the same training and cannot change "
            + "; ".join(conflicts)
            + "; drop those flags, or start a new run with another --out"
        )
    training.update({k: v for k, v in train_options.items() if k in CHANGEABLE})
    config = TrainConfig(**training)
    if stored_data.get("stream"):
        from .streamed import find_streamed

        ds, split = None, find_streamed(stored_data, data, out, config.seed, scaler)
    else:
        ds = _find_data(stored_data, data, data_dir, out)
        X_train, X_val = train_val_split(ds.X, stored_data["val_fraction"], config.seed)
        X_val = None if X_val is None else scaler.transform(X_val)
        split = (scaler.transform(X_train), X_val, scaler)
    torch.manual_seed(config.seed)  # the initial weights of a run started over, as train made them
    net = ckpt.build_from_record(record)
    net.scaler = scaler
    if "units" in cfg:
        net.units = Units.from_dict(cfg["units"])
    if (training != cfg["training"] or stored_data != cfg["data"]) and is_writer():
        cfg["training"], cfg["data"] = asdict(config), stored_data
        ckpt.write_json(out / ckpt.CONFIG_FILE, cfg)
    if ds is not None:
        shape = ds.image_shape
    else:
        shape = tuple(stored_shape) if stored_shape else None
    return ResumeJob(net, config, split, shape, restore)


def training_rows(run, data=None, data_dir=None) -> np.ndarray:
    """The scaled rows a run trained on: its data found again (checked by fingerprint) and
    split as training split it (seed, val_fraction), the validation rows left out."""
    cfg = ckpt.read_config(run)
    stored, training = dict(cfg["data"]), cfg["training"]
    if stored.get("stream"):
        raise ConfigError("this run streamed its data: pass the rows to fit on (data=)")
    ds = _find_data(stored, data, data_dir, Path(run))
    X_train, _ = train_val_split(ds.X, stored["val_fraction"], training["seed"])
    return Scaler.from_dict(cfg["scaler"]).transform(X_train)


def _model_conflicts(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    out = []
    for key, value in given.items():
        if value is None or (key == "output_activation" and value == "auto"):
            continue
        have = stored.get(key)
        same = _norm(have) == _norm(value)
        if not same:
            out.append(f"{key} (the run has {have!r}, not {value!r})")
    return out


def _norm(value):
    return list(value) if isinstance(value, tuple | list) else value


def _find_data(stored: dict[str, Any], data, data_dir, out: Path) -> Dataset:
    """Load the run's data (from a new place when given) and check it is the same data."""
    source = stored["source"] if data is None else data
    if isinstance(source, str) and source == "<array>":
        raise ConfigError(
            "this run was trained on an in-memory array: pass the same array (data=) to resume"
        )
    folder = data_dir if data_dir is not None else stored.get("data_dir")
    shape = stored.get("image_shape")
    named = isinstance(source, str) and source.lower() in ("digits", "mnist", "fashion-mnist")
    try:
        ds = load_dataset(
            source,
            data_dir=folder,
            split="train",
            limit=stored.get("limit"),
            image_shape=None if named or shape is None else tuple(shape),
            **reading_options(stored),
        )
    except DataError as e:
        raise DataError(
            f"{e} (resuming {out}: if the data moved, pass --data and --data-dir to say where)"
        ) from None
    from .fitting import fingerprint

    expected = stored.get("sha256")
    if expected is not None and fingerprint(ds.X) != expected:
        raise DataError(
            f"the data at {source} are not the data {out} was trained on (their sha256 "
            "differs); resume with the original data, or start a new run with another --out"
        )
    if data is not None and not isinstance(data, str | Path):
        stored["source"] = "<array>"
    elif data is not None:
        stored["source"] = source if named else str(Path(source).resolve())
    if data_dir is not None:
        stored["data_dir"] = str(Path(data_dir).resolve())
    return ds
