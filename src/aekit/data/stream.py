"""Data larger than memory: .npy and parquet files, or folders of shards, read block by block.

:class:`StreamedArray` never maps the whole file: each block is read with plain file I/O (a
parquet file one record batch of a row group at a time, :mod:`aekit.data.shards`) into a
float32 array, so the process holds about one block (``block_bytes``, 32 MB by default) at a
time whatever the file's size (memory-mapped pages would count towards the resident set).
Blocks never straddle a parquet row group, and the blocks of one row group form a *group*.
Training walks the groups in a seeded order, the blocks of a group in turn (a row group is
decoded once per epoch) and the rows of each block in a seeded order (:class:`BlockShuffle`):
still a pure function of (seed, epoch), so a resumed run repeats it; a .npy block is a group
of its own.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .shards import open_shards

BLOCK_BYTES = 32 * 2**20
STREAM_BYTES = 2**30  # data above this (as float32) stream by default
SUFFIXES = (".npy", ".parquet")


def should_stream(data, stream: bool | None) -> bool:
    """Whether ``data`` are read block by block: asked for, or a folder of shards, or a .npy /
    .parquet file whose values take over 1 GiB as float32 (image files only when asked)."""
    from .images import is_image_source

    if stream is False or not isinstance(data, str | os.PathLike):
        return False
    path = Path(data)
    if stream:
        return True
    if path.is_dir():
        return not is_image_source(path)
    return path.suffix in SUFFIXES and path.is_file() and _float32_bytes(path) > STREAM_BYTES


def _float32_bytes(path: Path) -> int:
    if path.suffix == ".npy":
        return path.stat().st_size
    try:
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
    except Exception:  # noqa: BLE001 - unreadable here: the in-memory reader says why
        return 0
    return meta.num_rows * meta.num_columns * 4


class StreamedArray:
    """Rows of one .npy / .parquet file or of a folder's shards (sorted by name), in blocks."""

    def __init__(
        self, path: str | os.PathLike, block_bytes: int | None = None, reading: dict | None = None
    ) -> None:
        path = Path(path)
        block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        self.path, self.shards = path, open_shards(path, reading)
        first = self.shards[0]  # image files: their shape, format maximum and names
        self.image_shape = getattr(first, "shape", None)
        self.max_value = getattr(first, "max_value", None)
        self.names = getattr(first, "names", None)
        widths = {s.width for s in self.shards}
        if len(widths) != 1:
            raise DataError(
                f"the shards in {path} have different widths {sorted(widths)}; every shard "
                "needs the same number of features"
            )
        self.width = widths.pop()
        self.starts = np.cumsum([0] + [s.n for s in self.shards])
        self.n = int(self.starts[-1])
        if self.n == 0:
            raise DataError(f"{path} holds no rows")
        self.block_rows = max(1, block_bytes // (4 * self.width))
        self.bounds, self.groups = self._blocks()

    def _blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each block starts (and the end), and each block's group."""
        if self.shards[0].columns is None:  # .npy: blocks run across shards
            bounds = np.append(np.arange(0, self.n, self.block_rows), self.n)
            return bounds, np.arange(len(bounds) - 1)
        starts, groups = [], []
        lo = 0
        for size in (g for s in self.shards for g in s.groups):
            if size:  # (an empty row group has no block)
                cuts = np.arange(lo, lo + size, self.block_rows)
                starts.append(cuts)
                groups.append(np.full(len(cuts), len(groups)))
            lo += size
        return np.append(np.concatenate(starts), self.n), np.concatenate(groups)

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.width)

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def block_range(self, b: int) -> tuple[int, int]:
        return int(self.bounds[b]), int(self.bounds[b + 1])

    def rows(self, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [lo, hi) as float32 (finite values checked), into ``out`` when given (a
        C-contiguous float32 buffer of at least hi - lo rows; its first rows are returned)."""
        out = np.empty((hi - lo, self.width), np.float32) if out is None else out[: hi - lo]
        pos = 0
        for i, shard in enumerate(self.shards):
            a, b = max(lo, int(self.starts[i])), min(hi, int(self.starts[i + 1]))
            if a >= b and shard.columns is not None:
                shard.release()  # one decoded parquet row group at a time
            elif a < b:
                first = int(self.starts[i])
                shard.read_into(a - first, b - first, out[pos : pos + b - a])
                pos += b - a
        self._check_finite(out, lo)
        return out

    def _check_finite(self, rows: np.ndarray, lo: int) -> None:
        flat = rows.reshape(-1)
        # one BLAS pass, no temporary: a NaN or Inf anywhere makes the sum of squares
        # non-finite; a finite sum that overflows (values over ~1e19) only costs the exact check
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if len(bad):
            raise DataError(
                f"{self.path} has a non-finite or missing value (NaN/Inf/null) in row "
                f"{lo + int(bad[0])} (0-based)"
            )

    def block(self, b: int, out: np.ndarray | None = None) -> np.ndarray:
        return self.rows(*self.block_range(b), out=out)

    def integer_valued(self) -> bool:
        return all(s.dtype == np.uint8 for s in self.shards)

    def fingerprint(self) -> str:
        """sha256 of the shape and of the first, middle and last blocks (not all gigabytes)."""
        h = hashlib.sha256(str(self.shape).encode())
        for b in sorted({0, self.n_blocks // 2, self.n_blocks - 1}):
            h.update(self.block(b).data)
        return h.hexdigest()


class BlockView:
    """Some blocks of a :class:`StreamedArray` (the training or the validation part), each
    block passed through ``transform`` (the run's scaler) as it is read."""

    def __init__(self, data: StreamedArray, blocks: np.ndarray, transform=None) -> None:
        self.data, self.blocks = data, np.asarray(blocks, dtype=np.int64)
        self.transform = transform
        self.sizes = np.array([np.subtract(*data.block_range(b)[::-1]) for b in self.blocks])
        self.n = int(self.sizes.sum())

    def __len__(self) -> int:
        return self.n

    def read(self, b: int) -> np.ndarray:
        rows = self.data.block(b)
        return rows if self.transform is None else self.transform(rows)

    def iter_blocks(self):
        for b in self.blocks:
            yield self.read(int(b))

    def first_rows(self, k: int) -> np.ndarray:
        return self.read(int(self.blocks[0]))[:k]


def split_blocks(data: StreamedArray, val_fraction: float, seed: int, transform=None):
    """(train, val or None) as whole blocks; the validation blocks are a seeded choice."""
    nb = data.n_blocks
    if val_fraction == 0 or nb < 2:
        return BlockView(data, np.arange(nb), transform), None
    n_val = min(nb - 1, max(1, round(nb * val_fraction)))
    order = np.random.default_rng(seed).permutation(nb)
    train = BlockView(data, np.sort(order[n_val:]), transform)
    return train, BlockView(data, np.sort(order[:n_val]), transform)


def fit_scaler(view_or_data, kind: str, part: tuple[int, int] = (0, 1), combine=None,
               moments=None):  # fmt: skip
    """A :class:`~aekit.data.Scaler` fitted in one pass over the blocks (minmax, standard,
    image for uint8 data, none).

    ``part`` = (rank, world) reads only this process's blocks (every world-th); ``combine``
    then merges the processes' (min, max, sum, sum of squares, count), float64 arrays;
    ``moments`` are those already computed (:func:`column_moments`), read again for nothing.
    """
    from .scaling import Scaler

    data = view_or_data.data if isinstance(view_or_data, BlockView) else view_or_data
    if kind == "image":
        top = data.max_value or (255.0 if data.integer_valued() else None)
        if top is None:
            raise DataError(
                "the image scaler streams uint8 data or image files only; use --scale minmax"
            )
        return Scaler("image", np.zeros(1), np.array([1 / top]))
    if kind == "none":
        return Scaler("none")
    if moments is None:
        moments = column_moments(view_or_data, part, combine)
    lo, hi, total, total_sq, count = moments
    if kind == "minmax":
        spread = hi - lo
        return Scaler("minmax", lo, np.where(spread > 0, 1 / np.where(spread > 0, spread, 1), 1.0))
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0))
    return Scaler("standard", mean, np.where(std > 0, 1 / np.where(std > 0, std, 1), 1.0))


