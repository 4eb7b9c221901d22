"""The residual layer of a compressed file: what the code's reconstruction missed, to a step q.

The quantised code alone caps the quality a file can reach (the code's size sets it). The
residual layer adds, after the code, the data themselves to within a uniform step ``q`` (in
the data's units), coded with the decoder's own prediction ``x_hat`` (the model's
reconstruction of the quantised code, which both sides compute bit for bit) as side
knowledge. With b = rint(x_hat) if every value of X and q are integers (pixels), else
b = x_hat, lo and hi the smallest and largest value of X, and g(v) = rint((v - lo) / q), the
encoder codes integer symbols k in one of two ways::

    grid:    k = g(x) in 0 .. G, G = g(hi)     x_tilde = clip(lo + q k, lo, hi)
    offset:  k = rint((x - b) / q) in [-A, A]   x_tilde = clip(b + q k, lo, hi)

Either way every value of ``x_tilde`` lies within q/2 of x (the clip only moves it towards
x), and integer data at q = 1 come back exactly (lossless). The grid puts x on the lattice
lo + q Z (exact for data that sit on it, such as the black and white of scanned digits); the
offset keeps the model's fine detail where it errs by less than q/2. The encoder keeps the
one with the smaller squared error for the file (on MNIST: the grid).

Entropy model: a value's context is its prediction. For the grid: g(b), one context per
lattice point (at most 256, merged in equal runs beyond), or, when the lattice has fewer than
64 points (coarse steps), the bin of x_hat among 256 equal bins over [lo, hi], since there
where x_hat sits inside its cell says which way x rounds (on MNIST at q = 32, 11% fewer
residual bits). For the offset: the bin of b among 16 equal bins over [lo, hi]. Each
context has an adaptive table: the images are coded in chunks of growing size (4, 8, ...,
1,024 images), each chunk under the counts of every earlier chunk added to a Laplace-shaped
prior centred on the prediction, so encoder and decoder hold the same tables without fitting
or storing any; the file carries only q, lo, hi, the
alphabet's size and two flags (:class:`ResidualParams`, 29 bytes). Coding x given g(b) costs
at most what coding x alone does (up to the tables' learning cost), and less the better the
model predicts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..errors import CompressedFileError, DataError

__all__ = [
    "ResidualParams",
    "decode",
    "encode",
    "ideal_bits",
    "predict",
    "reconstruct",
    "symbols",
]

MAX_SIZE = 65535  # symbols in an alphabet
GRID_CONTEXTS = 256
COARSE_LATTICE = 64  # fewer lattice points than this: contexts from x_hat, not the lattice
OFFSET_CONTEXTS = 16
_PARAMS = struct.Struct("<dddIB")
_PRIOR_WEIGHT = 16.0  # pseudo-observations of the prior in each table


@dataclass(frozen=True)
class ResidualParams:
    """What the decoder needs besides the prediction: the step, the clip range, the alphabet."""

    step: float
    lo: float
    hi: float
    size: int  # symbols 0 .. size - 1
    integer: bool  # predictions rounded to integers
    grid: bool  # x_tilde on the lattice lo + q Z (else offsets from the prediction)

    SIZE = _PARAMS.size

    @property
    def top(self) -> int:
        """G = g(hi), the lattice's last index."""
        return int(np.rint((self.hi - self.lo) / self.step))

    @property
    def half_width(self) -> int:
        """A: offsets in [-A, A] are the symbols 0 .. 2 A."""
        return (self.size - 1) // 2

    def pack(self) -> bytes:
        flags = int(self.integer) | int(self.grid) << 1
        return _PARAMS.pack(self.step, self.lo, self.hi, self.size, flags)

    @classmethod
    def unpack(cls, data: bytes) -> ResidualParams:
        if len(data) < cls.SIZE:
            raise CompressedFileError("the compressed file's residual section is truncated")
        step, lo, hi, size, flags = _PARAMS.unpack(data[: cls.SIZE])
        finite = bool(np.isfinite([step, lo, hi]).all()) and step > 0 and lo <= hi
        if not (finite and flags < 4 and 0 < size <= MAX_SIZE):
            raise CompressedFileError("the compressed file's residual section is corrupt")
        p = cls(step, lo, hi, size, bool(flags & 1), bool(flags & 2))
        if p.grid:
            fits = (hi - lo) / step <= MAX_SIZE and p.top + 1 == size
        else:
            fits = size % 2 == 1
        if not fits:
            raise CompressedFileError("the compressed file's residual section is corrupt")
        return p


