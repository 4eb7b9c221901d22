"""The residual layer of a compressed file: what the code's reconstruction missed, to a step q.

The quantised code alone caps the quality a file can reach (the code's size sets it). The
residual layer adds, after the code, what the decoder's own prediction ``x_hat`` (the model's
reconstruction of the quantised code, which both sides compute bit for bit) missed, quantised
with a uniform step ``q`` in the data's units::

    b = rint(x_hat)   if every value of X and q are integers (pixels), else x_hat
    s = rint((x - b) / q)                      integers in [-A, A], A = max |s|
    x_tilde = clip(b + q s, lo, hi)            lo, hi: the smallest and largest value of X

so every value of ``x_tilde`` lies within q/2 of x (the clip only moves it towards x), and
integer data at q = 1 come back exactly (lossless).

Entropy model: each value's context is the bin of its prediction b among 16 equal bins over
[lo, hi] (dark pixels of the prediction have other residuals than bright ones). Each context
has an adaptive table: the images are coded in chunks of growing size (4, 8, ..., 1,024
images), each chunk under counts of every earlier chunk added to a Laplace-shaped prior, so
encoder and decoder hold the same tables without fitting or storing any; the file carries
only q, lo, hi, A and whether the data are integers (:class:`ResidualParams`, 29 bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import CompressedFileError, DataError

__all__ = ["ResidualParams", "decode", "encode", "predict", "reconstruct", "symbols"]

CONTEXTS = 16
MAX_HALF_WIDTH = 32767  # alphabet of 2 A + 1 <= 65,535 symbols
_PARAMS = struct.Struct("<dddIB")
_PRIOR_WEIGHT = 16.0  # pseudo-observations of the prior in each table


@dataclass(frozen=True)
class ResidualParams:
    """What the decoder needs besides the prediction: the step, the clip range, the alphabet."""

    step: float
    lo: float
    hi: float
    half_width: int  # A: symbols in [-A, A]
    integer: bool  # predictions rounded to integers

    SIZE = _PARAMS.size

    def pack(self) -> bytes:
        return _PARAMS.pack(self.step, self.lo, self.hi, self.half_width, int(self.integer))

    @classmethod
    def unpack(cls, data: bytes) -> ResidualParams:
        if len(data) < cls.SIZE:
            raise CompressedFileError("the compressed file's residual section is truncated")
        step, lo, hi, a, integer = _PARAMS.unpack(data[: cls.SIZE])
        if not (step > 0 and np.isfinite([step, lo, hi]).all() and lo <= hi) or a > MAX_HALF_WIDTH:
            raise CompressedFileError("the compressed file's residual section is corrupt")
        return cls(step, lo, hi, a, bool(integer))


def check_step(step: float) -> float:
    """``step`` as a float, or a DataError line saying what a step must be."""
    try:
        q = float(step)
    except (TypeError, ValueError):
        q = float("nan")
    if not (np.isfinite(q) and q > 0):
        raise DataError(f"the residual step must be a positive number (got {step!r})")
    return q


def params_for(X: np.ndarray, step: float) -> tuple[ResidualParams, np.ndarray]:
    """The parameters for coding X at ``step`` (A still 0), and X in float64."""
    q = check_step(step)
    X64 = np.asarray(X, dtype=np.float64)
    integer = bool(q == np.rint(q) and np.array_equal(X64, np.rint(X64)))
    return ResidualParams(q, float(X64.min()), float(X64.max()), 0, integer), X64


def predict(x_hat: np.ndarray, p: ResidualParams) -> np.ndarray:
    """The prediction b of every value (float64): the reconstruction, rounded for integers."""
    b = np.asarray(x_hat, dtype=np.float64)
    return np.rint(b) if p.integer else b


def symbols(X: np.ndarray, x_hat: np.ndarray, step: float) -> tuple[ResidualParams, np.ndarray]:
    """(parameters with A, integer symbols s (N, D)) of X against the prediction from x_hat."""
    p, X64 = params_for(X, step)
    s = np.rint((X64 - predict(x_hat, p)) / p.step)
    a = int(np.abs(s).max()) if s.size else 0
    if a > MAX_HALF_WIDTH:
        raise DataError(
            f"the residual step {p.step:g} is too small for these data (residuals up to "
            f"{a} steps; at most {MAX_HALF_WIDTH}): use a step of at least "
            f"{(p.hi - p.lo) / MAX_HALF_WIDTH:.3g}"
        )
    p = ResidualParams(p.step, p.lo, p.hi, a, p.integer)
    return p, s.astype(np.int64)


def reconstruct(x_hat: np.ndarray, s: np.ndarray, p: ResidualParams) -> np.ndarray:
    """x_tilde = clip(b + q s, lo, hi), float64."""
    return np.clip(predict(x_hat, p) + p.step * s, p.lo, p.hi)


def _contexts(x_hat: np.ndarray, p: ResidualParams) -> np.ndarray:
    b = predict(x_hat, p)
    if p.hi == p.lo:
        return np.zeros(b.shape, dtype=np.int64)
    c = np.floor((b - p.lo) / (p.hi - p.lo) * CONTEXTS)
    return np.clip(c, 0, CONTEXTS - 1).astype(np.int64)


def _chunks(n: int) -> Iterator[slice]:
    """4, 8, 16, ..., 1,024, 1,024, ... rows: early chunks adapt the tables quickly."""
    start, size = 0, 4
    while start < n:
        yield slice(start, min(n, start + size))
        start, size = start + size, min(2 * size, 1024)


def _prior(p: ResidualParams) -> np.ndarray:
    """Laplace-shaped pseudo-counts over [-A, A], scale 1/32 of the data range in data units."""
    k = np.arange(-p.half_width, p.half_width + 1)
    scale = max((p.hi - p.lo) / 32.0 / p.step, 0.5)
    w = np.exp(-np.abs(k) / scale)
    return _PRIOR_WEIGHT * w / w.sum() + 1e-3  # every symbol codable


class _Tables:
    """The per-context adaptive tables both sides update identically."""

    def __init__(self, p: ResidualParams):
        self.a = p.half_width
        self.counts = np.tile(_prior(p), (CONTEXTS, 1))

    def model(self, c: int):
        import constriction

        probs = self.counts[c] / self.counts[c].sum()
        return probs, constriction.stream.model.Categorical(probs, perfect=False)

    def update(self, c: int, sym: np.ndarray) -> None:
        self.counts[c] += np.bincount(sym, minlength=len(self.counts[c]))


def encode(s: np.ndarray, x_hat: np.ndarray, p: ResidualParams) -> tuple[bytes, float]:
    """(the range coder's words for symbols s, their ideal length in bits under the tables)."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    tables, ctx, bits = _Tables(p), _contexts(x_hat, p), 0.0
    for rows in _chunks(len(s)):
        sym, c_rows = s[rows] + p.half_width, ctx[rows]
        for c in range(CONTEXTS):
            here = sym[c_rows == c]
            if here.size:
                probs, model = tables.model(c)
                encoder.encode(here.astype(np.int32), model)
                bits -= float(np.log2(probs[here]).sum())
                tables.update(c, here)
    return encoder.get_compressed().astype("<u4").tobytes(), bits


def decode_or_refuse(decoder, model, n: int) -> np.ndarray:
    """n symbols from a constriction decoder; words no encoder could have written (a file
    whose checksum was made to match) give a CompressedFileError, not the coder's assertion."""
    try:
        return np.asarray(decoder.decode(model, n), dtype=np.int64)
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CompressedFileError(f"the compressed file cannot be decoded: {e}") from None


def decode(words: bytes, x_hat: np.ndarray, p: ResidualParams) -> np.ndarray:
    """The symbols (N, D) :func:`encode` wrote, given the same prediction and parameters."""
    import constriction

    if len(words) % 4:
        raise CompressedFileError("the compressed file's residual section is corrupt")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(words, "<u4").astype(np.uint32))
    tables, ctx = _Tables(p), _contexts(x_hat, p)
    s = np.empty(ctx.shape, dtype=np.int64)
    for rows in _chunks(len(s)):
        c_rows, out = ctx[rows], s[rows]  # a view: writes land in s
        for c in range(CONTEXTS):
            where = c_rows == c
            n = int(where.sum())
            if n:
                here = decode_or_refuse(decoder, tables.model(c)[1], n)
                out[where] = here
                tables.update(c, here)
    return s - p.half_width
