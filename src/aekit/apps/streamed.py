"""Training on data larger than memory: a .npy file or a folder of shards, read in blocks.

The run is the same as for data in memory (:mod:`aekit.apps.train`: a
:class:`~aekit.apps.fitting.RunSpec` that the same fit writes), with three differences:
the scaler is fitted in one pass over the training blocks, the validation part is a seeded
choice of whole blocks, and the data's fingerprint covers the shape and three blocks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data.stream import StreamedArray, column_moments, fit_scaler, split_blocks
from ..errors import DataError
from ..nn import build_model
from ..training import TrainConfig
from ..training.devices import check_device


def streamed_spec(data, model, scale, val_fraction, image_shape, model_options,
                  train_options, device, reading=None):  # fmt: skip
    """A new run on streamed data as a :class:`~aekit.apps.fitting.RunSpec` (the scaler
    fitted in one pass over the training blocks), for :func:`~aekit.apps.fitting.fit_run`."""
    from ..data.units import Units
    from .fitting import DEFAULTS, RunSpec, build_strategy, resolve_output_activation

    model = model or DEFAULTS["model"]
    val_fraction = DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
    config = TrainConfig(**train_options)
    if config.engine != "torch":
        raise DataError("streamed data train with the torch engine; drop --engine numpy")
    check_device(device, config.precision)
    arr = StreamedArray(data, reading=reading)
    if arr.image_shape is not None:  # image files: their shape, and their format's maximum
        if image_shape is not None and tuple(image_shape) != arr.image_shape:
            raise DataError(
                f"{data} holds images of shape {list(arr.image_shape)}, not the image_shape "
                f"{list(image_shape)} given; drop the image shape, or pass --resize / --color"
            )
        image_shape = arr.image_shape
    train, val = split_blocks(arr, val_fraction, config.seed)
    integer = arr.integer_valued() or arr.max_value is not None
    kind = scale or ("image" if image_shape is not None and integer else "minmax")
    part = _scaler_part(device)
    # tables: one pass gives the scaler and the units' per-column range
    moments = None if kind == "image" else column_moments(train, **part)
    scaler = fit_scaler(train, kind, moments=moments, **part)
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
    top = 1.0 / float(scaler.scale[0]) if kind == "image" else None
    if moments is not None:  # the training blocks' range, per column (or whole, for images)
        net.units = Units.from_ranges(
            moments[0], moments[1], dtype=str(arr.shards[0].dtype), max_value=None,
            image=image_shape is not None,
        )  # fmt: skip
    else:  # streamed images under the image scaler: their format's range is their units
        net.units = Units.from_ranges(
            [0.0], [top], dtype=str(arr.shards[0].dtype), max_value=top, image=True
        )
    record = {
        "source": str(Path(data).resolve()),
        "stream": True,
        "data_dir": None,
        "limit": None,
        "val_fraction": val_fraction,
        "image_shape": list(image_shape) if image_shape else None,
        "n_train": len(train),
        "n_val": 0 if val is None else len(val),
        "block_rows": arr.block_rows,  # the blocks the validation split chose among
        "sha256": arr.fingerprint(),
    }
    if arr.names is not None:
        resize = (reading or {}).get("resize")
        record.update(color=(reading or {}).get("color") or "auto",
                      resize=list(resize) if resize else None)  # fmt: skip
    records = {"data": record, "training": asdict(config)}
    strategy, where = build_strategy(config, device)
    return RunSpec(net, config, (train, val, scaler), strategy, where, image_shape, records)


def _scaler_part(device) -> dict:
    """Under torchrun each rank reads its own blocks for the scaler, the sums all-reduced."""
    from ..training import distributed

    if not distributed.launched():
        return {}
    distributed.init(device)  # (the strategy joins the same world later)
    import torch.distributed as dist

    part = (dist.get_rank(), dist.get_world_size())
    return {"part": part, "combine": distributed.all_reduce_moments}


def find_streamed(stored: dict, data, out: Path, seed: int, scaler):
    """The streamed split of a run being resumed (from a new place when ``data`` is given)."""
    from .fitting import reading_options

    source = stored["source"] if data is None else str(Path(data).resolve())
    try:
        arr = StreamedArray(source, reading=reading_options(stored))
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


def read_ahead(arr: StreamedArray):
    """The blocks of ``arr`` in order, each next one read in a background thread (file I/O and
    the finite check release the GIL) into one of two recycled buffers: a block yielded stays
    valid until the next one is asked for."""
    from concurrent.futures import ThreadPoolExecutor

    buffers = [np.empty((arr.block_rows, arr.width), np.float32) for _ in range(2)]
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(arr.block, 0, buffers[0])
        for b in range(arr.n_blocks):
            rows = pending.result()
            if b + 1 < arr.n_blocks:
                pending = reader.submit(arr.block, b + 1, buffers[(b + 1) % 2])
            yield rows


def map_to_npy(arr: StreamedArray, job, path: str, width: int) -> None:
    """Write ``job(block)`` for every block of ``arr`` to the .npy file ``path`` (float32,
    ``arr.n`` x ``width``): the next block is read and the last result written in background
    threads while this block is computed; memory: two input blocks and two results."""
    from concurrent.futures import ThreadPoolExecutor

    header = {"descr": "<f4", "fortran_order": False, "shape": (arr.n, width)}
    with open(path, "wb") as f, ThreadPoolExecutor(1) as writer:
        np.lib.format.write_array_header_1_0(f, header)
        written = None
        for rows in read_ahead(arr):
            result = np.ascontiguousarray(job(rows), dtype="<f4")
            if written is not None:
                written.result()
            written = writer.submit(f.write, memoryview(result).cast("B"))
        if written is not None:
            written.result()


def stream_scores(detector, data, reading=None, names: list | None = None) -> np.ndarray:
    """Anomaly scores (higher = more abnormal) of a streamed file or folder of shards, block
    by block: an :class:`~aekit.sklearn.AutoencoderOutlierDetector` scores each row on its
    own (in float64), so the result equals scoring the data loaded whole. Memory: a block,
    and one float per row. Image files (``reading``: color, resize) are divided by their
    format's maximum, as when they are loaded whole; ``names`` gets their file names."""
    arr = StreamedArray(data, reading=reading)
    if names is not None and arr.names is not None:
        names.extend(arr.names)
    width = detector.n_features_in_
    if arr.width != width:
        raise DataError(f"data has {arr.width} columns but the detector was fitted on {width}")
    scores = np.empty(arr.n)
    for b, rows in enumerate(read_ahead(arr)):
        lo, hi = arr.block_range(b)
        if arr.max_value:
            rows = rows / np.float32(arr.max_value)
        scores[lo:hi] = -detector.score_samples(rows)
    return scores