def column_moments(view_or_data, part: tuple[int, int] = (0, 1), combine=None):
    """(column minima, maxima, sums, sums of squares, row count) of a view's blocks (or all
    of an array's), float64, in one pass; ``part`` and ``combine`` as in :func:`fit_scaler`."""
    data = view_or_data.data if isinstance(view_or_data, BlockView) else view_or_data
    blocks = view_or_data.blocks if isinstance(view_or_data, BlockView) else range(data.n_blocks)
    moments = _moments(data, list(blocks)[part[0] :: part[1]])
    return moments if combine is None else combine(*moments)


def _moments(data: StreamedArray, blocks) -> tuple[np.ndarray, ...]:
    """Column minima, maxima, sums and sums of squares (float64) and the row count."""
    lo, hi = np.full(data.width, np.inf), np.full(data.width, -np.inf)
    total, total_sq = np.zeros(data.width), np.zeros(data.width)
    count = 0
    for b in blocks:
        rows = data.block(int(b))
        lo, hi = np.minimum(lo, rows.min(0)), np.maximum(hi, rows.max(0))
        for i in range(0, len(rows), 4096):  # float64 sums, a few MB at a time
            part = rows[i : i + 4096].astype(np.float64)
            total, total_sq = total + part.sum(0), total_sq + (part * part).sum(0)
        count += len(rows)
    return lo, hi, total, total_sq, np.array([float(count)])


