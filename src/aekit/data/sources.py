"""Load data as one float32 matrix: built-in image sets, IDX, npy/npz/csv/parquet, arrays."""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aekit.errors import DataError

BUILTIN = ("digits", "mnist", "fashion-mnist")
SUFFIXES = (".npy", ".npz", ".csv", ".csv.gz", ".parquet")
SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_IMAGES, _IDX_LABELS = 2051, 2049


@dataclass(eq=False)
class Dataset:
    """A loaded data set: one matrix of samples in raw units, plus what is known about it.

    Attributes
    ----------
    X : np.ndarray
        float32, shape (N, D), C-contiguous, in the data's own units (not scaled).
    name : str
        ``"mnist"``, a file's stem, or ``"array"``.
    image_shape : tuple of int or None
        ``(C, H, W)`` with ``C * H * W == D`` for image data; None for tabular data.
    labels : np.ndarray or None
        int64 class labels of shape (N,), where the source has them.
    max_value : float or None
        The pixel maximum of the image format (255 for IDX, 16 for digits); None for tabular.
    files : tuple of str or None
        For image files: each row's file name, relative to the folder (or list) read, which
        outputs keep; None otherwise.
    dtype : str or None
        The values' type as stored (``"uint8"`` for 8-bit images and IDX, ``"float64"`` for
        text tables, ...), which the run records with their range (:mod:`aekit.data.units`).
    """

    X: np.ndarray
    name: str
    image_shape: tuple[int, int, int] | None = None
    labels: np.ndarray | None = None
    max_value: float | None = None
    files: tuple[str, ...] | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.X.shape[1]:
            raise DataError(
                f"image_shape {self.image_shape} holds {int(np.prod(self.image_shape))} values "
                f"but each sample has {self.X.shape[1]}; pass the (C, H, W) of the images"
            )
        if self.labels is not None and len(self.labels) != len(self.X):
            raise DataError(
                f"{self.name} has {len(self.X)} samples but {len(self.labels)} labels; "
                "pass one label per sample"
            )

    @property
    def n_samples(self) -> int:
        """Number of samples N."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features D per sample."""
        return int(self.X.shape[1])


