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
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, default_scaler_kind, load_dataset, train_val_split
from ..data.stream import should_stream
from ..data.units import Units
from ..errors import ConfigError
from ..io import checkpoint as ckpt
from ..io.rundir import RunLock, RunWriter, check_resume, holds_run, load_best
from ..nn import build_model, model_spec
from ..nn.init import WarmStart, pca_warm_start, warm_start_blocker
from ..training import Callback, TrainConfig, TrainState, fit
from ..training.config import default_budget
from ..training.distributed import is_writer
from ..training.loggers import N_IMAGES, RunInfo, RunLogger
from ..training.strategy import check_device, resolve_device
from ..views.figures import write_run_figures
from .baseline import START_FILE, KeepStart, keep_or_revert, start_loss, write_check

DEFAULTS = {"data": "digits", "model": "dense", "val_fraction": 0.1, "init": "auto"}
INITS = ("auto", "pca", "random")


@dataclass
class RunResult:
    """What :func:`train` returns: the trained model, where the run went, and its history."""

    model: torch.nn.Module
    out: Path
    state: TrainState
    check: dict[str, Any] | None = None  # held-out errors beside PCA's (see pca_check)
    baseline: dict[str, Any] | None = None  # the final model beside PCA of the same rows


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
    color: str | None = None,
    resize: tuple[int, int] | None = None,
    stream: bool | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str | None = "auto",
    init: str | None = None,
    model_options: dict[str, Any] | None = None,
    callbacks: Iterable[Callback] | None = None,
    **train_options: Any,
) -> RunResult:
    """Train a registered model on ``data`` and write the run directory ``out``.

    ``model_options`` are config fields of the model (latent_dim, hidden, activation,
    output_activation, tied, loss, ...); ``train_options`` are :class:`TrainConfig` fields
    (epochs, batch_size, optimizer, lr, seed, patience, engine, precision); None means the
    default (``data`` "digits", ``model`` "dense", ``val_fraction`` 0.1). Without ``epochs``
    the budget is :func:`aekit.training.config.default_budget`'s: a fixed number of optimiser
    steps whatever the data's size, with early stopping on the validation split (an explicit
    ``epochs`` means epochs, with ``patience`` as given). ``init`` "auto" (default) starts a
    model that can represent PCA exactly (:mod:`aekit.nn.init`: dense, linear code and output,
    squared error) from PCA's solution on the scaled training rows, and then an ``"auto"``
    output activation is the identity; "pca" insists on it, "random" never does it. The start
    competes with the epochs and stays unless the trained model beats it on the validation
    rows by more than two standard errors (:mod:`aekit.apps.baseline`); a start that stays
    is refitted on every training row, validation rows included, before it is written. After
    training, the best model's held-out error is compared with PCA's at the same code size,
    in the data's units (``RunResult.check``, the run's ``summary.json``), and the final
    model with PCA fitted on the same rows (``RunResult.baseline``, ``pca_baseline``).
    ``image_shape`` (C, H, W) folds the rows of a data file into images (conv models).
    ``color`` ("auto", "gray", "rgb") and ``resize`` ((H, W)) say how image files are read
    (:mod:`aekit.data.images`); the run records them, and its data's units
    (:mod:`aekit.data.units`), which jobs on new data are checked against. ``stream`` reads a
    ``.npy`` file or a folder of ``.npy`` shards block by block instead of loading it (None:
    when the data are a folder, or a file over 1 GiB). ``device`` is where to
    train ("auto": CUDA when available, else the CPU); it is not stored, so a run resumes on
    any device. With ``resume=True`` the run continues from ``out``: epochs, lr, patience and
    the data's location may change, anything else given must equal the run's
    (:mod:`aekit.apps.resume`). ``callbacks`` are extra :class:`aekit.training.Callback`
    objects, run after the run directory's writer (in every process under torchrun); the
    loggers of :mod:`aekit.training.loggers` (``TensorBoardLogger``, ``MLflowLogger``) among
    them also see the run's settings and folder, and log from rank 0 only. The returned model
    is on the CPU, with the best weights.

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
    extra = _check_callbacks(callbacks)
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
            # started over before its first checkpoint: from its warm start, as train began it
            warm = not job.restore and (out / START_FILE).is_file()
            if warm:
                from ..io.checkpoint import read_tensors

                job.net.load_state_dict(read_tensors(out / START_FILE)[0])
            return _fit_run(
                job.net, job.config, out, job.image_shape, job.split, progress, device,
                restore=job.restore, start_is_candidate=warm, callbacks=extra,
            )  # fmt: skip
        if holds_run(out):
            raise ConfigError(
                f"{out} already holds a run; pass --resume to continue it or pick another --out"
            )
        _say_if_taken_over(out)
        if should_stream(data, stream):
            from .streamed import new_streamed_run

            if "epochs" not in train_options:
                train_options["epochs"] = TrainConfig.epochs  # streamed: epochs, as before
            return new_streamed_run(
                out, data, model, scale, val_fraction, image_shape, model_options,
                train_options, progress, device, {"color": color, "resize": resize},
                callbacks=extra,
            )  # fmt: skip
        return _new_run(
            out, data, model, data_dir, limit, scale, val_fraction, image_shape,
            model_options, train_options, progress, device, init,
            reading={"color": color or "auto", "resize": resize}, callbacks=extra,
        )  # fmt: skip


def _say_if_taken_over(out: Path) -> None:
    """A run stopped before its first epoch leaves files but nothing to resume: say that the
    new run takes the folder over (one warning line), rather than replace them unsaid."""
    import warnings

    left = [n for n in (ckpt.CONFIG_FILE, START_FILE, "metrics.jsonl") if (out / n).exists()]
    if left and is_writer():
        warnings.warn(
            f"{out} holds a run stopped before its first epoch ({', '.join(left)}; nothing to "
            "resume): this run starts it over",
            stacklevel=3,
        )


def _check_out(out) -> Path:
    if out is None or str(out).strip() == "":
        raise ConfigError("--out must name the run's folder, e.g. runs/my-run")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; pick another --out")
    return out


def _new_run(out, data, model, data_dir, limit, scale, val_fraction, image_shape,
             model_options, train_options, progress, device, init=None,
             reading=None, callbacks=()) -> RunResult:  # fmt: skip
    data = DEFAULTS["data"] if data is None else data
    model = model or DEFAULTS["model"]
    val_fraction = DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
    init = _check_init(init)
    auto_budget = "epochs" not in train_options
    config = TrainConfig(**train_options)
    if config.engine == "torch":
        check_device(device, config.precision)  # before anything is written
    reading = reading or {}
    ds = load_dataset(
        data, data_dir=data_dir, split="train", limit=limit, image_shape=image_shape, **reading
    )
    split = split_and_scale(ds, val_fraction, config.seed, scale)
    budget = None
    if auto_budget:
        budget = default_budget(len(split[0]), config.batch_size, config.optimizer)
        config.epochs = budget.epochs
        if "patience" not in train_options and split[1] is not None:
            config.patience = budget.patience
    options = dict(model_options or {})
    if options.get("image_shape") is None and ds.image_shape is not None:
        options["image_shape"] = tuple(ds.image_shape)  # conv models and the ssim loss fold rows
    options["output_activation"] = _output_activation(model, options, split[0], init, ds)
    torch.manual_seed(config.seed)
    net = build_model(model, ds.X.shape[1], **options)
    net.scaler = split[2]
    net.units = Units.fit(
        ds.X, dtype=ds.dtype, max_value=ds.max_value, image=ds.image_shape is not None
    )
    if config.engine == "numpy":  # refuse what the engine cannot train before writing anything
        from ..backends.numpy import check_representable

        check_representable(net)
    warm = WarmStart(False, reason="init random")
    if init != "random":
        warm = pca_warm_start(net, split[0], seed=config.seed, scaler=split[2])
        if init == "pca" and not warm.applied:
            raise ConfigError(f"--init pca cannot start this model from PCA: {warm.reason}")
    extra = {"data": data_record(data, data_dir, limit, val_fraction, ds, split, reading)}
    extra["training"] = asdict(config)
    extra["init"] = warm.to_dict()
    extra["budget"] = budget.to_dict() if budget else {"rule": "epochs", "epochs": config.epochs}
    return _fit_run(
        net, config, out, ds.image_shape, split, progress, device, config_json=extra,
        start_is_candidate=warm.applied, callbacks=callbacks,
    )  # fmt: skip


def _check_init(init: str | None) -> str:
    init = DEFAULTS["init"] if init is None else init
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return init


def _output_activation(model: str, options: dict, X: np.ndarray, init: str, ds) -> str:
    """resolve_output_activation, except that "auto" is the identity when the model can then
    start exactly at PCA's solution (sigmoid(PCA) is not PCA; the start is the guarantee)."""
    requested = options.get("output_activation")
    if init != "random" and requested in (None, "auto"):
        trial = {**options, "output_activation": "identity"}
        try:
            probe = build_model(model, ds.X.shape[1], **trial)
        except ConfigError:  # e.g. a loss that needs a sigmoid output: the old rule decides
            probe = None
        if probe is not None and warm_start_blocker(probe) is None:
            return "identity"
    return resolve_output_activation(model, requested, X)


