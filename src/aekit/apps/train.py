"""The training job: data -> scaler -> model -> the one loop -> run directory.

This is what ``aekit train`` and :func:`aekit.train` call; the CLI only parses arguments. A
new, a streamed (:mod:`aekit.apps.streamed`) and a resumed run (:mod:`aekit.apps.resume`)
each build a :class:`~aekit.apps.fitting.RunSpec`, and :func:`~aekit.apps.fitting.fit_run`
fits and writes it: the run directory's files (:class:`aekit.io.rundir.Run`) are written by
:class:`aekit.training.writer.RunWriter`, a callback of the loop, under the run's lock (one
writer per run). ``resume=True`` rebuilds everything from the directory and continues
exactly; see :mod:`aekit.apps.resume` for which settings it may change.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import load_dataset
from ..data.crops import run_split, training_crops
from ..data.stream import should_stream
from ..data.units import Units
from ..errors import ConfigError
from ..io.rundir import Run
from ..nn import build_model, model_spec
from ..nn.init import WarmStart, pca_warm_start, warm_start_blocker
from ..training import Callback, TrainConfig
from ..training.config import default_budget
from ..training.devices import check_device
from ..training.distributed import is_writer
from .fitting import (  # noqa: F401 - RunResult, fingerprint, data_record: the names users import
    DEFAULTS,
    INITS,
    RunResult,
    RunSpec,
    build_strategy,
    check_callbacks,
    data_record,
    entropy_start,
    fingerprint,
    fit_run,
    resolve_output_activation,
    split_and_scale,
)


def _check_train_options(options: dict[str, Any]) -> None:
    """One line for a keyword that is no training setting (a model's goes in model_options)."""
    from dataclasses import fields

    from ..nn.config import flat_names
    from ..nn.registry import MODELS

    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if not unknown:
        return
    model = {f.name for m in MODELS.values() for f in fields(m.cls.config_class)}
    model |= set(flat_names())
    hint = [k for k in unknown if k in model]
    if hint:
        example = ", ".join(f"{k!r}: {options[k]!r}" for k in hint)
        raise ConfigError(
            f"{', '.join(hint)} {'is a model setting' if len(hint) == 1 else 'are model settings'}"
            f": pass model_options={{{example}}}"
        )
    raise ConfigError(
        f"train() has no setting {', '.join(unknown)}; its training settings are "
        + ", ".join(sorted(known))
    )


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
    patch: int | None = None,
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
    ``image_shape`` (C, H, W) folds the rows of a data file into images (conv models). ``color``
    ("auto", "gray", "rgb") and ``resize`` ((H, W)) say how image files are read
    (:mod:`aekit.data.images`); ``patch`` (a side in pixels) trains a fully convolutional model
    on random ``patch`` x ``patch`` crops of image files, drawn afresh each epoch and seeded
    (:mod:`aekit.data.crops`; also what images of several sizes get without it, at the smallest
    side up to 64), with whole images held out for validation. The run records them, and its
    data's units (:mod:`aekit.data.units`), which jobs on new data are checked against.
    ``stream`` reads a ``.npy`` file or a folder of ``.npy`` shards block by block instead of
    loading it (None: when the data are a folder, or a file over 1 GiB). ``device`` is where to
    train ("auto": CUDA when available, else the CPU); it is not stored, so a run resumes on any
    device. With ``resume=True`` the run continues from ``out``: epochs, lr, patience and the
    data's location may change, anything else given must equal the run's
    (:mod:`aekit.apps.resume`). ``callbacks`` are extra :class:`aekit.training.Callback`
    objects, run after the run directory's writer (in every process under torchrun); the loggers
    of :mod:`aekit.training.loggers` (``TensorBoardLogger``, ``MLflowLogger``) among them also
    see the run's settings and folder, and log from rank 0 only. The returned model is on the
    CPU, with the best weights.

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
    extra = check_callbacks(callbacks)
    # under torchrun every rank trains and only rank 0 writes (and holds the lock)
    with Run(out).lock() if is_writer() else contextlib.nullcontext():
        spec = _spec(
            out, data, model, data_dir, limit, scale, val_fraction, image_shape, color,
            resize, patch, stream, resume, device, init, model_options, train_options,
        )  # fmt: skip
        return fit_run(spec, out, progress=progress, callbacks=extra)


def _spec(out, data, model, data_dir, limit, scale, val_fraction, image_shape, color, resize,
          patch, stream, resume, device, init, model_options,
          train_options) -> RunSpec:  # fmt: skip
    """The run's :class:`RunSpec`: a resumed, a streamed or a new run's."""
    patch = _check_patch(patch)
    if resume:
        from .resume import prepare_resume

        return prepare_resume(
            out, data=data, data_dir=data_dir, model=model, limit=limit, scale=scale,
            val_fraction=val_fraction, image_shape=image_shape, model_options=model_options,
            train_options=train_options, device=device, patch=patch,
        )  # fmt: skip
    if Run(out).holds_run():
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or pick another --out"
        )
    _say_if_taken_over(out)
    if should_stream(data, stream):
        from .streamed import streamed_spec

        if patch is not None:
            raise ConfigError("--patch crops image files read whole; it cannot --stream")
        if "epochs" not in train_options:
            train_options["epochs"] = TrainConfig.epochs  # streamed: epochs, as before
        return streamed_spec(
            data, model, scale, val_fraction, image_shape, model_options, train_options,
            device, {"color": color, "resize": resize},
        )  # fmt: skip
    return _new_spec(
        data, model, data_dir, limit, scale, val_fraction, image_shape, model_options,
        train_options, device, init,
        reading={"color": color or "auto", "resize": resize, "patch": patch},
    )  # fmt: skip


