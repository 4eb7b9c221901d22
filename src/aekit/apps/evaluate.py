"""Jobs on a saved run: reconstruction metrics, codes, reconstructions (and the NLL of a VAE).

What ``aekit eval / encode / reconstruct`` call. Each takes the run directory, the data
(default: the run's own source, test split), and ``device`` ("auto": CUDA when available).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..data import load_dataset
from ..errors import DataError
from ..functional.losses import reconstruction_metrics
from ..io import checkpoint as ckpt
from ..io.files import write_array
from ..training.strategy import resolve_device

__all__ = ["encode", "evaluate", "load_run_data", "reconstruct", "write_array"]

SPLIT_SETS = ("mnist", "fashion-mnist")  # the sources with a train and a test split


def load_run_data(run, data=None, *, data_dir=None, split="test", limit=None, device="auto",
                  color=None, resize=None, units="check"):  # fmt: skip
    """(model on ``device``, scaled X, dataset, what was scored) for a saved run.

    ``data`` defaults to the run's own; "what was scored" is ``{"data": source, "split":
    "train"/"test" for MNIST and Fashion-MNIST, else "all"}``. Image files are read as the run
    read its own (its ``color`` and ``resize``) unless ``color`` / ``resize`` are given; the
    data are checked against the run's units first (``units``:
    :meth:`aekit.data.units.Units.check`).
    """
    from .resume import reading_options

    model = ckpt.load(run).to(resolve_device(device))
    shape = None
    d = ckpt.read_config(run).get("data", {})
    reading = reading_options(d)
    reading.update({k: v for k, v in (("color", color), ("resize", resize)) if v is not None})
    if data is None:
        data, data_dir = d.get("source", "digits"), data_dir or d.get("data_dir")
        if data not in SPLIT_SETS and data != "digits" and d.get("image_shape"):
            shape = tuple(d["image_shape"])  # a file of images folded as in training
    ds = load_dataset(
        data, data_dir=data_dir, split=split, limit=limit, image_shape=shape, **reading
    )
    check_width(ds, model)
    raw = ds.X
    if model.units is not None:
        raw = model.units.check(ds.X, mode=units, max_value=ds.max_value, what=f"the data {data}")
        if raw is not ds.X:
            ds = replace(ds, X=raw, max_value=model.units.max_value)
    X = model.scaler.transform(raw) if model.scaler is not None else raw
    scored = {
        "data": str(data) if isinstance(data, str | os.PathLike) else "<array>",
        "split": split if ds.name in SPLIT_SETS else "all",
    }
    return model, X, ds, scored


def check_width(ds, model) -> None:
    """Refuse data of another width, naming the image shapes when both are images."""
    if ds.X.shape[1] == model.input_dim:
        return
    want = getattr(model.config, "image_shape", None)
    if ds.image_shape is not None and want:
        raise DataError(
            f"the data are images of shape {list(ds.image_shape)} (C, H, W) but the model takes "
            f"{list(want)}; pass --resize {want[1]}x{want[2]} and --color "
            f"{'gray' if want[0] == 1 else 'rgb'} (resize=, color=)"
        )
    raise DataError(
        f"data has {ds.X.shape[1]} features but the model expects {model.input_dim}; "
        "use data of the width the model was trained on"
    )


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
    """Reconstruction MSE, MAE and PSNR in the data's own units, and in the scaled space.

    ``mse``, ``mae`` and ``psnr`` compare the reconstruction, with the run's stored scaler
    undone, to the data as loaded (``"units": "data"``), so they can be set beside anything
    computed on the data itself (PCA, another tool); PSNR's peak is the image format's maximum
    (255 for 8-bit images), else the data's range. The same figures in the space the model
    computes in (the scaler applied) come back as ``scaled_mse``, ``scaled_mae``,
    ``scaled_psnr`` (peak 1 for the image and min-max scalers) and ``scaled_bce`` (where the
    scaled data and reconstruction lie in [0, 1]); ``scaler`` names that space's scaler kind.

    The result names what was scored: ``data`` (the source), ``split`` ("train"/"test" for
    MNIST and Fashion-MNIST, "all" for sources without splits) and ``n_samples``.

    ``noise`` (e.g. "gaussian:0.5:clip") corrupts the scaled data with ``noise_seed`` first
    and scores the reconstruction of the corrupted data against the clean data; the corrupted
    input's own scores come back as ``noisy_*`` (and ``noisy_scaled_*``). ``nll_samples`` = K
    adds ``nll``, the importance-sampled negative log-likelihood in nats (models with a
    Gaussian latent) of the scaled data, binarised once with ``noise_seed`` when ``binarize``
    (for Bernoulli models of [0, 1] data).
    """
    model, X, ds, scored = load_run_data(run, data, **kwargs)
    scaler = model.scaler
    kind = scaler.kind if scaler is not None else "none"
    scaled_range = 1.0 if kind in ("image", "minmax") else float(X.max() - X.min()) or 1.0
    undo = scaler.inverse_transform if scaler is not None else np.asarray
    raw = torch.from_numpy(np.asarray(ds.X, dtype=np.float32))
    data_range = (
        float(ds.max_value) if ds.max_value is not None else float(raw.max() - raw.min()) or 1.0
    )

    def scores(X_hat: np.ndarray) -> dict[str, float]:
        """Data-unit metrics (no bce: not a probability), then the scaled ones, labelled."""
        data = reconstruction_metrics(torch.from_numpy(undo(X_hat)), raw, data_range)
        data.pop("bce", None)
        scaled = reconstruction_metrics(torch.from_numpy(X_hat), torch.from_numpy(X), scaled_range)
        return {**data, **{f"scaled_{k}": v for k, v in scaled.items()}}

    out: dict[str, Any] = {**scored, "n_samples": len(X), "units": "data", "scaler": kind}
    X_in = X
    if noise is not None:
        from ..data.noise import corrupt

        X_in = corrupt(X, noise, noise_seed)
        out.update({"noise": noise, **{f"noisy_{k}": v for k, v in scores(X_in).items()}})
    out.update(scores(model.reconstruct_scaled(X_in)))
    if nll_samples is not None:
        from ..data.noise import binarize as binarise
        from .generation import nll

        X_nll = binarise(X, noise_seed) if binarize else X
        out["nll"] = nll(model, X_nll, int(nll_samples), seed=noise_seed)
        out["nll_samples"] = int(nll_samples)
    return out


def encode(run, data=None, **kwargs) -> np.ndarray:
    """Codes Z (N, D_latent) of the data under a saved run's model."""
    return outputs(run, data, "encode", **kwargs)[0]