class BlockShuffle:
    """One epoch of a :class:`BlockView`: groups of blocks in a seeded order, the blocks of a
    group in turn, rows shuffled within each block, served as consecutive slices
    ``view[start:stop]`` of the epoch (what the training loop asks for).

    Slices may begin anywhere at or after the last one: blocks wholly before are passed over
    without being read (a rank of a distributed run reads its own part of the epoch).
    """

    def __init__(self, view: BlockView, seed: int, epoch: int, to_tensor) -> None:
        self.view, self.to_tensor = view, to_tensor
        self.rng = np.random.default_rng([int(seed), int(epoch), 7])
        self.order = iter(epoch_blocks(view, self.rng))
        self.buffer, self.lo, self.next_lo = None, 0, 0  # rows [lo, lo + len(buffer))

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, s: slice):
        start, stop = s.start, min(s.stop, len(self.view))
        pieces = []
        while start < stop:
            if self.buffer is None or start >= self.lo + len(self.buffer):
                self._next_block(start)
            take = min(stop, self.lo + len(self.buffer)) - start
            pieces.append(self.buffer[start - self.lo : start - self.lo + take])
            start += take
        return pieces[0] if len(pieces) == 1 else self._cat(pieces)

    def _next_block(self, target: int) -> None:
        """Move to the block holding row ``target`` of the epoch, reading only that one."""
        while True:
            i = next(self.order)
            size = int(self.view.sizes[i])
            perm = self.rng.permutation(size)  # drawn for passed-over blocks too: same stream
            lo, self.next_lo = self.next_lo, self.next_lo + size
            if self.next_lo > target:
                break
        rows = self.view.read(int(self.view.blocks[i]))
        self.buffer, self.lo = self.to_tensor(rows[perm]), lo

    @staticmethod
    def _cat(pieces):
        import torch

        return torch.cat(pieces)


def epoch_blocks(view: BlockView, rng: np.random.Generator) -> np.ndarray:
    """Positions in ``view.blocks`` in an epoch's order: the groups permuted by ``rng``, each
    group's blocks in turn (a .npy block is its own group: a plain permutation)."""
    groups = view.data.groups[view.blocks]
    firsts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[firsts[1:], len(groups)]
    perm = rng.permutation(len(firsts))
    if len(firsts) == len(groups):
        return perm
    return np.concatenate([np.arange(firsts[g], ends[g]) for g in perm])