def validate_array(X: Any, *, width: int | None = None, what: str = "data") -> np.ndarray:
    """Check that ``X`` is a finite numeric matrix and return it as float32, C-contiguous.

    Parameters
    ----------
    X : array-like
        The samples, shape (N, D).
    width : int, optional
        The number of columns a model expects; a different width raises.
    what : str
        How to name the data in messages, e.g. ``"data file 'x.csv'"``.

    Returns
    -------
    np.ndarray
        float32, shape (N, D), C-contiguous. No copy is made when ``X`` already is one.

    Raises
    ------
    DataError
        Non-numeric values, not 2-D, no rows or no columns, NaN/Inf, or the wrong width.
    """
    arr = _as_numeric(X, what)
    if arr.ndim != 2:
        raise DataError(_ndim_message(arr, what))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(
            f"{what} is empty (shape {arr.shape}); it needs at least one row and column"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow turns into Inf, reported below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(arr, what)
    if width is not None and arr.shape[1] != width:
        raise DataError(
            f"{what} has {arr.shape[1]} features but the model expects {width}; "
            "use data of the width the model was trained on"
        )
    return arr


def _as_numeric(X: Any, what: str) -> np.ndarray:
    """Turn ``X`` into a real-valued ndarray or raise one clear DataError."""
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        msg = f"{what} is not a rectangular array ({exc}); give every row the same length"
        raise DataError(msg) from None
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind == "c":
        raise DataError(f"{what} is complex-valued; pass real numbers (e.g. np.abs or .real)")
    try:
        return arr.astype(np.float64)
    except (ValueError, TypeError):
        raise DataError(
            f"{what} holds non-numeric values (dtype {arr.dtype}); pass numbers only"
        ) from None


def _ndim_message(arr: np.ndarray, what: str) -> str:
    if arr.ndim == 1:
        return (
            f"{what} is 1-D with shape {arr.shape}; it must be 2-D (n_samples, n_features): "
            "reshape it, e.g. X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if arr.ndim == 0:
        return f"{what} is a single number; pass a 2-D array of shape (n_samples, n_features)"
    return (
        f"{what} has {arr.ndim} dimensions (shape {arr.shape}); it must be 2-D: "
        "flatten each sample to one row, e.g. X.reshape(len(X), -1)"
    )


def _check_finite(arr: np.ndarray, what: str, lines: list[int] | None = None) -> None:
    """Raise on NaN/Inf, naming the first rows (0-based) or, for text files, the line numbers."""
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.any(axis=1))
    where = [str(lines[r]) if lines else str(r) for r in rows[:5]] + (
        ["..."] if len(rows) > 5 else []
    )
    place = ("line" if lines else "row") + ("s" if len(rows) > 1 else "")
    count = int(bad.sum())
    raise DataError(
        f"{what} has {count} non-finite value{'s' if count > 1 else ''} (NaN/Inf) "
        f"in {place} {', '.join(where)}{'' if lines else ' (0-based)'}; clean or impute them first"
    )


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
    if isinstance(key, str) and key.lower().replace("_", "-") in BUILTIN:
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
    return Dataset(images.X, name, images.shape, None, images.max_value, images.names, images.dtype)


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
    if isinstance(key, str) and key.lower().replace("_", "-") in BUILTIN:
        key = key.lower().replace("_", "-")
        if key == "digits":
            return _load_digits()
        return _load_idx_set(key, data_dir, split, limit)
    path = Path(os.fsdecode(key))
    suffix = _suffix(path)
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
    X, labels = _READERS[suffix](path)
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


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


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


# ---------------------------------------------------------------- built-in image sets


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.ascontiguousarray(bunch.data, dtype=np.float32)  # (1797, 64), values 0..16
    return Dataset(X, "digits", (1, 8, 8), bunch.target.astype(np.int64), 16.0, dtype="float64")


def _load_idx_set(name: str, data_dir: Any, split: str, limit: int | None) -> Dataset:
    prefix = _IDX_PREFIX[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    folder = _idx_folder(name, data_dir, split, stems)
    images = _read_idx(_idx_file(folder, stems[0]), _IDX_IMAGES)
    labels = _read_idx(_idx_file(folder, stems[1]), _IDX_LABELS)
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
    if any(not _has_idx(folder, stem) for stem in stems):
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
        _idx_file(folder, stem)
    return folder


def _has_idx(folder: Path, stem: str) -> bool:
    return (folder / f"{stem}.gz").is_file() or (folder / stem).is_file()


def _idx_file(folder: Path, stem: str) -> Path:
    for path in (folder / f"{stem}.gz", folder / stem):  # uncompressed copies work too
        if path.is_file():
            return path
    raise DataError(f"missing IDX file {folder / (stem + '.gz')}; download it into {folder}")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: big-endian magic, then one uint32 per dimension."""
    try:
        raw = path.read_bytes()
        buf = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path} ({exc}); download it again") from None
    if len(buf) < 4 or int.from_bytes(buf[:4], "big") != magic:
        found = int.from_bytes(buf[:4], "big") if len(buf) >= 4 else None
        kind = "images" if magic == _IDX_IMAGES else "labels"
        raise DataError(
            f"IDX file {path} has magic number {found}, expected {magic} (uint8 {kind}); "
            "it is not the right file or it is corrupt"
        )
    ndim = magic & 0xFF  # the low byte of the magic number; the byte before it is the dtype
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"IDX file {path} is truncated inside its header; download it again")
    dims = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(buf) - header != int(np.prod(dims)):
        raise DataError(
            f"IDX file {path} is truncated or padded: its header says shape {dims} "
            f"({int(np.prod(dims))} bytes) but {len(buf) - header} bytes follow; download it again"
        )
    return np.frombuffer(buf, np.uint8, offset=header).reshape(dims)


# ---------------------------------------------------------------- tabular files


def _read_npy(path: Path) -> tuple[Any, None]:
    """The array in a .npy file (an archive for .npz files), never unpickling."""
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path.name}' is empty")
    try:
        return np.load(path, allow_pickle=False), None
    except (ValueError, OSError, EOFError) as exc:
        kind = path.suffix.lower()
        msg = f"data file '{path.name}' is not a numeric {kind} file ({exc})"
        raise DataError(msg) from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Features under key "X" (or the only array) and labels under "y" when present."""
    loaded = _read_npy(path)[0]
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded, None  # a plain .npy array saved under an .npz name
    with loaded as npz:
        keys = list(npz.files)
        if "X" not in keys and len(keys) != 1:
            listed = ", ".join(repr(k) for k in keys) or "no arrays"
            raise DataError(
                f"data file '{path.name}' holds {listed} and none is named 'X'; "
                "save the features under 'X' (np.savez(path, X=X, y=y))"
            )
        key = "X" if "X" in keys else keys[0]
        try:
            return npz[key], (npz["y"] if "y" in keys and key != "y" else None)
        except (ValueError, OSError, EOFError) as exc:
            msg = f"data file '{path.name}' is not a numeric .npz file ({exc})"
            raise DataError(msg) from None


def _read_csv(path: Path) -> tuple[np.ndarray, None]:
    """Comma-separated numbers; a first row of non-numbers only is a header.

    A first row mixing numbers and text is data with a typo, reported as such rather than
    silently dropped as a header.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows, lines = [], []
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are skipped
                    rows.append(row)
                    lines.append(reader.line_num)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"data file '{path.name}' cannot be read as UTF-8 csv ({exc})") from None
    if not rows:
        raise DataError(f"data file '{path.name}' is empty")
    width = len(rows[0])
    if all(_bad_cell(cell) is not None for cell in rows[0]):
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise DataError(f"data file '{path.name}' has a header row but no data rows")
    for row, line in zip(rows, lines, strict=True):
        _check_csv_row(path, row, line, width)
    X = np.array(rows, dtype=np.float64)
    _check_finite(X, f"data file '{path.name}'", lines)
    return X, None


def _check_csv_row(path: Path, row: list[str], line: int, width: int) -> None:
    if len(row) != width:
        raise DataError(
            f"data file '{path.name}' line {line} has {len(row)} value(s) but the first row "
            f"has {width}; every row needs the same number of comma-separated values"
        )
    for col, cell in enumerate(row, start=1):
        why = _bad_cell(cell)
        if why is not None:
            raise DataError(f"data file '{path.name}' line {line}, column {col} holds {why}")


def _bad_cell(cell: str) -> str | None:
    """None if ``cell`` is a number, else what is wrong with it."""
    try:
        float(cell)
        return None
    except ValueError:
        if not cell.strip():
            return "an empty cell; fill or drop missing values first"
        if ";" in cell or "\t" in cell:
            return f"{cell.strip()!r}, not a number; the file must be comma-separated"
        return f"{cell.strip()!r}, which is not a number; csv data must be numeric"


def _read_parquet(path: Path) -> tuple[np.ndarray, None]:
    try:
        columns = _parquet_columns(path)
    except ImportError:
        raise DataError(
            f"reading '{path.name}' needs pyarrow: pip install aekit[parquet]"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"data file '{path.name}' is not a readable parquet file ({exc})") from None
    if not columns:
        raise DataError(f"data file '{path.name}' has no columns")
    for name, col in columns.items():
        if col.dtype.kind not in "biuf":
            raise DataError(
                f"data file '{path.name}' column {name!r} is not numeric (dtype {col.dtype}); "
                "drop or encode it first"
            )
    return np.column_stack([c.astype(np.float64) for c in columns.values()]), None


def _parquet_columns(path: Path) -> dict[str, np.ndarray]:
    """Columns by name through pyarrow, else pandas; ImportError when neither is installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        import pandas as pd  # pandas reads parquet through fastparquet when pyarrow is absent

        df = pd.read_parquet(path)
        return {str(n): df[n].to_numpy() for n in df.columns}
    table = pq.read_table(path)  # nulls come back as NaN and are reported as non-finite
    return {n: c.to_numpy() for n, c in zip(table.column_names, table.columns, strict=True)}


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".parquet": _read_parquet,
}
