"""The training job: data -> scaler -> model -> the one loop -> run directory.

This is what ``aekit train`` and :func:`aekit.train` call; the CLI only parses arguments. The
run directory's files are written by :class:`aekit.io.rundir.RunWriter`, a callback of the
loop; ``--resume`` rebuilds everything from the directory and continues exactly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, default_scaler_kind, load_dataset, train_val_split
from ..errors import ConfigError, ModelFileError
from ..io import checkpoint as ckpt
from ..io.rundir import RunWriter, load_best, write_figures
from ..nn import build_model, model_spec
from ..training import Callback, TrainConfig, TrainState, fit
from ..training.strategy import check_device


@dataclass
class RunResult:
    """What :func:`train` returns: the trained model, where the run went, and its history."""

    model: torch.nn.Module
    out: Path
    state: TrainState


def resolve_output_activation(model: str, requested: str | None, X: np.ndarray) -> str:
    """The output activation to build ``model`` with.

    An explicit choice wins; 'auto' (or None) keeps what the preset fixes (``linear`` is
    identity everywhere), else follows seed 000's note: sigmoid when the scaled data lie in
    [0, 1], identity otherwise.
    """
    if requested not in (None, "auto"):
        return requested
    preset = model_spec(model).defaults.get("output_activation")
    if preset is not None:
        return preset
    return "sigmoid" if X.min() >= 0 and X.max() <= 1 else "identity"


def train(
    data: str | os.PathLike | np.ndarray = "digits",
    *,
    out: str | os.PathLike,
    model: str = "dense",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    scale: str | None = None,
    val_fraction: float = 0.1,
    resume: bool = False,
    progress: bool = False,
    device: str | None = "auto",
    model_options: dict[str, Any] | None = None,
    **train_options: Any,
) -> RunResult:
    """Train a registered model on ``data`` and write the run directory ``out``.

    ``model_options`` are config fields of the model (latent_dim, hidden, activation,
    output_activation, tied, loss, ...); ``train_options`` are :class:`TrainConfig` fields
    (epochs, batch_size, optimizer, lr, seed, patience, engine, precision). ``device`` is
    where to train ("auto": CUDA when available, else the CPU); it is not stored, so a run
    resumes on any device. With ``resume=True`` every setting comes from ``out/config.json``
    except ``epochs``, which may be raised to train longer. The returned model is on the CPU.
    """
    out = Path(out)
    if resume:
        return _resume(out, data_dir, progress, train_options.get("epochs"), device)
    if (out / ckpt.CHECKPOINT_FILE).exists() or (out / ckpt.MODEL_FILE).exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or pick --out")
    config = TrainConfig(**train_options)
    if config.engine == "torch":
        check_device(device, config.precision)  # before anything is written
    ds = load_dataset(data, data_dir=data_dir, split="train", limit=limit)
    X_train, X_val, scaler = _split_and_scale(ds, val_fraction, config.seed, scale)
    options = dict(model_options or {})
    options["output_activation"] = resolve_output_activation(
        model, options.get("output_activation"), X_train
    )
    if options.get("image_shape") is None and ds.image_shape is not None:
        options["image_shape"] = tuple(ds.image_shape)  # conv models and the ssim loss fold rows
    torch.manual_seed(config.seed)
    net = build_model(model, ds.X.shape[1], **options)
    net.scaler = scaler
    source = data if isinstance(data, str | os.PathLike) else "<array>"
    extra = {
        "data": {
            "source": str(source),
            "data_dir": None if data_dir is None else str(data_dir),
            "limit": limit,
            "val_fraction": val_fraction,
            "image_shape": list(ds.image_shape) if ds.image_shape else None,
            "n_train": int(len(X_train)),
            "n_val": 0 if X_val is None else int(len(X_val)),
        },
        "training": asdict(config),
    }
    if config.engine == "numpy":  # refuse what the engine cannot train before writing anything
        from ..backends.numpy import check_representable

        check_representable(net)
    ckpt.save(net, out, extra)  # config.json and initial weights, before the first epoch
    return _fit_run(net, False, config, out, X_train, X_val, ds, progress, device)


def _split_and_scale(ds: Dataset, val_fraction: float, seed: int, scale: str | None):
    X_train, X_val = train_val_split(ds.X, val_fraction, seed)
    scaler = Scaler.fit(X_train, scale or default_scaler_kind(ds), max_value=ds.max_value)
    X_val = None if X_val is None else scaler.transform(X_val)
    return scaler.transform(X_train), X_val, scaler


def _resume(out: Path, data_dir, progress: bool, epochs: int | None, device) -> RunResult:
    cfg = ckpt.read_config(out)
    if not (out / ckpt.CHECKPOINT_FILE).is_file():
        raise ModelFileError(f"{out} has no {ckpt.CHECKPOINT_FILE} to resume from")
    try:
        d, training = cfg["data"], dict(cfg["training"])
    except KeyError as e:
        raise ModelFileError(f"{out}/config.json lacks {e}; it was not written by train") from None
    if d["source"] == "<array>":
        raise ConfigError("a run trained on an in-memory array cannot be resumed from the CLI")
    if epochs is not None:
        training["epochs"] = epochs
    config = TrainConfig(**training)
    if config.engine == "torch":
        check_device(device, config.precision)
    ds = load_dataset(d["source"], data_dir=data_dir or d["data_dir"], limit=d["limit"])
    net = ckpt.build_from_record(cfg["model"])
    net.scaler = Scaler.from_dict(cfg["scaler"])
    X_train, X_val = train_val_split(ds.X, d["val_fraction"], config.seed)
    X_train = net.scaler.transform(X_train)
    X_val = None if X_val is None else net.scaler.transform(X_val)
    if epochs is not None:
        cfg["training"] = asdict(config)
        ckpt.write_json(out / ckpt.CONFIG_FILE, cfg)
    return _fit_run(net, True, config, out, X_train, X_val, ds, progress, device)


class _RestoreCheckpoint(Callback):
    """Loads the checkpoint once the loop has put the model and its optimiser on the device."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_start(self, loop) -> None:
        loop.state = ckpt.load_checkpoint(self.path, loop.model, loop.optimizer)


def _fit_run(net, resume: bool, config, out: Path, X_train, X_val, ds, progress, device):
    """Fit with the run directory's writer; the model comes back with its best weights."""
    writer = RunWriter(out)
    callbacks: list[Callback] = [writer]
    if resume:
        callbacks.insert(0, _RestoreCheckpoint(out / ckpt.CHECKPOINT_FILE))
    state = TrainState()
    try:
        state = fit(
            net,
            X_train,
            X_val,
            config,
            callbacks=callbacks,
            progress=progress,
            device=device if config.engine == "torch" else None,
        )
    finally:
        net.cpu()
        if writer.history:  # also when training stopped on an error: the epochs before it
            X_show = X_val if X_val is not None else X_train
            write_figures(out, writer.history, net, X_show, ds.image_shape)
    load_best(out, net)  # the run's model is its best epoch
    return RunResult(net, out, state)
