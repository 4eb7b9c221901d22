"""Load data as one float32 matrix: built-in image sets, tables in files, image files, arrays.

:func:`load_dataset` is the one entry: it finds which kind of source it was given and hands it
to its reader (:mod:`aekit.data.builtin`, :mod:`aekit.data.tables`, :mod:`aekit.data.images`),
then makes the :class:`~aekit.data.record.Dataset` record.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.builtin import BUILTIN, builtin_name, load_builtin
from aekit.data.record import Dataset, validate_array
from aekit.data.tables import READERS, SUFFIXES, table_suffix
from aekit.errors import DataError

__all__ = ["BUILTIN", "SPLITS", "SUFFIXES", "Dataset", "load_dataset", "validate_array"]

SPLITS = ("train", "test")


def load_dataset(
    source: str | os.PathLike | np.ndarray,
    *,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    limit: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    color: str = "auto",
    resize: tuple[int, int] | None = None,
    patch: int | None = None,
) -> Dataset:
    """Load a built-in data set, a data file, image files or an in-memory array.

    Parameters
    ----------
    source : str, path or array-like
        ``"digits"``, ``"mnist"``, ``"fashion-mnist"``; a path ending ``.npy``, ``.npz``,
        ``.csv`` (or ``.csv.gz``), ``.parquet``; images: a folder of them (read recursively in
        sorted order), one image file (.png, .jpg, .webp, .tif, .bmp) or a ``.txt`` file
        listing image paths (:mod:`aekit.data.images`); or a numeric array.
    data_dir : str or path, optional
        The folder holding ``mnist/`` and ``fashion-mnist/`` with the IDX ``.gz`` files.
        Defaults to the environment variable ``AEKIT_DATA``, else the cache ``~/.cache/aekit``.
        Files of the split that are missing from it are downloaded into it and checked by md5
        (:mod:`aekit.data.download`: mirror ``AEKIT_MIRROR``; ``AEKIT_OFFLINE=1`` turns it off).
    split : {"train", "test"}
        Which part of MNIST / Fashion-MNIST to load; ignored by the other sources.
    limit : int, optional
        Keep only the first ``limit`` samples.
    image_shape : (C, H, W), optional
        Fold each row of a file or array into an image (for convolutional models). Arrays of
        shape (N, H, W) or (N, C, H, W) are images already: they are flattened to rows and
        carry their shape. Images stored as uint8 are scaled by 255, images in [0, 1] by 1.
    color : {"auto", "gray", "rgb"}
        Image files: keep each file's mode ("auto"; a mix is refused) or convert all to one.
    resize : (H, W), optional
        Image files: resample every image to this size (a mix of sizes is refused without it).
    patch : int, optional
        Image files of any sizes: cut each into ``patch`` x ``patch`` tiles, one row each
        (:func:`aekit.data.images.read_patches`; fully convolutional models train on them).

    Returns
    -------
    Dataset
        ``X`` is float32 (N, D) in raw units; image sets carry ``image_shape`` and
        ``max_value``; labels come with the built-in sets and with ``.npz`` key ``"y"``.

    Raises
    ------
    DataError
        Unknown name or suffix, missing or malformed file, non-finite values, bad split or limit;
        a download that failed or whose md5 differs.

    Examples
    --------
    >>> ds = load_dataset("digits", limit=100)
    >>> ds.X.shape, ds.image_shape, ds.max_value
    ((100, 64), (1, 8, 8), 16.0)
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    limit = _check_limit(limit)
    if isinstance(source, (str, os.PathLike)) and _is_images(source):
        path = Path(os.fsdecode(os.fspath(source)))
        return _load_images(path, limit, image_shape, color, resize, patch)
    if isinstance(source, (str, os.PathLike)):
        ds = _load_named(source, data_dir, split, limit, image_shape)
    else:
        ds = _dataset("array", source, None, "data", image_shape)
    if limit is not None and limit < ds.n_samples:
        labels = None if ds.labels is None else ds.labels[:limit]
        ds = replace(ds, X=ds.X[:limit].copy(), labels=labels)
    return ds


