"""Training on data larger than memory: a .npy file or a folder of shards, read in blocks.

The run is the same as for data in memory (:mod:`aekit.apps.train`), with three differences:
the scaler is fitted in one pass over the training blocks, the validation part is a seeded
choice of whole blocks, and the data's fingerprint covers the shape and three blocks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..data.stream import StreamedArray, fit_scaler, split_blocks
from ..errors import DataError
from ..nn import build_model
from ..training import TrainConfig
from ..training.strategy import check_device


def new_streamed_run(out, data, model, scale, val_fraction, image_shape, model_options,
                     train_options, progress, device):  # fmt: skip
    from .train import DEFAULTS, _fit_run, resolve_output_activation

    model = model or DEFAULTS["model"]
    val_fraction = DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
    config = TrainConfig(**train_options)
    if config.engine != "torch":
        raise DataError("streamed data train with the torch engine; drop --engine numpy")
    check_device(device, config.precision)
    arr = StreamedArray(data)
    train, val = split_blocks(arr, val_fraction, config.seed)
    kind = scale or ("image" if image_shape is not None and arr.integer_valued() else "minmax")
    scaler = fit_scaler(train, kind)
    for view in (train, val):
        if view is not None:
            view.transform = scaler.transform
    options = dict(model_options or {})
    sample = train.first_rows(1024)
    options["output_activation"] = resolve_output_activation(
        model, options.get("output_activation"), sample
    )
    if image_shape is not None:
        options["image_shape"] = tuple(image_shape)
    torch.manual_seed(config.seed)
    net = build_model(model, arr.width, **options)
    net.scaler = scaler
    record = {
        "source": str(Path(data).resolve()),
        "stream": True,
        "data_dir": None,
        "limit": None,
        "val_fraction": val_fraction,
        "image_shape": list(image_shape) if image_shape else None,
        "n_train": len(train),
        "n_val": 0 if val is None else len(val),
        "sha256": arr.fingerprint(),
    }
    extra = {"data": record, "training": asdict(config)}
    split = (train, val, scaler)
    return _fit_run(net, config, out, image_shape, split, progress, device, config_json=extra)


def find_streamed(stored: dict, data, out: Path, seed: int, scaler):
    """The streamed split of a run being resumed (from a new place when ``data`` is given)."""
    source = stored["source"] if data is None else str(Path(data).resolve())
    try:
        arr = StreamedArray(source)
    except DataError as e:
        raise DataError(f"{e} (resuming {out}: if the data moved, pass --data)") from None
    if arr.fingerprint() != stored.get("sha256"):
        raise DataError(
            f"the data at {source} are not the data {out} was trained on; resume with the "
            "original data, or start a new run with another --out"
        )
    stored["source"] = source
    train, val = split_blocks(arr, stored["val_fraction"], seed, scaler.transform)
    return train, val, scaler