def check_step(step: float) -> float:
    """``step`` as a float, or a DataError line saying what a step must be."""
    try:
        q = float(step)
    except (TypeError, ValueError):
        q = float("nan")
    if not (np.isfinite(q) and q > 0):
        raise DataError(f"the residual step must be a positive number (got {step!r})")
    return q


def predict(x_hat: np.ndarray, p: ResidualParams) -> np.ndarray:
    """The prediction b of every value (float64): the reconstruction, rounded for integers."""
    b = np.asarray(x_hat, dtype=np.float64)
    return np.rint(b) if p.integer else b


def _g(v: np.ndarray, p: ResidualParams) -> np.ndarray:
    """The lattice index rint((v - lo) / q), within 0 .. G."""
    return np.clip(np.rint((v - p.lo) / p.step), 0, p.top)


def reconstruct(x_hat: np.ndarray, k: np.ndarray, p: ResidualParams) -> np.ndarray:
    """x_tilde (float64) of the symbols k, on the grid or offset from the prediction."""
    if p.grid:
        return np.clip(p.lo + p.step * k, p.lo, p.hi)
    return np.clip(predict(x_hat, p) + p.step * (k - p.half_width), p.lo, p.hi)


def output_dtype(p: ResidualParams) -> type:
    """float32, unless float32's spacing near the data's largest magnitude would break the
    q/2 bound (values of 1e5 at a step of 1e-3, say): then float64."""
    largest = max(abs(p.lo), abs(p.hi), 1.0)
    return np.float32 if float(np.spacing(np.float32(largest))) <= p.step / 8 else np.float64


def symbols(
    X: np.ndarray, x_hat: np.ndarray, step: float, grid: bool | None = None
) -> tuple[ResidualParams, np.ndarray]:
    """(parameters, symbols k (N, D) in 0 .. size - 1) coding X to within step / 2.

    ``grid`` None: the grid or the offset coding, whichever reconstructs X with the smaller
    squared error (the grid on a tie).

    Raises
    ------
    DataError
        The step is not a positive number, or so small that an alphabet would pass 65,535.
    """
    q = check_step(step)
    X64 = np.asarray(X, dtype=np.float64)
    integer = bool(q == np.rint(q) and np.array_equal(X64, np.rint(X64)))
    p = ResidualParams(q, float(X64.min()), float(X64.max()), 1, integer, True)
    if (p.hi - p.lo) / q > MAX_SIZE:
        raise DataError(
            f"the residual step {q:g} is too small for these data (values from {p.lo:g} to "
            f"{p.hi:g}): use a step of at least {(p.hi - p.lo) / MAX_SIZE:.3g}"
        )
    best = None
    for g in (True, False) if grid is None else (bool(grid),):
        if g:
            k, size = _g(X64, p).astype(np.int64), p.top + 1
        else:
            off = np.rint((X64 - predict(x_hat, p)) / q).astype(np.int64)
            a = int(np.abs(off).max())
            k, size = off + a, 2 * a + 1
        if size > MAX_SIZE:  # offsets from a wild prediction: only the grid is bounded
            continue
        pg = replace(p, size=size, grid=g)
        err = float(np.square(reconstruct(x_hat, k, pg) - X64).sum())
        if best is None or err < best[0]:
            best = (err, pg, k)
    if best is None:
        raise DataError(
            f"the residual step {q:g} is too small for the model's errors on these data: use "
            "a larger step, or the grid coding"
        )
    return best[1], best[2]


def _contexts(x_hat: np.ndarray, p: ResidualParams) -> tuple[np.ndarray, np.ndarray]:
    """(each value's context, each context's centre in symbols): the prediction's symbol."""
    b = predict(x_hat, p)
    if p.grid and p.hi > p.lo and p.top + 1 < COARSE_LATTICE:
        n = GRID_CONTEXTS
        v = np.nan_to_num(np.asarray(x_hat, dtype=np.float64), nan=p.lo)
        ctx = np.clip(np.floor((v - p.lo) / (p.hi - p.lo) * n), 0, n - 1).astype(np.int64)
        return ctx, (np.arange(n) + 0.5) * (p.hi - p.lo) / n / p.step  # bin middles, symbols
    if p.grid:
        n = min(p.top + 1, GRID_CONTEXTS)
        ctx = (_g(b, p).astype(np.int64) * n) // (p.top + 1)
        centres = (np.arange(n) + 0.5) * (p.top + 1) / n - 0.5
        return ctx, centres
    if p.hi == p.lo:
        return np.zeros(b.shape, dtype=np.int64), np.full(1, float(p.half_width))
    ctx = np.clip(np.floor((b - p.lo) / (p.hi - p.lo) * OFFSET_CONTEXTS), 0, OFFSET_CONTEXTS - 1)
    return ctx.astype(np.int64), np.full(OFFSET_CONTEXTS, float(p.half_width))


