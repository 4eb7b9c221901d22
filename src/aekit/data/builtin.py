"""The built-in data sets: scikit-learn's digits, and MNIST / Fashion-MNIST read from their IDX
files in a data folder (downloaded into it when missing, :mod:`aekit.data.download`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.idx import IDX_IMAGES, IDX_LABELS, has_idx, idx_file, read_idx
from aekit.data.record import Dataset
from aekit.errors import DataError

BUILTIN = ("digits", "mnist", "fashion-mnist")
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def builtin_name(source: Any) -> str | None:
    """The built-in set ``source`` names (case and ``_`` / ``-`` aside), or None."""
    if not isinstance(source, str):
        return None
    key = source.lower().replace("_", "-")
    return key if key in BUILTIN else None


def load_builtin(key: str, data_dir: Any, split: str, limit: int | None) -> Dataset:
    """The built-in set ``key`` (one of :data:`BUILTIN`): all of digits, MNIST's ``split``."""
    if key == "digits":
        return _load_digits()
    return _load_idx_set(key, data_dir, split, limit)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.ascontiguousarray(bunch.data, dtype=np.float32)  # (1797, 64), values 0..16
    return Dataset(X, "digits", (1, 8, 8), bunch.target.astype(np.int64), 16.0, dtype="float64")


def _load_idx_set(name: str, data_dir: Any, split: str, limit: int | None) -> Dataset:
    prefix = _IDX_PREFIX[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    folder = _idx_folder(name, data_dir, split, stems)
    images = read_idx(idx_file(folder, stems[0]), IDX_IMAGES)
    labels = read_idx(idx_file(folder, stems[1]), IDX_LABELS)
    if len(images) != len(labels):
        raise DataError(
            f"{folder} holds {len(images)} {split} images but {len(labels)} labels; "
            "the files do not belong together, download them again"
        )
    n = len(images) if limit is None else min(limit, len(images))
    X = images[:n].reshape(n, -1).astype(np.float32)  # (N, 28, 28) uint8 -> (N, 784) float32
    shape = (1, images.shape[1], images.shape[2])
    return Dataset(X, name, shape, labels[:n].astype(np.int64), 255.0, dtype="uint8")


def _idx_folder(name: str, data_dir: Any, split: str, stems: tuple[str, ...]) -> Path:
    """``<data_dir or $AEKIT_DATA or the cache>/<name>``, downloading the split's missing files.

    As torchvision's ``download=True``: a folder that holds the files is used as it is; files
    missing from the folder given are downloaded into it. ``AEKIT_OFFLINE=1`` turns this off.
    """
    from aekit.data import download

    base = data_dir if data_dir is not None else os.environ.get("AEKIT_DATA")
    if download.offline():
        return _offline_folder(name, base, stems)
    root = Path(base).expanduser() if base is not None and str(base) != "" else download.cache_dir()
    folder = root / name
    if any(not has_idx(folder, stem) for stem in stems):
        download.fetch_idx(name, root, split=split)
    return folder


def _offline_folder(name: str, base: Any, stems: tuple[str, ...]) -> Path:
    """The folder of local files only: no download, and a clear line when they are absent."""
    hint = (
        "pass --data-dir DIR (data_dir=) or set AEKIT_DATA to the folder that holds "
        f"{name}/ with its IDX .gz files (e.g. the shared data folder); downloads are off "
        "(AEKIT_OFFLINE)"
    )
    if base is None or str(base) == "":
        raise DataError(f"{name!r} is read from <data dir>/{name}/ but no data dir is set; {hint}")
    folder = Path(base).expanduser() / name
    if not folder.is_dir():
        raise DataError(f"no {name} folder at {folder}; {hint}")
    for stem in stems:
        idx_file(folder, stem)
    return folder
