"""The training job: data -> scaler -> model -> the one loop -> run directory.

This is what ``aekit train`` and :func:`aekit.train` call; the CLI only parses arguments. The
run directory's files are written by :class:`aekit.io.rundir.RunWriter`, a callback of the
loop, under :class:`aekit.io.rundir.RunLock` (one writer per run). ``resume=True`` rebuilds
everything from the directory and continues exactly; see :mod:`aekit.apps.resume` for which
settings it may change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, default_scaler_kind, load_dataset, train_val_split
from ..data.stream import should_stream
from ..errors import ConfigError
from ..io.rundir import RunLock, RunWriter, holds_run, load_best
from ..nn import build_model, model_spec
from ..training import Callback, TrainConfig, TrainState, fit
from ..training.distributed import is_writer
from ..training.strategy import check_device
from ..views.figures import write_run_figures

DEFAULTS = {"data": "digits", "model": "dense", "val_fraction": 0.1}


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
    data: str | os.PathLike | np.ndarray | None = None,
    *,
    out: str | os.PathLike,
    model: str | None = None,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    scale: str | None = None,
    val_fraction: float | None = None,
    image_shape: tuple[int, int, int] | None = None,
    stream: bool | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str | None = "auto",
    model_options: dict[str, Any] | None = None,
    **train_options: Any,
) -> RunResult:
    """Train a registered model on ``data`` and write the run directory ``out``.

    ``model_options`` are config fields of the model (latent_dim, hidden, activation,
    output_activation, tied, loss, ...); ``train_options`` are :class:`TrainConfig` fields
    (epochs, batch_size, optimizer, lr, seed, patience, engine, precision); None means the
    default (``data`` "digits", ``model`` "dense", ``val_fraction`` 0.1). ``image_shape``
    (C, H, W) folds the rows of a data file into images (conv models). ``stream`` reads a
    ``.npy`` file or a folder of ``.npy`` shards block by block instead of loading it (None:
    when the data are a folder, or a file over 1 GiB). ``device`` is where to
    train ("auto": CUDA when available, else the CPU); it is not stored, so a run resumes on
    any device. With ``resume=True`` the run continues from ``out``: epochs, lr, patience and
    the data's location may change, anything else given must equal the run's
    (:mod:`aekit.apps.resume`). The returned model is on the CPU, with the best weights.

    Raises
    ------
    ConfigError, DataError, ModelFileError
        A bad setting, bad data, or a run that cannot be continued; nothing is written.
    RunLockedError
        Another process is writing ``out``.
    FileSystemError
        An operating-system error (permissions, a full disk), naming the path.
    """
    out = _check_out(out)
    train_options = {k: v for k, v in train_options.items() if v is not None}
    # under torchrun every rank trains and only rank 0 writes (and holds the lock)
    with RunLock(out) if is_writer() else contextlib.nullcontext():
        if resume:
            from .resume import prepare_resume

            job = prepare_resume(
                out,
                data=data,
                data_dir=data_dir,
                model=model,
                limit=limit,
                scale=scale,
                val_fraction=val_fraction,
                image_shape=image_shape,
                model_options=model_options,
                train_options=train_options,
            )
            check_device(device if job.config.engine == "torch" else "cpu", job.config.precision)
            return _fit_run(
                job.net, job.config, out, job.image_shape, job.split, progress, device,
                restore=job.restore,
            )  # fmt: skip
        if holds_run(out):
            raise ConfigError(
                f"{out} already holds a run; pass --resume to continue it or pick another --out"
            )
        if should_stream(data, stream):
            from .streamed import new_streamed_run

            return new_streamed_run(
                out, data, model, scale, val_fraction, image_shape, model_options,
                train_options, progress, device,
            )  # fmt: skip
        return _new_run(
            out, data, model, data_dir, limit, scale, val_fraction, image_shape,
            model_options, train_options, progress, device,
        )  # fmt: skip


def _check_out(out) -> Path:
    if out is None or str(out).strip() == "":
        raise ConfigError("--out must name the run's folder, e.g. runs/my-run")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; pick another --out")
    return out


def _new_run(out, data, model, data_dir, limit, scale, val_fraction, image_shape,
             model_options, train_options, progress, device) -> RunResult:  # fmt: skip
    data = DEFAULTS["data"] if data is None else data
    model = model or DEFAULTS["model"]
    val_fraction = DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
    config = TrainConfig(**train_options)
    if config.engine == "torch":
        check_device(device, config.precision)  # before anything is written
    ds = load_dataset(data, data_dir=data_dir, split="train", limit=limit, image_shape=image_shape)
    split = split_and_scale(ds, val_fraction, config.seed, scale)
    options = dict(model_options or {})
    options["output_activation"] = resolve_output_activation(
        model, options.get("output_activation"), split[0]
    )
    if options.get("image_shape") is None and ds.image_shape is not None:
        options["image_shape"] = tuple(ds.image_shape)  # conv models and the ssim loss fold rows
    torch.manual_seed(config.seed)
    net = build_model(model, ds.X.shape[1], **options)
    net.scaler = split[2]
    if config.engine == "numpy":  # refuse what the engine cannot train before writing anything
        from ..backends.numpy import check_representable

        check_representable(net)
    extra = {"data": data_record(data, data_dir, limit, val_fraction, ds, split), "training": {}}
    extra["training"] = asdict(config)
    return _fit_run(net, config, out, ds.image_shape, split, progress, device, config_json=extra)


def data_record(data, data_dir, limit, val_fraction, ds: Dataset, split) -> dict[str, Any]:
    """How to find the run's data again: absolute paths, and a fingerprint of the values."""
    if isinstance(data, str | os.PathLike):
        named = str(data).lower().replace("_", "-") in ("digits", "mnist", "fashion-mnist")
        source = str(data) if named else str(Path(data).resolve())
    else:
        source = "<array>"
    return {
        "source": source,
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "limit": limit,
        "val_fraction": val_fraction,
        "image_shape": list(ds.image_shape) if ds.image_shape else None,
        "n_train": int(len(split[0])),
        "n_val": 0 if split[1] is None else int(len(split[1])),
        "sha256": fingerprint(ds.X),
    }