def _chunks(n: int) -> Iterator[slice]:
    """4, 8, 16, ..., 1,024, 1,024, ... rows: early chunks adapt the tables quickly."""
    start, size = 0, 4
    while start < n:
        yield slice(start, min(n, start + size))
        start, size = start + size, min(2 * size, 1024)


def _prior(p: ResidualParams, centres: np.ndarray) -> np.ndarray:
    """Laplace-shaped pseudo-counts (contexts, size) around each context's centre, scale 1/32
    of the data's range."""
    k = np.arange(p.size)
    scale = max((p.hi - p.lo) / 32.0 / p.step, 0.5)
    w = np.exp(-np.abs(k[None, :] - centres[:, None]) / scale)
    return _PRIOR_WEIGHT * w / w.sum(1, keepdims=True) + 1e-3  # every symbol codable


class _Tables:
    """The per-context adaptive tables both sides update identically."""

    def __init__(self, p: ResidualParams, centres: np.ndarray):
        self.counts = _prior(p, centres)

    def model(self, c: int):
        import constriction

        probs = self.counts[c] / self.counts[c].sum()
        return probs, constriction.stream.model.Categorical(probs, perfect=False)

    def update(self, c: int, sym: np.ndarray) -> None:
        self.counts[c] += np.bincount(sym, minlength=self.counts.shape[1])


def _runs(ctx_rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The chunk's values ordered by context (stable), and (context, start, stop) runs."""
    flat = ctx_rows.ravel()
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat)
    stops = np.cumsum(counts)
    runs = [(c, int(stops[c] - counts[c]), int(stops[c])) for c in np.flatnonzero(counts)]
    return order, runs


def _code(k: np.ndarray, x_hat: np.ndarray, p: ResidualParams, encoder=None) -> float:
    """Walk the symbols chunk by chunk and context by context under the adaptive tables,
    encoding them when an ``encoder`` is given; their ideal length in bits."""
    if p.size == 1:  # one symbol (constant data on the grid): nothing to say
        return 0.0
    ctx, centres = _contexts(x_hat, p)
    tables, bits = _Tables(p, centres), 0.0
    for rows in _chunks(len(k)):
        order, runs = _runs(ctx[rows])
        sym = k[rows].ravel()[order]
        for c, start, stop in runs:
            here = sym[start:stop]
            probs, model = tables.model(c)
            if encoder is not None:
                encoder.encode(here.astype(np.int32), model)
            bits -= float(np.log2(probs[here]).sum())
            tables.update(c, here)
    return bits


def encode(k: np.ndarray, x_hat: np.ndarray, p: ResidualParams) -> tuple[bytes, float]:
    """(the range coder's words for symbols k, their ideal length in bits under the tables)."""
    import constriction

    if p.size == 1:
        return b"", 0.0
    encoder = constriction.stream.queue.RangeEncoder()
    bits = _code(k, x_hat, p, encoder)
    return encoder.get_compressed().astype("<u4").tobytes(), bits


def ideal_bits(k: np.ndarray, x_hat: np.ndarray, p: ResidualParams) -> float:
    """The symbols' ideal length in bits under the adaptive tables, without coding them."""
    return _code(k, x_hat, p)


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

    if len(words) % 4 or (p.size == 1 and words):
        raise CompressedFileError("the compressed file's residual section is corrupt")
    if p.size == 1:
        return np.zeros(np.shape(x_hat), dtype=np.int64)
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(words, "<u4").astype(np.uint32))
    ctx, centres = _contexts(x_hat, p)
    tables = _Tables(p, centres)
    k = np.empty(ctx.shape, dtype=np.int64)
    for rows in _chunks(len(k)):
        order, runs = _runs(ctx[rows])
        sym = np.empty(order.size, dtype=np.int64)
        for c, start, stop in runs:
            sym[start:stop] = decode_or_refuse(decoder, tables.model(c)[1], stop - start)
            tables.update(c, sym[start:stop])
        out = np.empty_like(sym)
        out[order] = sym
        k[rows] = out.reshape(k[rows].shape)
    return k
