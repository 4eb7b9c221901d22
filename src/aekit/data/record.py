"""The data record: one float32 matrix of samples and what is known about it, and the checks
that make any array-like one (numeric, 2-D, non-empty, finite, of the model's width)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.errors import DataError


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
    sources : dict of str to np.ndarray, or None
        Image files read as patches: each file's whole image (C, H, W) in raw units, by the
        name its tiles' ``files`` begin with, which random crops are drawn from
        (:mod:`aekit.data.crops`); None otherwise.
    """

    X: np.ndarray
    name: str
    image_shape: tuple[int, int, int] | None = None
    labels: np.ndarray | None = None
    max_value: float | None = None
    files: tuple[str, ...] | None = None
    dtype: str | None = None
    sources: dict[str, np.ndarray] | None = None

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
    check_finite(arr, what)
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


def check_finite(arr: np.ndarray, what: str, lines: list[int] | None = None) -> None:
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