def _is_images(source: str | os.PathLike) -> bool:
    from aekit.data.images import is_image_source

    key = os.fspath(source)
    if builtin_name(key) is not None:
        return False
    return is_image_source(os.fsdecode(key))


def _load_images(path: Path, limit, image_shape, color, resize, patch=None) -> Dataset:
    from aekit.data.images import read_images, read_patches

    if patch is not None and resize is None:
        images = read_patches(path, int(patch), color=color, limit=limit)
    else:
        images = read_images(path, color=color, resize=resize, limit=limit)
    if image_shape is not None and tuple(image_shape) != images.shape:
        raise DataError(
            f"{path} holds images of shape {list(images.shape)} (C, H, W), not the image_shape "
            f"{list(image_shape)} given; drop the image shape, or pass --resize / --color"
        )
    name = path.stem if path.is_file() else path.name
    return Dataset(images.X, name, images.shape, None, images.max_value, images.names, images.dtype,
                   images.sources)  # fmt: skip


def _check_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if (
        isinstance(limit, (bool, np.bool_))
        or not isinstance(limit, (int, np.integer))
        or limit <= 0
    ):
        raise DataError(f"limit must be a positive whole number of samples, got {limit!r}")
    return int(limit)


def _load_named(
    source: str | os.PathLike, data_dir: Any, split: str, limit: int | None, image_shape=None
) -> Dataset:
    key = os.fspath(source)
    name = builtin_name(key)
    if name is not None:
        return load_builtin(name, data_dir, split, limit)
    path = Path(os.fsdecode(key))
    suffix = table_suffix(path)
    if suffix is None:
        raise DataError(
            f"unknown data source {str(path)!r}; use one of {', '.join(BUILTIN)} "
            f"or a file ending {', '.join(SUFFIXES)}, or images (a folder, a .png/.jpg/.webp/"
            ".tif/.bmp file, or a .txt list of image paths)"
        )
    if not path.exists():
        raise DataError(f"no such data file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass a data file ending {', '.join(SUFFIXES)}")
    X, labels = READERS[suffix](path)
    what = f"data file '{path.name}'"
    return _dataset(path.name[: -len(suffix)], X, labels, what, image_shape)


def _dataset(name: str, X: Any, labels: Any, what: str, image_shape) -> Dataset:
    """A Dataset from rows, or from images (N, H, W) / (N, C, H, W) flattened to rows."""
    arr = np.asarray(X) if isinstance(X, np.ndarray) else X
    shape = None
    if isinstance(arr, np.ndarray) and arr.ndim in (3, 4) and arr.dtype.kind in "biuf":
        shape = (1, *arr.shape[1:]) if arr.ndim == 3 else tuple(arr.shape[1:])
        if image_shape is not None and tuple(image_shape) != shape:
            raise DataError(
                f"{what} holds images of shape {list(shape)}, not the image_shape "
                f"{list(image_shape)} given; drop the image shape or fix it"
            )
        arr = arr.reshape(len(arr), -1)
    elif image_shape is not None:
        shape = _image_shape(image_shape)
    dtype = str(arr.dtype) if isinstance(arr, np.ndarray) else None
    if shape is None:
        rows = validate_array(arr, what=what)
        return Dataset(rows, name, labels=_as_labels(labels, what), dtype=dtype or str(rows.dtype))
    raw = np.asarray(arr)
    rows = validate_array(raw, what=what)
    if raw.dtype == np.uint8:
        max_value: float | None = 255.0
    else:
        max_value = 1.0 if rows.min() >= 0 and rows.max() <= 1 else None
    return Dataset(rows, name, shape, _as_labels(labels, what), max_value, dtype=str(raw.dtype))


def _image_shape(value: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise DataError(f"image_shape must be three positive sizes (C, H, W), got {value!r}")
    return shape  # type: ignore[return-value]


def _as_labels(labels: Any, what: str) -> np.ndarray | None:
    """Labels as an int64 vector (a column (N, 1) is flattened), or None."""
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise DataError(f"{what} has labels 'y' of shape {y.shape}; save one number per sample")
    return y.astype(np.int64) if y.dtype.kind != "f" else y