def reconstruct(run, data=None, **kwargs) -> np.ndarray:
    """Reconstructions in the data's original units (the scaler inverted); an array of
    images (N, H, W) / (N, C, H, W) gets them back in its shape, anything else as rows."""
    X_hat = outputs(run, data, "reconstruct", **kwargs)[0]
    if isinstance(data, np.ndarray) and data.ndim in (3, 4):
        from ..data.shapes import as_rows

        X_hat = as_rows(data, width=X_hat.shape[1])[1].unfold(X_hat)
    return X_hat


def outputs(run, data=None, what: str = "encode", **kwargs):
    """(codes or reconstructions as rows, the dataset they came from: its file names and
    shape)."""
    model, X, ds, _ = load_run_data(run, data, **kwargs)
    if what == "encode":
        return model.encode_scaled(X), ds
    X_hat = model.reconstruct_scaled(X)
    return (model.scaler.inverse_transform(X_hat) if model.scaler is not None else X_hat), ds


def stream_to_file(run, data, out, what: str = "encode", device="auto", *, color=None,
                   resize=None, units="check") -> tuple[int, int]:  # fmt: skip
    """Codes or reconstructions of a streamed .npy (or folder of shards, or image files read
    as the run read its own unless ``color`` / ``resize`` say otherwise), written block by
    block to the .npy ``out`` (atomically), in bounded memory; returns the output's shape.

    Reconstructions are in the data's own units, as :func:`reconstruct`'s; each block is
    checked against the run's units (``units``).
    """
    from pathlib import Path

    from ..data.stream import StreamedArray
    from ..errors import ConfigError
    from ..io.files import atomic_write
    from .resume import reading_options

    if Path(out).suffix != ".npy":
        raise ConfigError(f"cannot stream into {Path(out).name}: streamed output is a .npy file")
    model = ckpt.load(run).to(resolve_device(device))
    reading = reading_options(ckpt.read_config(run).get("data", {}))
    reading.update({k: v for k, v in (("color", color), ("resize", resize)) if v is not None})
    arr = StreamedArray(data, reading=reading)
    if arr.width != model.input_dim:
        raise DataError(
            f"data has {arr.width} features but the model expects {model.input_dim}; "
            "use data of the width the model was trained on"
        )
    job = model.encode_numpy if what == "encode" else model.reconstruct_numpy
    width = model.config.latent_dim if what == "encode" else model.input_dim
    from .streamed import map_to_npy

    # reads, computation and writes overlap (two threads beside this one)
    atomic_write(out, lambda tmp: map_to_npy(arr, lambda rows: job(rows, units=units), tmp, width))
    return arr.n, width
