"""Jobs on a saved run: reconstruction metrics, codes, reconstructions (and the NLL of a VAE).

What ``aekit eval / encode / reconstruct`` call. Each takes the run directory, the data
(default: the run's own source: for ``eval`` its held-out rows, see :func:`scored_rows`; for
encode and reconstruct all of it, the test split of MNIST-like sets), and ``device`` ("auto":
CUDA when available).
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
from ..training.devices import resolve_device

__all__ = [
    "encode", "evaluate", "load_run_data", "reconstruct", "scored_rows", "write_array"
]  # fmt: skip

SPLIT_SETS = ("mnist", "fashion-mnist")  # the sources with a train and a test split
SPLITS = ("all", "train", "val", "test")  # the rows of a run's own data that eval may score


def load_run_data(run, data=None, *, data_dir=None, split="test", limit=None, device="auto",
                  color=None, resize=None, units="check"):  # fmt: skip
    """(model on ``device``, scaled X, dataset, what was scored) for a saved run.

    ``data`` defaults to the run's own; "what was scored" is ``{"data": source, "split":
    "train"/"test" for MNIST and Fashion-MNIST, else "all"}``. Image files are read as the run
    read its own (its ``color`` and ``resize``) unless ``color`` / ``resize`` are given; the
    data are checked against the run's units first (``units``:
    :meth:`aekit.data.units.Units.check`). (``eval`` and the report pick the run's held-out
    rows instead: :func:`scored_rows`.)
    """
    from .fitting import reading_options

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
    X, ds = _scaled(model, ds, units, f"the data {data}")
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


def _scaled(model, ds, units: str = "check", what: str = "the data"):
    """(X scaled as the model computes, ds): width checked, then the units (``units``:
    :meth:`aekit.data.units.Units.check`; "convert" gives ``ds`` in the model's units)."""
    check_width(ds, model)
    raw = ds.X
    if model.units is not None:
        raw = model.units.check(ds.X, mode=units, max_value=ds.max_value, what=what)
        if raw is not ds.X:
            ds = replace(ds, X=raw, max_value=model.units.max_value)
    return (model.scaler.transform(raw) if model.scaler is not None else raw), ds


def is_own_data(record: dict, data) -> bool:
    """Whether ``data`` (a name or a path; None: the run's own) is the run's own source."""
    if data is None:
        return True
    if not isinstance(data, str | os.PathLike):
        return False  # an array: the run cannot tell, so it is scored as other data
    source = str(record.get("source", "digits"))
    name = str(data).lower().replace("_", "-")
    if name in ("digits", *SPLIT_SETS):
        return name == source.lower().replace("_", "-")
    from pathlib import Path

    return source not in ("digits", *SPLIT_SETS) and str(Path(data).resolve()) == source


def _subset(ds, idx):
    """The rows ``idx`` of ``ds``, with their labels and file names."""
    from dataclasses import replace

    labels = None if ds.labels is None else ds.labels[idx]
    files = None if ds.files is None else tuple(ds.files[i] for i in idx)
    return replace(ds, X=ds.X[idx], labels=labels, files=files)


def scored_rows(run, data=None, *, split=None, data_dir=None, limit=None, color=None,
                resize=None):  # fmt: skip
    """(dataset, what was scored) for ``eval`` and the report: by default the run's held-out rows.

    For the run's own source (``data`` None or naming it) ``split`` None means the held-out
    rows: the test split of MNIST and Fashion-MNIST, else the run's validation rows (the seeded
    split training made, found again from config.json; refused when the file's values changed
    since). "train", "val", "test" and "all" choose. Other data are scored whole (their test
    split for MNIST-like sets, as training would not have seen it); ``split`` "val" or "train"
    then means nothing and is refused. ``limit`` keeps the first N of the chosen rows. Image
    files are read as the run read its own, unless ``color`` / ``resize`` say otherwise.

    "What was scored": ``data``, ``split``, ``held_out`` (False for rows the model was fitted
    on, None for other data: the run cannot tell) and ``rows``, a sentence such as "30 held-out
    validation rows of x.npy".
    """
    from dataclasses import replace
    from pathlib import Path

    from ..errors import ConfigError
    from ..io.rundir import read_summary

    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    from .fitting import reading_options

    config = ckpt.read_config(run)
    d = config.get("data", {})
    reading = reading_options(d)
    reading.update({k: v for k, v in (("color", color), ("resize", resize)) if v is not None})
    source = str(d.get("source", "digits"))
    if not is_own_data(d, data):
        return _other_rows(data, source, split, data_dir, limit, reading)
    if source == "<array>":
        raise DataError(
            "the run was trained on an array in Python, so its rows cannot be read again: "
            "pass --data (scored whole)"
        )
    data_dir = data_dir or d.get("data_dir")
    name = Path(source).name
    n_val = int(d.get("n_val") or 0)
    if split is None:
        split = "test" if source in SPLIT_SETS else "val" if n_val else "all"
    if split == "test":
        if source not in SPLIT_SETS:
            raise ConfigError(
                f"{name} has no test split (only MNIST and Fashion-MNIST do); choose --split "
                "val (the run's held-out rows), train or all"
            )
        ds = load_dataset(source, data_dir=data_dir, split="test", limit=limit)
        rows = f"{len(ds.X):,} rows of the {source} test split, held out"
        return ds, {"data": source, "split": "test", "held_out": True, "rows": rows}
    if split == "val" and not n_val:
        raise ConfigError(
            "the run has no validation rows (trained with --val-fraction 0); choose --split "
            "train or all" + (", or test" if source in SPLIT_SETS else "")
        )
    # "all": the whole source, beyond the --limit training read
    ds, train_idx, val_idx = _training_rows(config, data_dir, whole=split == "all", reading=reading)
    if split == "all" and source in SPLIT_SETS:  # the training split and the test split
        test = load_dataset(source, data_dir=data_dir, split="test")
        labels = None if ds.labels is None else np.concatenate([ds.labels, test.labels])
        ds = replace(ds, X=np.concatenate([ds.X, test.X]), labels=labels)
    idx = {"train": train_idx, "val": val_idx}.get(split)
    if split in ("train", "val") and idx is None:
        raise DataError(f"the run's {split} rows cannot be found again; pass --split all")
    if idx is not None:
        ds = _subset(ds, idx)
    if limit is not None and limit < len(ds.X):
        ds = _subset(ds, np.arange(limit))
    refit = (read_summary(run) or {}).get("pca_baseline", {}).get("fit_rows") == "train+val"
    held_out = split == "val" and not refit
    n = f"{len(ds.X):,}"
    if split == "val":
        rows = (
            f"{n} held-out validation rows of {name}"
            if held_out
            else (
                f"{n} validation rows of {name}, not held out: the kept PCA start was refitted "
                "on every training row"
            )
        )
    elif split == "train":
        rows = f"{n} training rows of {name}, the rows the model was fitted on"
    else:
        rows = f"all {n} rows of {name}, training rows included"
        if source in SPLIT_SETS:
            rows = f"all {n} rows of {name} (train and test splits), training rows included"
    return ds, {"data": source, "split": split, "held_out": held_out, "rows": rows}


def _other_rows(data, source: str, split, data_dir, limit, reading):
    """Data other than the run's, scored whole: a file (or array) as it is; MNIST-like sets
    their test split unless ``split`` says train (or all: both)."""
    from dataclasses import replace
    from pathlib import Path

    from ..errors import ConfigError

    named = isinstance(data, str | os.PathLike)
    key = str(data).lower().replace("_", "-") if named else None
    has_splits = key in SPLIT_SETS
    if split == "val" or (split in ("train", "test") and not has_splits):
        what = data if named else "this array"
        raise ConfigError(
            f"--split {split} names rows of the run's own data ({Path(source).name}); {what} "
            "is other data, scored whole: drop --split"
        )
    if not has_splits:
        ds = load_dataset(data, data_dir=data_dir, limit=limit, **reading)
        what, part = (Path(str(data)).name if named else "array"), "all"
    elif split == "all":
        ds = load_dataset(data, data_dir=data_dir, split="train")
        test = load_dataset(data, data_dir=data_dir, split="test")
        labels = None if ds.labels is None else np.concatenate([ds.labels, test.labels])
        ds = replace(ds, X=np.concatenate([ds.X, test.X]), labels=labels)
        if limit is not None and limit < len(ds.X):
            ds = replace(ds, X=ds.X[:limit], labels=None if labels is None else labels[:limit])
        what, part = f"the {key} train and test splits", "all"
    else:
        part = split or "test"
        ds = load_dataset(data, data_dir=data_dir, split=part, limit=limit)
        what = f"the {part} split of {key}"
    return ds, {
        "data": str(data) if named else "<array>",
        "split": part,
        "held_out": None,  # unknown: whether the model saw these rows is not the run's to say
        "rows": f"all {len(ds.X):,} rows of {what}, other data than the run's own",
    }


def _training_rows(config: dict, data_dir, whole: bool = False, reading=None):
    """(the rows training read, its training row indices, its validation row indices or None),
    checked against the fingerprint training recorded (the split means nothing otherwise);
    ``whole``: every row of the source instead, unchecked (no indices)."""
    from pathlib import Path

    from ..data.crops import run_split

    d = config.get("data", {})
    source = str(d.get("source", "digits"))
    fraction, seed = d.get("val_fraction") or 0, config.get("training", {}).get("seed", 0)
    if d.get("stream"):
        return _streamed_rows(config, source, fraction, seed, reading)
    shape = None
    if source not in SPLIT_SETS and source != "digits" and d.get("image_shape"):
        shape = tuple(d["image_shape"])
    limit = None if whole else d.get("limit")
    ds = load_dataset(
        source, data_dir=data_dir, split="train", limit=limit, image_shape=shape, **(reading or {})
    )
    if whole:
        return ds, None, None
    if d.get("sha256"):
        from .fitting import fingerprint

        if fingerprint(ds.X) != d["sha256"]:
            raise DataError(
                f"{Path(source).name} has changed since the run was trained (its values differ "
                "from the fingerprint in config.json), so its held-out rows cannot be found "
                "again; pass --split all to score it whole"
            )
    train_idx, val_idx = run_split(ds, fraction, seed, bool(d.get("crops")))
    return ds, train_idx, val_idx


def _streamed_rows(config: dict, source: str, fraction, seed, reading=None):
    """A streamed run's rows, read block by block: its validation part is whole blocks."""
    from pathlib import Path

    from ..data import Dataset
    from ..data.stream import StreamedArray, split_blocks

    arr = StreamedArray(source, reading=reading)
    d = config.get("data", {})
    if d.get("block_rows") and d["block_rows"] != arr.block_rows:  # blocks as training cut them
        block_bytes = int(d["block_rows"]) * 4 * arr.width
        arr = StreamedArray(source, block_bytes=block_bytes, reading=reading)
    train, val = split_blocks(arr, fraction, seed)
    if (0 if val is None else len(val)) != int(d.get("n_val") or 0):
        raise DataError(
            f"the blocks of {Path(source).name} are not those the run was trained on, so its "
            "held-out rows cannot be found again; pass --split all to score it whole"
        )

    def rows(view):
        return np.concatenate([np.arange(*arr.block_range(int(b))) for b in view.blocks])

    X = np.concatenate([arr.block(b) for b in range(arr.n_blocks)]).astype(np.float32)
    shape = config.get("data", {}).get("image_shape")
    image = config.get("scaler", {}).get("kind") == "image"
    top = arr.max_value or (255.0 if image else None)
    ds = Dataset(X, Path(source).stem, tuple(shape) if shape else None, None, top,
                 arr.names)  # fmt: skip
    return ds, rows(train), None if val is None else rows(val)


def evaluate(
    run,
    data=None,
    *,
    noise=None,
    noise_seed: int = 0,
    nll_samples: int | None = None,
    binarize: bool = False,
    split: str | None = None,
    data_dir=None,
    limit: int | None = None,
    device="auto",
    color: str | None = None,
    resize: tuple[int, int] | None = None,
    units: str = "check",
) -> dict[str, Any]:
    """Reconstruction MSE, MAE and PSNR in the data's own units, and in the scaled space.

    ``mse``, ``mae`` and ``psnr`` compare the reconstruction, with the run's stored scaler
    undone, to the data as loaded (``"units": "data"``), so they can be set beside anything
    computed on the data itself (PCA, another tool); PSNR's peak is the image format's maximum
    (255 for 8-bit images), else the data's range. The same figures in the space the model
    computes in (the scaler applied) come back as ``scaled_mse``, ``scaled_mae``,
    ``scaled_psnr`` (peak 1 for the image and min-max scalers) and ``scaled_bce`` (where the
    scaled data and reconstruction lie in [0, 1]); ``scaler`` names that space's scaler kind.

    The rows are :func:`scored_rows`': by default the run's held-out rows (the test split of
    MNIST and Fashion-MNIST, else the run's validation rows), ``split`` "all", "train", "val"
    or "test" to choose; other data are scored whole. The result names what was scored:
    ``data`` (the source), ``split``, ``held_out``, ``rows`` (a sentence) and ``n_samples``.

    ``noise`` (e.g. "gaussian:0.5:clip") corrupts the scaled data with ``noise_seed`` first
    and scores the reconstruction of the corrupted data against the clean data; the corrupted
    input's own scores come back as ``noisy_*`` (and ``noisy_scaled_*``). ``nll_samples`` = K
    adds ``nll``, the importance-sampled negative log-likelihood in nats (models with a
    Gaussian latent) of the scaled data, binarised once with ``noise_seed`` when ``binarize``
    (for Bernoulli models of [0, 1] data). ``color``, ``resize`` and ``units`` are
    :func:`load_run_data`'s.
    """
    model = ckpt.load(run).to(resolve_device(device))
    ds, scored = scored_rows(
        run, data, split=split, data_dir=data_dir, limit=limit, color=color, resize=resize
    )
    X, ds = _scaled(model, ds, units, f"the data {scored['data']}")
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
        out.update({"noise": str(noise), **{f"noisy_{k}": v for k, v in scores(X_in).items()}})
    out.update(scores(model.reconstruct_scaled(X_in)))
    if nll_samples is not None:
        from ..data.noise import binarize as binarise
        from .likelihood import nll

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
    from .fitting import reading_options

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