def data_record(
    data, data_dir, limit, val_fraction, ds: Dataset, split, reading=None
) -> dict[str, Any]:
    """How to find the run's data again: absolute paths, how image files were read (color,
    resize), and a fingerprint of the values."""
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
        **_reading_record(ds, reading or {}),
    }


def _reading_record(ds: Dataset, reading: dict) -> dict[str, Any]:
    """For image files: how they were read (color, resize), for eval and resume."""
    if ds.files is None:
        return {}
    resize = reading.get("resize")
    return {"color": reading.get("color", "auto"), "resize": list(resize) if resize else None}


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


def _check_callbacks(callbacks) -> list[Callback]:
    extra = list(callbacks or ())
    for cb in extra:
        if not isinstance(cb, Callback):
            raise ConfigError(
                f"callbacks takes aekit.training.Callback objects, not {type(cb).__name__}"
            )
    return extra


def _fit_run(net, config, out: Path, image_shape, split, progress, device, *, config_json=None,
             restore: bool = False, start_is_candidate: bool = False,
             callbacks=()) -> RunResult:  # fmt: skip
    """Fit with the run directory's writer; the model comes back with its best weights.

    ``config_json`` is config.json's content for a new run (written when training starts);
    ``restore`` loads the checkpoint first (resuming). ``start_is_candidate``: the untrained
    model (a PCA warm start) competes for the best weights as "epoch 0", so that training
    that never beats it on the validation data keeps it. ``callbacks`` run after the writer;
    the loggers among them hear of the run before the loop and after its folder is complete.
    """
    loggers = [cb for cb in callbacks if isinstance(cb, RunLogger)]
    info = _run_info(net, out, image_shape, split, config_json) if loggers else None
    failed = True
    try:
        for logger in loggers:
            logger.begin_run(info)
        result = _fit_and_write(
            net, config, out, image_shape, split, progress, device, config_json, restore,
            start_is_candidate, list(callbacks),
        )  # fmt: skip
        failed = False
        return result
    finally:
        for logger in loggers:
            logger.end_run(failed)


