"""Feature scaling that round-trips through JSON, and a seeded train/validation split."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aekit.data.record import validate_array
from aekit.errors import DataError

if TYPE_CHECKING:
    from aekit.data.record import Dataset

SCALER_KINDS = ("image", "minmax", "standard", "none")
_TINY = float(np.finfo(np.float32).tiny)  # a range below this counts as a constant column
_CHUNK = 8192  # rows per block when summing squared deviations (bounds float64 memory)


@dataclass(eq=False)
class Scaler:
    """An affine map applied per column: ``X_scaled = (X - offset) * scale``.

    Attributes
    ----------
    kind : str
        ``"image"`` (divide by the format's pixel maximum, so images land in [0, 1]),
        ``"minmax"`` (each column to [0, 1]), ``"standard"`` (each column to zero mean and unit
        variance) or ``"none"`` (identity).
    offset, scale : np.ndarray or None
        float64 vectors, of length 1 for ``"image"`` (one value for every pixel) and of length D
        for the per-column kinds; None for ``"none"``. Constant columns get scale 1.
    """

    kind: str
    offset: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(cls, X: Any, kind: str, max_value: float | None = None) -> Scaler:
        """Learn the offset and scale of ``kind`` from the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Training data in raw units.
        kind : {"image", "minmax", "standard", "none"}
            Which scaling to fit.
        max_value : float, optional
            The pixel maximum of the image format; required by ``"image"``.

        Returns
        -------
        Scaler
            The fitted scaler.

        Raises
        ------
        DataError
            Unknown ``kind``, invalid data, or ``"image"`` without a positive ``max_value``.
        """
        if kind not in SCALER_KINDS:
            raise DataError(f"unknown scaler {kind!r}; use one of {', '.join(SCALER_KINDS)}")
        X = validate_array(X)
        if kind == "none":
            return cls("none")
        if kind == "image":
            return cls("image", np.zeros(1), np.array([1.0 / _check_max_value(max_value)]))
        if kind == "minmax":
            lo = X.min(axis=0).astype(np.float64)
            return cls("minmax", lo, _safe_inverse(X.max(axis=0).astype(np.float64) - lo))
        mean = X.mean(axis=0, dtype=np.float64)
        return cls("standard", mean, _safe_inverse(_column_std(X, mean)))

    def transform(self, X: Any) -> np.ndarray:
        """Map raw data to the scaled space: float32 in, float32 out, any leading shape."""
        arr = self._as_float32(X)
        if self.offset is None or self.scale is None:
            return arr.copy()
        return (arr - self.offset.astype(np.float32)) * self.scale.astype(np.float32)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Map scaled data (e.g. reconstructions) back to raw units: float32 in, float32 out."""
        arr = self._as_float32(X)
        if self.offset is None or self.scale is None:
            return arr.copy()
        return arr / self.scale.astype(np.float32) + self.offset.astype(np.float32)

    def _as_float32(self, X: Any) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float32)
        width = 1 if self.offset is None else len(self.offset)
        if width > 1 and (arr.ndim == 0 or arr.shape[-1] != width):
            got = "a scalar" if arr.ndim == 0 else f"{arr.shape[-1]} features"
            raise DataError(
                f"data has {got} but the scaler was fitted on {width}; "
                "use data of the width the model was trained on"
            )
        return arr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (Python floats, full float64 precision)."""
        return {"kind": self.kind, "offset": _to_list(self.offset), "scale": _to_list(self.scale)}

    @classmethod
    def from_dict(cls, d: Any) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict` output; raise DataError if it is malformed."""
        if not isinstance(d, dict) or set(d) != {"kind", "offset", "scale"}:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise _malformed(f"expected keys kind, offset, scale, got {keys}")
        kind = d["kind"]
        if kind not in SCALER_KINDS:
            raise _malformed(f"unknown kind {kind!r} (use one of {', '.join(SCALER_KINDS)})")
        if kind == "none":
            if d["offset"] is not None or d["scale"] is not None:
                raise _malformed("kind 'none' has offset and scale null")
            return cls("none")
        offset, scale = _from_list(d["offset"], "offset"), _from_list(d["scale"], "scale")
        if len(offset) != len(scale) or (kind == "image" and len(offset) != 1):
            raise _malformed(f"offset has {len(offset)} values and scale {len(scale)}")
        if not np.all(scale != 0):
            raise _malformed("scale holds a zero")
        return cls(kind, offset, scale)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scaler):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def default_scaler_kind(dataset: Dataset) -> str:
    """``"image"`` for image data with a known pixel maximum, else ``"minmax"``."""
    if dataset.image_shape is not None and dataset.max_value is not None:
        return "image"
    return "minmax"


def train_val_split(
    X: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split the rows of ``X`` at random into training and validation parts.

    Parameters
    ----------
    X : np.ndarray of shape (N, ...)
        The samples.
    val_fraction : float
        Share of rows for validation, in [0, 1); 0 keeps every row for training.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same split.

    Returns
    -------
    train : np.ndarray
        ``N - n_val`` rows, in random order.
    val : np.ndarray or None
        ``n_val = max(1, round(N * val_fraction))`` rows, or None when ``val_fraction`` is 0.

    Raises
    ------
    DataError
        ``val_fraction`` outside [0, 1), or too few rows to leave one for each part.
    """
    frac = _check_fraction(val_fraction)
    X = np.asarray(X)
    if X.ndim == 0 or len(X) == 0:
        raise DataError("cannot split empty data; load at least one sample")
    if frac == 0:
        return X, None
    n = len(X)
    n_val = max(1, round(n * frac))
    if n - n_val < 1:
        raise DataError(
            f"val_fraction={val_fraction} of {n} sample(s) leaves no training data; "
            "use more data or a smaller val_fraction (0 for no validation)"
        )
    order = np.random.default_rng(seed).permutation(n)
    return X[order[n_val:]], X[order[:n_val]]


def _check_fraction(val_fraction: Any) -> float:
    ok = isinstance(val_fraction, (int, float, np.integer, np.floating))
    if isinstance(val_fraction, bool) or not ok or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    return float(val_fraction)


def _check_max_value(max_value: Any) -> float:
    try:
        value = float(max_value)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise DataError(
            f"the 'image' scaler needs the pixel maximum of the format (e.g. 255 for 8-bit "
            f"images), got max_value={max_value!r}; pass it or use scaler 'minmax'"
        )
    return value


def _column_std(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Population std per column in float64, a block of rows at a time."""
    total = np.zeros(X.shape[1])
    for start in range(0, len(X), _CHUNK):
        dev = X[start : start + _CHUNK].astype(np.float64) - mean
        total += np.einsum("ij,ij->j", dev, dev)
    return np.sqrt(total / len(X))


def _safe_inverse(spread: np.ndarray) -> np.ndarray:
    """1 / spread, with 1 where a column is constant (no division by zero)."""
    constant = spread <= _TINY
    return np.where(constant, 1.0, 1.0 / np.where(constant, 1.0, spread))


def _to_list(a: np.ndarray | None) -> list[float] | None:
    return None if a is None else [float(v) for v in a]


def _from_list(values: Any, name: str) -> np.ndarray:
    ok = isinstance(values, list) and len(values) > 0
    if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise _malformed(f"{name} must be a non-empty list of numbers")
    arr = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise _malformed(f"{name} holds NaN or Inf")
    return arr


def _malformed(why: str) -> DataError:
    return DataError(f"malformed scaler dict: {why}; it must come from Scaler.to_dict()")
