"""Samples as rows and back: the one place where image batches are folded and unfolded.

Every model computes on rows (N, D). The Python entry points (a loaded model's
``encode_numpy`` / ``reconstruct_numpy`` / ``decode_numpy``, :func:`aekit.compress`, the
scikit-learn estimators) also take images as (N, H, W) (one channel) or (N, C, H, W):
:func:`as_rows` flattens them and returns the :class:`Layout` they came in, and
:meth:`Layout.unfold` gives rows back in that layout, so that what goes in as (N, 28, 28)
comes out as (N, 28, 28) and flat rows stay flat rows::

    rows, layout = as_rows(X, width=784, image_shape=(1, 28, 28))  # (N, 784), (28, 28)
    X_hat = layout.unfold(model_rows)                              # (N, 28, 28)

A shape that does not hold the model's D values, or whose (C, H, W) is not the model's
image shape, is refused in one :class:`~aekit.errors.DataError` line naming both shapes.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.errors import DataError

__all__ = ["Layout", "as_rows", "sample_layout"]


@dataclass(frozen=True)
class Layout:
    """The shape of one sample as it came in: (D,) for rows, (H, W) or (C, H, W) for images."""

    sample_shape: tuple[int, ...]

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) > 1

    @property
    def size(self) -> int:
        """Values per sample: D = C * H * W."""
        return math.prod(self.sample_shape)

    def unfold(self, rows: Any) -> Any:
        """Rows (N, D) in this layout: (N, *sample_shape); rows of another width stay rows
        (codes (N, k) are never folded)."""
        if not self.is_image or rows.ndim != 2 or rows.shape[1] != self.size:
            return rows
        return rows.reshape(len(rows), *self.sample_shape)


def as_rows(
    X: Any,
    *,
    width: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    what: str = "data",
) -> tuple[Any, Layout]:
    """``X`` as rows (N, D) and the layout it came in.

    Parameters
    ----------
    X : array-like or torch.Tensor
        (N, D) rows, (N, H, W) one-channel images or (N, C, H, W) images. A tensor stays a
        tensor (a view when it is contiguous); anything else becomes an ndarray.
    width : int, optional
        The D the model expects; None accepts any (an estimator before ``fit``).
    image_shape : (C, H, W), optional
        The model's images: (N, H, W) must match (1, H, W) and (N, C, H, W) must match it.
        Without one, images are accepted whenever C * H * W == ``width``.
    what : str
        How messages name the data.

    Raises
    ------
    DataError
        Not 2-, 3- or 4-D, or a shape the model cannot take (both shapes named).
    """
    torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
    arr = X if torch is not None and torch.is_tensor(X) else np.asarray(X)
    shape = tuple(int(s) for s in arr.shape)
    layout = _layout(shape, width, image_shape, what)
    if layout.is_image:
        arr = arr.reshape(shape[0], layout.size)
    return arr, layout


def sample_layout(
    sample_shape: Any, *, width: int, image_shape: tuple[int, int, int] | None = None
) -> Layout:
    """The layout of one sample's shape (D,), (H, W) or (C, H, W), checked as :func:`as_rows`
    checks a batch: what ``decode_numpy(Z, shape=...)`` folds its rows into."""
    try:
        sample = tuple(int(s) for s in sample_shape)
    except (TypeError, ValueError):
        raise DataError(
            f"shape must be a sample's shape, (D,), (H, W) or (C, H, W), got {sample_shape!r}"
        ) from None
    try:
        return _layout((1, *sample), width, image_shape, "shape")
    except DataError:
        expected = _expected(width, image_shape)
        raise DataError(f"shape={sample} does not fit the model: {expected}") from None


def _layout(shape: tuple[int, ...], width, image_shape, what: str) -> Layout:
    expected = _expected(width, image_shape)
    if len(shape) not in (2, 3, 4):
        raise DataError(
            f"{what} has shape {shape} but {expected}; pass rows (N, D), images (N, H, W) "
            "or (N, C, H, W)"
        )
    sample = shape[1:]
    images = len(sample) > 1
    chw = (1, *sample) if len(sample) == 2 else sample
    if image_shape is not None and images and tuple(chw) != tuple(image_shape):
        hint = ""
        if len(sample) == 3 and (sample[2], sample[0], sample[1]) == tuple(image_shape):
            hint = "; move the channel axis first: X.transpose(0, 3, 1, 2)"
        raise DataError(
            f"{what} has shape {shape} (images {_dims(chw)}) but {expected}"
            + (hint or "; use images of the model's size")
        )
    if width is not None and math.prod(sample) != width:
        raise DataError(
            f"{what} has shape {shape} ({math.prod(sample)} values per sample) but {expected}; "
            "use data of the shape the model was trained on"
        )
    return Layout(sample if images else ())


def _expected(width, image_shape) -> str:
    if width is None and image_shape is None:
        return "the model takes 2-D rows or images"
    if image_shape is None:
        return f"the model expects (n, {width})"
    c, h, w = image_shape
    single = f", (n, {h}, {w})" if c == 1 else ""
    return f"the model expects (n, {c * h * w}){single} or (n, {c}, {h}, {w})"


def _dims(shape) -> str:
    return "x".join(str(s) for s in shape)
