"""Runs: data -> scaler -> model -> training -> run directory, and the jobs on a saved run.

This is what ``aekit train / eval / encode / reconstruct`` and :func:`aekit.train` call; the
CLI only parses arguments. A run directory holds model.safetensors, config.json,
metrics.jsonl, checkpoint.safetensors and, for image data, loss.png and reconstructions.png.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from .data import Dataset, Scaler, default_scaler_kind, load_dataset, train_val_split
from .errors import ConfigError, DataError, ModelFileError
from .losses import reconstruction_metrics
from .models import build_model, model_spec
from .training import TrainConfig, TrainState, fit, make_optimizer

METRICS_FILE = "metrics.jsonl"


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
    model_options: dict[str, Any] | None = None,
    **train_options: Any,
) -> RunResult:
    """Train a registered model on ``data`` and write the run directory ``out``.

    ``model_options`` are config fields of the model (latent_dim, hidden, activation,
    output_activation, tied, loss, ...); ``train_options`` are :class:`TrainConfig` fields
    (epochs, batch_size, optimizer, lr, seed, patience). With ``resume=True`` every setting
    comes from ``out/config.json`` except ``epochs``, which may be raised to train longer.
    """
    out = Path(out)
    if resume:
        return _resume(out, data_dir, progress, train_options.get("epochs"))
    if (out / ckpt.CHECKPOINT_FILE).exists() or (out / ckpt.MODEL_FILE).exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or pick --out")
    config = TrainConfig(**train_options)
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
    optimizer = _make_optimizer(config, net)  # refuses what the engine cannot train, early
    ckpt.save(net, out, extra)  # config.json and initial weights, before the first epoch
    return _fit_run(net, optimizer, TrainState(), config, out, X_train, X_val, ds, progress)


def _make_optimizer(config: TrainConfig, net):
    """The optimiser of the run's engine; both save and load torch.optim's state_dict format."""
    if config.engine == "numpy":
        from .numpy_engine import NumpyOptimizer

        return NumpyOptimizer(config.optimizer, net, config.lr)
    return make_optimizer(config.optimizer, net.parameters(), config.lr)


def _split_and_scale(ds: Dataset, val_fraction: float, seed: int, scale: str | None):
    X_train, X_val = train_val_split(ds.X, val_fraction, seed)
    scaler = Scaler.fit(X_train, scale or default_scaler_kind(ds), max_value=ds.max_value)
    X_val = None if X_val is None else scaler.transform(X_val)
    return scaler.transform(X_train), X_val, scaler


def _resume(out: Path, data_dir, progress: bool, epochs: int | None) -> RunResult:
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
    ds = load_dataset(d["source"], data_dir=data_dir or d["data_dir"], limit=d["limit"])
    net = ckpt.build_from_record(cfg["model"])
    net.scaler = Scaler.from_dict(cfg["scaler"])
    X_train, X_val = train_val_split(ds.X, d["val_fraction"], config.seed)
    X_train = net.scaler.transform(X_train)
    X_val = None if X_val is None else net.scaler.transform(X_val)
    optimizer = _make_optimizer(config, net)
    state = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_FILE, net, optimizer)
    if epochs is not None:
        cfg["training"] = asdict(config)
        ckpt.write_json(out / ckpt.CONFIG_FILE, cfg)
    return _fit_run(net, optimizer, state, config, out, X_train, X_val, ds, progress)


def _fit_run(net, optimizer, state, config, out: Path, X_train, X_val, ds, progress):
    def on_epoch_end(model, opt, st, improved):
        if improved:
            ckpt.save_tensors(out / ckpt.MODEL_FILE, model.state_dict())
        ckpt.save_checkpoint(out / ckpt.CHECKPOINT_FILE, model, opt, st)
        ckpt.write_jsonl(out / METRICS_FILE, st.history)

    try:
        train_fn = fit
        if config.engine == "numpy":
            from .numpy_engine import fit_numpy as train_fn
        state = train_fn(
            net,
            X_train,
            X_val,
            config,
            optimizer=optimizer,
            state=state,
            on_epoch_end=on_epoch_end,
            progress=progress,
        )
    finally:
        if state.history:
            _write_figures(out, state.history, net, X_val if X_val is not None else X_train, ds)
    # the run's model is its best epoch (by validation loss when there is validation data)
    best, _ = ckpt.read_tensors(out / ckpt.MODEL_FILE)
    net.load_state_dict(best)
    net.eval()
    return RunResult(net, out, state)


def _write_figures(out: Path, history, net, X_show, ds: Dataset) -> None:
    from . import plots

    plots.save_figure(plots.loss_curve(history), out / "loss.png")
    if ds.image_shape is not None and bool(torch.isfinite(next(net.parameters())).all()):
        X_show = X_show[:10]
        fig = plots.reconstructions(X_show, net.reconstruct_numpy(X_show), ds.image_shape)
        plots.save_figure(fig, out / "reconstructions.png")


# ---- jobs on a saved run ---------------------------------------------------------------------


def load_run_data(run, data=None, *, data_dir=None, split="test", limit=None):
    """(model, scaled X, dataset) for a saved run; ``data`` defaults to the run's own."""
    model = ckpt.load(run)
    if data is None:
        d = ckpt.read_config(run).get("data", {})
        data, data_dir = d.get("source", "digits"), data_dir or d.get("data_dir")
    ds = load_dataset(data, data_dir=data_dir, split=split, limit=limit)
    if ds.X.shape[1] != model.input_dim:
        raise DataError(
            f"data has {ds.X.shape[1]} features but the model expects {model.input_dim}; "
            "use data of the width the model was trained on"
        )
    X = model.scaler.transform(ds.X) if model.scaler is not None else ds.X
    return model, X, ds


