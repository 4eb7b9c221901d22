"""The units a model was trained in, and the check that new data are in the same ones.

A model's scaler maps raw values to what it computes on (e.g. divides 8-bit pixels by 255).
Given the same images as floats in [0, 1] (PyTorch's habit) the scaler would shrink them
255-fold and every output would be garbage with no error. So a run records its training data's
dtype, format maximum and range (per column for tables) as :class:`Units` (``config.json``
key ``"units"``), and every job on new data calls :meth:`Units.check` first:

- image data whose format maximum differs from training's (16-bit files to an 8-bit model), or
  that lie in [0, 1] with fractions where training's reached past 1 (or reach past 1 where
  training's lay in [0, 1]), are refused in one line saying what was expected and what to do
  (images of 0s and 1s only say nothing of their units and pass);
- table columns far outside their training range (more than one training range beyond it)
  get one warning line naming them;
- ``mode="as-is"`` skips the check, ``mode="convert"`` rescales images to the model's units
  (by the ratio of the format maxima, or by the model's maximum for data in [0, 1]).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError

MODES = ("check", "as-is", "convert")
_FAR = 1.0  # a column is "far" outside when it passes its training range by this many ranges


@dataclass(eq=False)
class Units:
    """Training data's units: stored dtype, the format's maximum (images), value range.

    ``lo`` / ``hi`` hold one value for images (the whole set's range) and one per column for
    tables.
    """

    dtype: str
    lo: np.ndarray
    hi: np.ndarray
    max_value: float | None = None
    image: bool = False

    @classmethod
    def fit(cls, X: np.ndarray, *, dtype: str | None, max_value: float | None, image: bool):
        """Record the rows ``X`` (N, D) in raw units."""
        X = np.asarray(X)
        if image:
            lo, hi = np.array([float(X.min())]), np.array([float(X.max())])
        else:
            lo, hi = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
        return cls(str(dtype or X.dtype), lo, hi, None if max_value is None else float(max_value),
                   bool(image))  # fmt: skip

    @classmethod
    def from_ranges(cls, lo, hi, *, dtype: str, max_value: float | None, image: bool):
        """From running minima and maxima (streamed data, read block by block)."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if image:
            lo, hi = np.array([lo.min()]), np.array([hi.max()])
        return cls(dtype, lo, hi, max_value, image)

    def describe(self) -> str:
        """'values 0-255 (uint8)' / 'values in [0, 1] (float32)'."""
        lo, hi = float(self.lo.min()), float(self.hi.max())
        if self.max_value is not None and self.max_value > 1:
            return f"values 0-{self.max_value:g} ({self.dtype})"
        if lo >= 0 and hi <= 1:
            return f"values in [0, 1] ({self.dtype})"
        return f"values {lo:.4g} to {hi:.4g} ({self.dtype})"

    def check(
        self, X: np.ndarray, *, mode: str = "check", max_value: float | None = None,
        what: str = "these data",
    ) -> np.ndarray:  # fmt: skip
        """``X`` (N, D) raw, checked (or converted) against the training units.

        ``max_value`` is the new data's format maximum when it is known (image files, IDX).
        Returns ``X`` itself unless ``mode="convert"`` rescaled it.
        """
        if mode not in MODES:
            raise DataError(f"unknown units mode {mode!r}; use one of {', '.join(MODES)}")
        if mode == "as-is" or len(X) == 0:
            return X
        if not self.image:
            self._warn_columns(X, what)
            return X
        factor, why = self._image_mismatch(X, max_value)
        if factor is None:
            return X
        if mode == "convert":
            return (np.asarray(X, np.float32) * np.float32(factor)).astype(np.float32)
        scale = f"multiply them by {factor:g}" if factor >= 1 else f"divide them by {1 / factor:g}"
        raise DataError(
            f"the model was trained on {self.describe()}; {what} {why}: {scale}, or pass "
            "--units convert (units='convert') to do it, or --units as-is (units='as-is') to "
            "use them unchanged"
        )

    def _image_mismatch(self, X, max_value) -> tuple[float | None, str]:
        """(the factor that brings X to the model's units, what is wrong), or (None, '')."""
        trained_hi = float(self.hi.max())
        if max_value is not None and self.max_value is not None and max_value != self.max_value:
            where = "lie in [0, 1]" if max_value == 1 else f"are in values 0-{max_value:g}"
            return self.max_value / max_value, where
        lo, hi = float(np.min(X)), float(np.max(X))
        fractional = lo >= 0 and hi <= 1.0 and bool(np.any(np.asarray(X) % 1))
        if trained_hi > 1.5 and fractional:  # (all 0s and 1s say nothing of the units)
            target = self.max_value if self.max_value is not None else trained_hi
            return target, "lie in [0, 1]"
        if trained_hi <= 1.0 and hi > 1.5:
            top = 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi
            return 1.0 / top, f"reach {hi:g}"
        return None, ""

    def _warn_columns(self, X, what: str) -> None:
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = np.maximum(self.hi - self.lo, np.abs(self.hi) * 1e-6 + 1e-12)
        far = np.flatnonzero((lo < self.lo - _FAR * span) | (hi > self.hi + _FAR * span))
        if len(far) == 0:
            return
        j = int(far[0])
        names = ", ".join(str(int(c)) for c in far[:5]) + (", ..." if len(far) > 5 else "")
        warnings.warn(
            f"{what}: {len(far)} column(s) lie far outside their training range (columns "
            f"{names}, 0-based; column {j}: {lo[j]:.4g} to {hi[j]:.4g}, trained on "
            f"{self.lo[j]:.4g} to {self.hi[j]:.4g}); check that they are in the same units",
            stacklevel=3,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "max_value": self.max_value,
            "image": self.image,
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Units:
        """Rebuild from :meth:`to_dict`; a malformed record raises DataError."""
        try:
            lo = np.asarray(d["lo"], np.float64)
            hi = np.asarray(d["hi"], np.float64)
            top = d["max_value"]
            if isinstance(top, bool | str):
                raise TypeError("max_value")
            units = cls(str(d["dtype"]), lo, hi, None if top is None else float(top),
                        bool(d["image"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise DataError(
                "config.json has a malformed 'units' record; train the run again"
            ) from None
        finite = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
        top_ok = units.max_value is None or 0 < units.max_value < np.inf
        if lo.shape != hi.shape or lo.ndim != 1 or not len(lo) or not finite or not top_ok:
            raise DataError("config.json has a malformed 'units' record; train the run again")
        return units