def fingerprint(X: np.ndarray) -> str:
    """sha256 of the raw values and their shape: the same data, or not."""
    h = hashlib.sha256(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).data)
    return h.hexdigest()


def split_and_scale(ds: Dataset, val_fraction: float, seed: int, scale: str | None):
    """(X_train, X_val or None, scaler): the seeded split, the scaler fitted on the train part."""
    X_train, X_val = train_val_split(ds.X, val_fraction, seed)
    scaler = Scaler.fit(X_train, scale or default_scaler_kind(ds), max_value=ds.max_value)
    X_val = None if X_val is None else scaler.transform(X_val)
    return scaler.transform(X_train), X_val, scaler


class _RestoreCheckpoint(Callback):
    """Loads the checkpoint once the loop has put the model and its optimiser on the device."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_start(self, loop) -> None:
        from ..io import checkpoint as ckpt

        loop.state = ckpt.load_checkpoint(self.path, loop.model, loop.optimizer, lr=loop.config.lr)


def _fit_run(net, config, out: Path, image_shape, split, progress, device, *, config_json=None,
             restore: bool = False) -> RunResult:  # fmt: skip
    """Fit with the run directory's writer; the model comes back with its best weights.

    ``config_json`` is config.json's content for a new run (written when training starts);
    ``restore`` loads the checkpoint first (resuming).
    """
    from ..io import checkpoint as ckpt

    X_train, X_val, _ = split
    writes = is_writer()
    writer = RunWriter(out, config=config_json)
    callbacks: list[Callback] = [writer] if writes else []
    if restore:
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
        if writes and writer.history:  # also when training stopped on an error
            X_show = X_val if X_val is not None else X_train
            write_run_figures(out, writer.history, net, X_show, image_shape)
    if writes:
        load_best(out, net)  # the run's model is its best epoch
    return RunResult(net, out, state)