def _run_info(net, out: Path, image_shape, split, config_json) -> RunInfo:
    """What the loggers are told of the run: its settings, a few validation images; a run
    without ``config_json`` is a --resume (also one that starts over)."""
    from ..io import checkpoint as ckpt

    cfg = ckpt.read_config(out) if config_json is None else {**config_json}
    if config_json is not None:
        cfg["model"] = ckpt.model_record(net)
    settings = {k: cfg[k] for k in ("model", "training", "data", "init", "budget") if k in cfg}
    samples = None
    if image_shape is not None:
        X_show = split[1] if split[1] is not None else split[0]
        first = getattr(X_show, "first_rows", None)  # streamed data: the first rows read
        samples = np.asarray(first(N_IMAGES) if first is not None else X_show[:N_IMAGES])
    shape = tuple(image_shape) if image_shape is not None else None
    return RunInfo(out, settings, shape, samples, resumed=config_json is None)


def _fit_and_write(net, config, out: Path, image_shape, split, progress, device, config_json,
                   restore, start_is_candidate, extra) -> RunResult:  # fmt: skip
    from ..io import checkpoint as ckpt

    X_train, X_val, _ = split
    writes = is_writer()
    writer = RunWriter(out, config=config_json)
    callbacks: list[Callback] = [writer] if writes else []
    if restore:
        where = resolve_device(device) if config.engine == "torch" else "cpu"
        check_resume(out, where, config.precision)  # in every process, before any step
        callbacks.insert(0, _RestoreCheckpoint(out / ckpt.CHECKPOINT_FILE))
    state = TrainState()
    start, keeper = None, None
    if start_is_candidate:  # epoch 0: the start's loss is the one to beat
        start = TrainState(best_loss=start_loss(net, X_train if X_val is None else X_val))
        if writes:
            ckpt.save_tensors(out / START_FILE, net.state_dict())  # resume needs it too
    if writes and (out / START_FILE).is_file():
        keeper = KeepStart(out)
        callbacks.append(keeper)
    callbacks += extra
    try:
        state = fit(
            net,
            X_train,
            X_val,
            config,
            state=start,
            callbacks=callbacks,
            progress=progress,
            device=device if config.engine == "torch" else None,
        )
    finally:
        net.cpu()
        if writes and writer.history:  # also when training stopped on an error
            X_show = X_val if X_val is not None else X_train
            write_run_figures(out, writer.history, net, X_show, image_shape)
    check, baseline, kept = None, None, None
    if writes:
        load_best(out, net)  # the run's model is its best epoch
        if keeper is not None and X_val is not None:
            kept = keep_or_revert(out, net, keeper.weights, X_val)
        init = ckpt.read_config(out).get("init")
        # a kept PCA start is refitted on every training row here (see write_check)
        check, baseline = write_check(out, net, split, kept, init, seed=config.seed)
    return RunResult(net, out, state, check, baseline)
