"""The shared core of a run: defaults, the data record, the split, and the fit that writes it.

A new run (:mod:`aekit.apps.train`), a resumed one (:mod:`aekit.apps.resume`) and a streamed
one (:mod:`aekit.apps.streamed`) differ in how they build their :class:`RunSpec` (the model,
the data's split, the strategy, and config.json's records), not in how they fit: each hands
it to :func:`fit_run`, the one loop with the run directory's writer
(:class:`aekit.training.writer.RunWriter`), the warm start's competition, the figures and the
check against PCA. The jobs above it import it; it imports none of them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Scaler, default_scaler_kind
from ..data.crops import run_split
from ..errors import ConfigError
from ..io import checkpoint as ckpt
from ..io.rundir import Run, check_resume
from ..nn import model_spec
from ..training import Callback, Strategy, TrainConfig, TrainState, fit, make_strategy
from ..training.devices import resolve_device
from ..training.distributed import is_writer
from ..training.loggers import N_IMAGES, RunInfo, RunLogger
from ..training.writer import RestoreCheckpoint, RunWriter
from ..views.figures import write_run_figures
from .baseline import KeepStart, keep_or_revert, start_loss, write_check

DEFAULTS = {"data": "digits", "model": "dense", "val_fraction": 0.1, "init": "auto"}
INITS = ("auto", "pca", "random")


@dataclass
class RunSpec:
    """A run as its job built it, for :func:`fit_run`: the model (its scaler and units set),
    the settings, the data's split and the strategy that runs the steps (built once, here).

    ``records`` are config.json's entries beside the model's (data, training, init, budget)
    for a new run; None for a resumed one, whose config.json is the run's. ``restore`` loads
    the checkpoint before the first step; ``start_is_candidate``: the untrained model (a PCA
    warm start) competes for the best weights as "epoch 0". ``device`` is where the steps
    run (the resume's check of how the run was made compares it). ``sampler``: rows drawn
    afresh each epoch that the loop trains on instead of X_train
    (:class:`aekit.data.crops.RandomCrops`); X_train still serves every other use.
    """

    net: torch.nn.Module
    config: TrainConfig
    split: tuple  # (X_train, X_val or None, scaler): arrays, or streamed blocks
    strategy: Strategy
    device: Any
    image_shape: tuple | None = None
    records: dict[str, Any] | None = None
    restore: bool = False
    start_is_candidate: bool = False
    sampler: Any = None  # the loop's training rows in X_train's place (random crops)


def build_strategy(config: TrainConfig, device) -> tuple[Strategy, Any]:
    """The run's strategy (:data:`aekit.training.STRATEGIES` by ``config.engine``) and where
    it runs: the NumPy engine on the CPU, the torch engine on ``device``."""
    if config.engine != "torch":
        return make_strategy(config), "cpu"
    return make_strategy(config, device), resolve_device(device)


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
    """For image files: how they were read (color, resize, patch), for eval and resume."""
    if ds.files is None:
        return {}
    resize = reading.get("resize")
    out = {"color": reading.get("color", "auto"), "resize": list(resize) if resize else None}
    if reading.get("patch") is not None:
        out["patch"] = int(reading["patch"])
    if reading.get("crops"):
        out["crops"] = True  # trained on random crops; the validation part is whole images
    return out


def fingerprint(X: np.ndarray) -> str:
    """sha256 of the raw values and their shape: the same data, or not."""
    h = hashlib.sha256(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).data)
    return h.hexdigest()


def split_and_scale(
    ds: Dataset, val_fraction: float, seed: int, scale: str | None, crops: bool = False
):
    """(X_train, X_val or None, scaler): the seeded split (whole images for a run on random
    crops, :func:`aekit.data.crops.run_split`), the scaler fitted on the train part."""
    train, val = run_split(ds, val_fraction, seed, crops)
    X_train, X_val = ds.X[train], None if val is None else ds.X[val]
    scaler = Scaler.fit(X_train, scale or default_scaler_kind(ds), max_value=ds.max_value)
    X_val = None if X_val is None else scaler.transform(X_val)
    return scaler.transform(X_train), X_val, scaler


def check_callbacks(callbacks) -> list[Callback]:
    extra = list(callbacks or ())
    for cb in extra:
        if not isinstance(cb, Callback):
            raise ConfigError(
                f"callbacks takes aekit.training.Callback objects, not {type(cb).__name__}"
            )
    return extra


def fit_run(spec: RunSpec, out: str | os.PathLike, *, progress: bool = False,
            callbacks=()) -> RunResult:  # fmt: skip
    """Fit ``spec`` with the run directory's writer into ``out``; the model comes back with its
    best weights.

    ``callbacks`` run after the writer; the loggers among them hear of the run before the
    loop and after its folder is complete.
    """
    run = Run(out)
    loggers = [cb for cb in callbacks if isinstance(cb, RunLogger)]
    info = _run_info(spec, run) if loggers else None
    failed = True
    try:
        for logger in loggers:
            logger.begin_run(info)
        result = _fit_and_write(spec, run, progress, list(callbacks))
        failed = False
        return result
    finally:
        for logger in loggers:
            logger.end_run(failed)


def _run_info(spec: RunSpec, run: Run) -> RunInfo:
    """What the loggers are told of the run: its settings, a few validation images; a run
    without ``records`` is a --resume (also one that starts over)."""
    records = spec.records
    cfg = run.read_config() if records is None else {**records}
    if records is not None:
        cfg["model"] = ckpt.model_record(spec.net)
    settings = {k: cfg[k] for k in ("model", "training", "data", "init", "budget") if k in cfg}
    samples = None
    if spec.image_shape is not None:
        X_show = spec.split[1] if spec.split[1] is not None else spec.split[0]
        first = getattr(X_show, "first_rows", None)  # streamed data: the first rows read
        samples = np.asarray(first(N_IMAGES) if first is not None else X_show[:N_IMAGES])
    shape = tuple(spec.image_shape) if spec.image_shape is not None else None
    return RunInfo(run.path, settings, shape, samples, resumed=records is None)


def _fit_and_write(spec: RunSpec, run: Run, progress, extra) -> RunResult:
    net, config, split = spec.net, spec.config, spec.split
    X_train, X_val, _ = split
    writes = is_writer()
    writer = RunWriter(run, config=spec.records)
    callbacks: list[Callback] = [writer] if writes else []
    if spec.restore:
        check_resume(run.path, spec.device, config.precision)  # in every process, first
        callbacks.insert(0, RestoreCheckpoint(run))
    start, keeper = None, None
    if spec.start_is_candidate:  # epoch 0: the start's loss is the one to beat
        start = TrainState(best_loss=start_loss(net, X_train if X_val is None else X_val))
        if writes:
            run.write_start(net.state_dict())  # resume needs it too
    if writes and run.has_start():
        keeper = KeepStart(run.path)
        callbacks.append(keeper)
    callbacks += extra
    state = TrainState()
    try:
        state = fit(
            net, X_train if spec.sampler is None else spec.sampler, X_val, config, state=start,
            callbacks=callbacks, progress=progress, strategy=spec.strategy,
        )  # fmt: skip
    finally:
        net.cpu()
        if writes and writer.history:  # also when training stopped on an error
            X_show = X_val if X_val is not None else X_train
            write_run_figures(run.path, writer.history, net, X_show, spec.image_shape)
    check, baseline, kept = None, None, None
    if writes:
        run.load_best(net)  # the run's model is its best epoch
        if keeper is not None and X_val is not None:
            kept = keep_or_revert(run.path, net, keeper.weights, X_val)
        init = run.read_config().get("init")
        # a kept PCA start is refitted on every training row here (see write_check)
        check, baseline = write_check(run.path, net, split, kept, init, seed=config.seed)
    return RunResult(net, run.path, state, check, baseline)


def reading_options(stored: dict[str, Any]) -> dict[str, Any]:
    """How the run read its image files (load_dataset's color, resize and patch), from its
    record."""
    if "color" not in stored:
        return {}
    resize = stored.get("resize")
    out = {"color": stored["color"], "resize": tuple(resize) if resize else None}
    if stored.get("patch") is not None:
        out["patch"] = int(stored["patch"])
    return out


def entropy_start(net, X_train, seed: int) -> dict:
    """A gain-prior codec's data start (:meth:`HyperpriorLatent.start_from`) on the first 512
    training rows, seeded: a pure function of the rows and the seed, so that a run started
    over before its first checkpoint (:mod:`aekit.apps.resume`) begins where train began it."""
    first = torch.as_tensor(np.asarray(X_train[:512]), dtype=torch.float32)
    start = net.latent.start_from(net, first, seed=seed)
    return {"rows": len(first), "z_bpp": start["rate"]}
