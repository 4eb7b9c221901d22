"""Data larger than memory: a .npy file or a folder of .npy shards, read block by block.

:class:`StreamedArray` never maps the whole file: each block is read with plain file I/O into a
fresh array, so the process holds about one block (``block_bytes``, 32 MB by default) at a time
whatever the file's size (memory-mapped pages would count towards the resident set).
Training walks the blocks in a seeded order and the rows of each block in a seeded order
(:class:`BlockShuffle`): still a pure function of (seed, epoch), so a resumed run repeats it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

BLOCK_BYTES = 32 * 2**20
STREAM_BYTES = 2**30  # files above this stream by default


def should_stream(data, stream: bool | None) -> bool:
    """Whether ``data`` are read block by block: asked for, or a folder / a .npy over 1 GiB."""
    if stream is False or not isinstance(data, str | os.PathLike):
        return False
    path = Path(data)
    big = path.suffix == ".npy" and path.is_file() and path.stat().st_size > STREAM_BYTES
    return bool(stream) or path.is_dir() or big


class _Shard:
    """One .npy file: where its rows start on disk, their dtype and count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (OSError, ValueError) as e:
            raise DataError(f"data file '{path.name}' is not a readable .npy file ({e})") from None
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise DataError(
                f"data file '{path.name}' holds {dtype} values; save numbers (float32 is best)"
            )
        if len(shape) != 2 or fortran:
            raise DataError(
                f"data file '{path.name}' has shape {shape}{' in Fortran order' if fortran else ''}"
                "; streaming reads C-ordered 2-D arrays (n_samples, n_features)"
            )
        self.n, self.width = int(shape[0]), int(shape[1])
        self.dtype = dtype
        if self.offset + self.n * self.width * dtype.itemsize > path.stat().st_size:
            raise DataError(f"data file '{path.name}' is truncated; write it again")

    def read(self, lo: int, hi: int) -> np.ndarray:
        row = self.width * self.dtype.itemsize
        with open(self.path, "rb") as f:
            f.seek(self.offset + lo * row)
            out = np.fromfile(f, dtype=self.dtype, count=(hi - lo) * self.width)
        return out.reshape(hi - lo, self.width)


class StreamedArray:
    """Rows of one .npy file or of a folder's .npy shards (sorted by name), read in blocks."""

    def __init__(self, path: str | os.PathLike, block_bytes: int | None = None) -> None:
        path = Path(path)
        block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path} holds no .npy shards")
        self.path, self.shards = path, [_Shard(f) for f in files]
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

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.width)

    @property
    def n_blocks(self) -> int:
        return -(-self.n // self.block_rows)

    def block_range(self, b: int) -> tuple[int, int]:
        return b * self.block_rows, min(self.n, (b + 1) * self.block_rows)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) as float32 (finite values checked)."""
        parts = []
        for i, shard in enumerate(self.shards):
            a, b = max(lo, self.starts[i]), min(hi, self.starts[i + 1])
            if a < b:
                parts.append(shard.read(int(a - self.starts[i]), int(b - self.starts[i])))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = np.ascontiguousarray(out, dtype=np.float32)
        # one float64 reduction, no temporary: a NaN or Inf anywhere makes the sum non-finite
        # (and finite float32 values cannot overflow a float64 sum)
        if not np.isfinite(out.sum(dtype=np.float64)):
            bad = lo + int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
            raise DataError(f"{self.path} has a non-finite value (NaN/Inf) in row {bad} (0-based)")
        return out

    def block(self, b: int) -> np.ndarray:
        return self.rows(*self.block_range(b))

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


def fit_scaler(view_or_data, kind: str):
    """A :class:`~aekit.data.Scaler` fitted in one pass over the blocks (minmax, standard,
    image for uint8 data, none)."""
    from .scaling import Scaler

    data = view_or_data.data if isinstance(view_or_data, BlockView) else view_or_data
    blocks = view_or_data.blocks if isinstance(view_or_data, BlockView) else range(data.n_blocks)
    if kind == "image":
        if not data.integer_valued():
            raise DataError("the image scaler streams uint8 images only; use --scale minmax")
        return Scaler("image", np.zeros(1), np.array([1 / 255.0]))
    if kind == "none":
        return Scaler("none")
    lo = hi = None
    total = total_sq = np.zeros(data.width)
    count = 0
    for b in blocks:
        rows = data.block(int(b))
        lo = rows.min(0) if lo is None else np.minimum(lo, rows.min(0))
        hi = rows.max(0) if hi is None else np.maximum(hi, rows.max(0))
        for i in range(0, len(rows), 4096):  # float64 sums, a few MB at a time
            part = rows[i : i + 4096].astype(np.float64)
            total, total_sq = total + part.sum(0), total_sq + (part * part).sum(0)
        count += len(rows)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    if kind == "minmax":
        spread = hi - lo
        return Scaler("minmax", lo, np.where(spread > 0, 1 / np.where(spread > 0, spread, 1), 1.0))
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0))
    return Scaler("standard", mean, np.where(std > 0, 1 / np.where(std > 0, std, 1), 1.0))


class BlockShuffle:
    """One epoch of a :class:`BlockView`: blocks in a seeded order, rows shuffled within each,
    served as consecutive slices ``view[start:stop]`` (what the training loop asks for)."""

    def __init__(self, view: BlockView, seed: int, epoch: int, to_tensor) -> None:
        self.view, self.to_tensor = view, to_tensor
        self.rng = np.random.default_rng([int(seed), int(epoch), 7])
        self.order = iter(self.rng.permutation(len(view.blocks)))
        self.buffer, self.lo = None, 0  # rows [lo, lo + len(buffer)) of the epoch

    def __getitem__(self, s: slice):
        start, stop = s.start, min(s.stop, len(self.view))
        pieces = []
        while start < stop:
            if self.buffer is None or start >= self.lo + len(self.buffer):
                self._next_block()
            take = min(stop, self.lo + len(self.buffer)) - start
            pieces.append(self.buffer[start - self.lo : start - self.lo + take])
            start += take
        return pieces[0] if len(pieces) == 1 else self._cat(pieces)

    def _next_block(self) -> None:
        lo = 0 if self.buffer is None else self.lo + len(self.buffer)
        i = next(self.order)
        rows = self.view.read(int(self.view.blocks[i]))
        rows = rows[self.rng.permutation(len(rows))]
        self.buffer, self.lo = self.to_tensor(rows), lo

    @staticmethod
    def _cat(pieces):
        import torch

        return torch.cat(pieces)
