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

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, load_dataset
from ..data.crops import run_split, training_crops
from ..data.units import Units
from ..errors import ConfigError, DataError, ModelFileError
from ..io import checkpoint as ckpt
from ..io.rundir import Run
from ..training import TrainConfig
from ..training.devices import check_device
from ..training.distributed import is_writer
from .fitting import RunSpec, build_strategy, entropy_start, reading_options

CHANGEABLE = ("epochs", "lr", "patience", "min_delta", "cuda_graphs")


def prepare_resume(out: Path, *, data, data_dir, model, limit, scale, val_fraction, image_shape,
                   model_options, train_options, device="auto", patch=None) -> RunSpec:  # fmt: skip
    """Check the request against the run in ``out`` and rebuild its :class:`RunSpec` (model,
    config, data, strategy): what :func:`aekit.apps.fitting.fit_run` continues."""
    run = Run(out)
    cfg = run.read_config()
    # no checkpoint: stopped before training began; the stored settings start it over
    restore = run.has_checkpoint()
    if not restore and run.best_file.exists():
        raise ModelFileError(f"{out} has no {Run.CHECKPOINT} to resume from")
    try:
        stored_data, training, record = dict(cfg["data"]), dict(cfg["training"]), cfg["model"]
        scaler = Scaler.from_dict(cfg["scaler"])
    except KeyError as e:
        raise ModelFileError(f"{run.config_file} lacks {e}; it was not written by train") from None
    given = requested_records(model, model_options, train_options, limit, val_fraction,
                              image_shape, scale)  # fmt: skip
    conflicts = changed_fields(run_records(cfg), given, may_change=CHANGEABLE)
    if patch is not None and patch != stored_data.get("patch"):
        conflicts.append(f"patch (the run has {stored_data.get('patch')}, not {patch})")
    if conflicts:
        raise ConfigError(
            "--resume continues the same training and cannot change "
            + "; ".join(conflicts)
            + "; drop those flags, or start a new run with another --out"
        )
    training.update({k: v for k, v in train_options.items() if k in CHANGEABLE})
    config = TrainConfig(**training)
    check_device(device if config.engine == "torch" else "cpu", config.precision)
    sampler = None
    if stored_data.get("stream"):
        from .streamed import find_streamed

        ds, split = None, find_streamed(stored_data, data, out, config.seed, scaler)
    else:
        ds = _find_data(stored_data, data, data_dir, out)
        crops = bool(stored_data.get("crops"))
        train, val = run_split(ds, stored_data["val_fraction"], config.seed, crops)
        X_val = None if val is None else scaler.transform(ds.X[val])
        split = (scaler.transform(ds.X[train]), X_val, scaler)
        if crops:  # the same crops, epoch by epoch, as the run drew them
            sampler = training_crops(ds, train, scaler.transform)
    torch.manual_seed(config.seed)  # the initial weights of a run started over, as train made them
    net = ckpt.build_from_record(record)
    net.scaler = scaler
    if "units" in cfg:
        net.units = Units.from_dict(cfg["units"])
    # started over before its first checkpoint: from its warm start, as train began it
    warm = not restore and run.has_start()
    if warm:
        net.load_state_dict(run.read_start())
    elif not restore and (cfg.get("init") or {}).get("entropy_start"):  # a codec's data start
        entropy_start(net, split[0], config.seed)
    if (training != cfg["training"] or stored_data != cfg["data"]) and is_writer():
        cfg["training"], cfg["data"] = asdict(config), stored_data
        run.write_config(cfg)
    if ds is not None:
        shape = ds.image_shape
    else:
        stored_shape = stored_data.get("image_shape")
        shape = tuple(stored_shape) if stored_shape else None
    strategy, where = build_strategy(config, device)
    return RunSpec(net, config, split, strategy, where, shape, None, restore, warm, sampler)


def run_records(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields of a run's config.json that a resume is held against, by record: the
    model's name and config, the training settings (a field the run predates has its
    default, as the resumed :class:`TrainConfig` will), the data's rows and the scaling."""
    data = cfg["data"]
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {
        "model": {"model": cfg["model"].get("name"), **_model_settings(cfg["model"])},
        "training": {**defaults, **cfg["training"]},
        "data": {k: data.get(k) for k in ("limit", "val_fraction", "image_shape")},
        "scaler": {"scale": cfg["scaler"]["kind"]},
    }


def _model_settings(record) -> dict[str, Any]:
    """A stored model's settings under the users' names (any version's config.json); a
    record that builds no config is compared as it is (the model's rebuilding refuses it)."""
    try:
        return ckpt.config_from_record(record).flat()
    except ModelFileError:
        return dict(record.get("config") or {}) if isinstance(record, dict) else {}


def requested_records(model, model_options, train_options, limit, val_fraction, image_shape,
                      scale) -> dict[str, dict[str, Any]]:  # fmt: skip
    """What a resume asks for, in :func:`run_records`' form (None: not asked)."""
    options = {k: v for k, v in (model_options or {}).items()
               if not (k == "output_activation" and v == "auto")}  # fmt: skip
    return {
        "model": {"model": model, **options},
        "training": dict(train_options or {}),
        "data": {"limit": limit, "val_fraction": val_fraction, "image_shape": image_shape},
        "scaler": {"scale": scale},
    }


def changed_fields(stored: dict[str, dict[str, Any]], given: dict[str, dict[str, Any]],
                   may_change=()) -> list[str]:  # fmt: skip
    """``"field (the run has X, not Y)"`` for every field ``given`` (records of fields, None:
    not given) sets to another value than ``stored``'s same record, except ``may_change``."""
    out = []
    for name, record in given.items():
        have = stored.get(name, {})
        for key, value in record.items():
            if value is None or key in may_change:
                continue
            if _norm(have.get(key)) != _norm(value):
                out.append(f"{key} (the run has {_shown(have.get(key))}, not {_shown(value)})")
    return out


def _norm(value):
    return list(value) if isinstance(value, tuple | list) else value


def _shown(value) -> str:
    if isinstance(value, str) or hasattr(value, "kind"):  # a Noise by its text form
        return str(value)
    return repr(_norm(value))


def training_rows(run, data=None, data_dir=None) -> np.ndarray:
    """The scaled rows a run trained on: its data found again (checked by fingerprint) and
    split as training split it (seed, val_fraction), the validation rows left out."""
    cfg = ckpt.read_config(run)
    stored, training = dict(cfg["data"]), cfg["training"]
    if stored.get("stream"):
        raise ConfigError("this run streamed its data: pass the rows to fit on (data=)")
    ds = _find_data(stored, data, data_dir, Path(run))
    train, _ = run_split(ds, stored["val_fraction"], training["seed"], bool(stored.get("crops")))
    return Scaler.from_dict(cfg["scaler"]).transform(ds.X[train])


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