def evaluate(
    run,
    data=None,
    *,
    noise: str | None = None,
    noise_seed: int = 0,
    nll_samples: int | None = None,
    binarize: bool = False,
    **kwargs,
) -> dict[str, Any]:
    """Reconstruction MSE, MAE, BCE (data in [0, 1]) and PSNR in the model's scaled space.

    ``noise`` (e.g. "gaussian:0.5:clip") corrupts the data with ``noise_seed`` first and scores
    the reconstruction of the corrupted data against the clean data; the corrupted input's own
    scores come back as ``noisy_*``. ``nll_samples`` = K adds ``nll``, the importance-sampled
    negative log-likelihood in nats (models with a Gaussian latent), of the data binarised
    once with ``noise_seed`` when ``binarize`` (for Bernoulli models of [0, 1] data).
    """
    model, X, _ = load_run_data(run, data, **kwargs)
    kind = model.scaler.kind if model.scaler is not None else "none"
    data_range = 1.0 if kind in ("image", "minmax") else float(X.max() - X.min()) or 1.0
    out: dict[str, Any] = {"n_samples": len(X)}
    X_in = X
    if noise is not None:
        from .data.noise import corrupt

        X_in = corrupt(X, noise, noise_seed)
        noisy = reconstruction_metrics(torch.from_numpy(X_in), torch.from_numpy(X), data_range)
        out.update({"noise": noise, **{f"noisy_{k}": v for k, v in noisy.items()}})
    X_hat = model.reconstruct_numpy(X_in)
    out.update(reconstruction_metrics(torch.from_numpy(X_hat), torch.from_numpy(X), data_range))
    if nll_samples is not None:
        from . import variational
        from .data.noise import binarize as binarise

        X_nll = binarise(X, noise_seed) if binarize else X
        out["nll"] = variational.nll(model, X_nll, int(nll_samples), seed=noise_seed)
        out["nll_samples"] = int(nll_samples)
    return out


def encode(run, data=None, **kwargs) -> np.ndarray:
    """Codes Z (N, D_latent) of the data under a saved run's model."""
    model, X, _ = load_run_data(run, data, **kwargs)
    return model.encode_numpy(X)


def reconstruct(run, data=None, **kwargs) -> np.ndarray:
    """Reconstructions in the data's original units (the scaler inverted)."""
    model, X, _ = load_run_data(run, data, **kwargs)
    X_hat = model.reconstruct_numpy(X)
    return model.scaler.inverse_transform(X_hat) if model.scaler is not None else X_hat


def write_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write .npy or .csv atomically; any other suffix is refused before anything is written."""
    path = Path(path)
    if path.suffix == ".npy":

        def write_npy(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array)

        ckpt.atomic_write(path, write_npy)
    elif path.suffix == ".csv":
        ckpt.atomic_write(path, lambda tmp: np.savetxt(tmp, array, delimiter=",", fmt="%.9g"))
    else:
        raise ConfigError(f"cannot write {path.name}: use a .npy or .csv output file")