def _say_if_taken_over(out: Path) -> None:
    """A run stopped before its first epoch leaves files but nothing to resume: say that the
    new run takes the folder over (one warning line), rather than replace them unsaid."""
    import warnings

    left = Run(out).started_files()
    if left and is_writer():
        warnings.warn(
            f"{out} holds a run stopped before its first epoch ({', '.join(left)}; nothing to "
            "resume): this run starts it over",
            stacklevel=4,  # the caller of train()
        )


def _check_out(out) -> Path:
    if out is None or str(out).strip() == "":
        raise ConfigError("--out must name the run's folder, e.g. runs/my-run")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; pick another --out")
    return out


def _new_spec(data, model, data_dir, limit, scale, val_fraction, image_shape, model_options,
              train_options, device, init=None, reading=None) -> RunSpec:  # fmt: skip
    data = DEFAULTS["data"] if data is None else data
    model = model or DEFAULTS["model"]
    val_fraction = DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
    init = _check_init(init)
    auto_budget = "epochs" not in train_options
    _check_train_options(train_options)
    config = TrainConfig(**train_options)
    if config.engine == "torch":
        check_device(device, config.precision)  # before anything is written
    reading = _patches_if_mixed(model, data, limit, dict(reading or {}))
    crops = bool(reading.get("crops"))
    how = {k: v for k, v in reading.items() if k != "crops"}  # how to read; crops: how to train
    ds = load_dataset(
        data, data_dir=data_dir, split="train", limit=limit, image_shape=image_shape, **how
    )
    split = split_and_scale(ds, val_fraction, config.seed, scale, crops)
    sampler = None
    if crops:
        train_rows, _ = run_split(ds, val_fraction, config.seed, crops)
        sampler = training_crops(ds, train_rows, split[2].transform)
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
    records = {"data": data_record(data, data_dir, limit, val_fraction, ds, split, reading)}
    records["training"] = asdict(config)
    records["init"] = warm.to_dict()
    if init != "random" and getattr(net.config, "gain_prior", False):  # the codec's data start
        records["init"]["entropy_start"] = entropy_start(net, split[0], config.seed)
    records["budget"] = budget.to_dict() if budget else {"rule": "epochs", "epochs": config.epochs}
    strategy, where = build_strategy(config, device)
    return RunSpec(
        net, config, split, strategy, where, ds.image_shape, records,
        start_is_candidate=warm.applied, sampler=sampler,
    )  # fmt: skip


def _patches_if_mixed(model: str, data, limit, reading: dict) -> dict:
    """A fully convolutional model given image files of several sizes (and no --resize)
    trains on random square crops of them, drawn afresh each epoch (one warning line says
    so; :mod:`aekit.data.crops`); other models refuse them."""
    import warnings

    from ..data.images import is_image_source, patch_size

    if reading.get("patch") is not None:
        return _asked_patch(model, data, reading)
    reading.pop("patch", None)
    if reading.get("resize") is not None or not isinstance(data, str | os.PathLike):
        return reading
    if not getattr(model_spec(model).cls, "fully_convolutional", False):
        return reading
    if not (Path(data).exists() and is_image_source(data)):
        return reading
    size = patch_size(data, limit)
    if size is not None:
        reading["patch"], reading["crops"] = size, True
        warnings.warn(
            f"{data} holds images of several sizes: model {model!r} trains on random "
            f"{size}x{size} crops of them, and denoises or reconstructs each image at its own "
            "size",
            stacklevel=5,  # the caller of train()
        )
    return reading


def _check_patch(patch) -> int | None:
    if patch is None:
        return None
    if isinstance(patch, bool) or not isinstance(patch, int | np.integer) or patch < 1:
        raise ConfigError(f"--patch takes a side in pixels, a whole number >= 1, not {patch!r}")
    return int(patch)


def _asked_patch(model: str, data, reading: dict) -> dict:
    """--patch P: random P x P crops of image files, for a fully convolutional model."""
    from ..data.images import is_image_source

    if not getattr(model_spec(model).cls, "fully_convolutional", False):
        raise ConfigError(
            f"--patch trains a fully convolutional model on crops; model {model!r} takes one "
            "image size: pass --resize instead, or pick a fully convolutional model (conv, "
            "dncnn, codec, ...)"
        )
    if reading.get("resize") is not None:
        raise ConfigError("--patch crops the images as they are; drop --resize, or --patch")
    if not (isinstance(data, str | os.PathLike) and Path(data).exists() and is_image_source(data)):
        raise ConfigError(
            f"--patch crops image files (a folder, a file, a list); {data!r} is not one"
        )
    reading["crops"] = True
    return reading


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
