"""The files a streamed data set is made of: .npy arrays and parquet tables, read by row range.

A shard knows its row count, its width and where its natural blocks end (``groups``: the whole
file for .npy, the row groups for parquet); :meth:`read_into` fills rows [lo, hi) into a float32
array the caller owns, so that a reader can reuse its buffers. Nothing is memory-mapped: mapped
pages count towards the resident set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError


class NpyShard:
    """One C-ordered 2-D .npy file: where its rows start on disk, their dtype and count."""

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
        self.dtype, self.columns = dtype, None
        self.groups = [self.n]
        if self.offset + self.n * self.width * dtype.itemsize > path.stat().st_size:
            raise DataError(f"data file '{path.name}' is truncated; write it again")

    def read_into(self, lo: int, hi: int, out: np.ndarray) -> None:
        """Rows [lo, hi) into ``out`` (float32, C-contiguous, hi - lo rows)."""
        row = self.width * self.dtype.itemsize
        with open(self.path, "rb") as f:
            f.seek(self.offset + lo * row)
            if self.dtype == np.dtype("<f4"):  # straight into the caller's buffer, no copy
                got = f.readinto(memoryview(out).cast("B"))
                if got != (hi - lo) * row:
                    raise DataError(f"data file '{self.path.name}' is truncated; write it again")
                return
            raw = np.fromfile(f, dtype=self.dtype, count=(hi - lo) * self.width)
        if raw.size != (hi - lo) * self.width:
            raise DataError(f"data file '{self.path.name}' is truncated; write it again")
        out[...] = raw.reshape(hi - lo, self.width)


class ParquetShard:
    """One parquet file of numeric columns, read one row group at a time.

    The row group being read is held decoded as one float32 array (filled a few columns at a
    time, so pyarrow's own buffers stay small); blocks are copied out of it, and the next row
    group replaces it. Memory: about one decoded row group, never the whole file (a file
    written with huge row groups costs that much: choose ``row_group_size`` accordingly).
    """

    COLUMNS_AT_ONCE = 64

    def __init__(self, path: Path) -> None:
        pa, pq = _pyarrow(path)
        self.path = path
        try:
            meta = pq.read_metadata(path)
            schema = meta.schema.to_arrow_schema()
        except (OSError, ValueError, pa.ArrowException) as e:
            raise DataError(
                f"data file '{path.name}' is not a readable parquet file ({e})"
            ) from None
        for field in schema:
            if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
                raise DataError(
                    f"data file '{path.name}' column {field.name!r} is not numeric "
                    f"({field.type}); drop or encode it first"
                )
        self.columns = tuple(schema.names)
        self.n, self.width = int(meta.num_rows), len(self.columns)
        if self.width == 0:
            raise DataError(f"data file '{path.name}' has no columns")
        uint8 = all(pa.types.is_uint8(f.type) for f in schema)
        self.dtype = np.dtype(np.uint8 if uint8 else np.float32)
        self.groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.group_starts = np.cumsum([0, *self.groups])
        self.release()

    def release(self) -> None:
        """Let go of the decoded row group (another shard is being read)."""
        self._group, self._rows = None, None

    def read_into(self, lo: int, hi: int, out: np.ndarray) -> None:
        """Rows [lo, hi) into ``out`` (float32, hi - lo rows); nulls become NaN."""
        pos = 0
        while lo < hi:
            g = int(np.searchsorted(self.group_starts, lo, side="right")) - 1
            first = int(self.group_starts[g])
            take = min(hi, int(self.group_starts[g + 1])) - lo
            if self._group != g:
                self.release()
                self._rows, self._group = self._decode(g), g
            out[pos : pos + take] = self._rows[lo - first : lo - first + take]
            pos, lo = pos + take, lo + take

    def _decode(self, g: int) -> np.ndarray:
        pa, pq = _pyarrow(self.path)
        rows = np.empty((self.groups[g], self.width), np.float32)
        try:
            file = pq.ParquetFile(self.path)
            for j0 in range(0, self.width, self.COLUMNS_AT_ONCE):
                names = list(self.columns[j0 : j0 + self.COLUMNS_AT_ONCE])
                part = file.read_row_group(g, columns=names, use_threads=False)
                # columns into rows of a small array, then one transposed copy: writing each
                # column down the big array would touch a cache line per value
                columns = np.empty((len(names), len(rows)), np.float32)
                for j, column in enumerate(part.columns):
                    columns[j] = column.to_numpy()  # (nulls: NaN, refused by the reader)
                rows[:, j0 : j0 + len(names)] = columns.T
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"data file '{self.path.name}' cannot be read ({e})") from None
        return rows


def _pyarrow(path: Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading '{path.name}' needs pyarrow: pip install aekit[parquet]"
        ) from None
    return pa, pq


def open_shards(path: Path, reading: dict | None = None) -> list:
    """The shards of a .npy or .parquet file, or of a folder of either kind (sorted by name);
    image files (a folder of images, an image, a .txt list) are one shard decoded on read
    (``reading``: their color and resize)."""
    from .images import ImageShard, is_image_source

    if is_image_source(path):
        return [ImageShard(path, **(reading or {}))]
    if not path.is_dir():
        if path.suffix not in (".npy", ".parquet"):
            raise DataError(
                f"streaming reads .npy and .parquet files (or folders of them), not "
                f"'{path.name}'; drop --stream to load it whole"
            )
        return [ParquetShard(path) if path.suffix == ".parquet" else NpyShard(path)]
    npy, parquet = sorted(path.glob("*.npy")), sorted(path.glob("*.parquet"))
    if npy and parquet:
        raise DataError(f"{path} holds both .npy and .parquet files; stream one kind per folder")
    if not npy and not parquet:
        raise DataError(f"{path} holds no .npy or .parquet shards")
    shards = [NpyShard(f) for f in npy] or [ParquetShard(f) for f in parquet]
    names = {s.columns for s in shards}
    widths = {s.width for s in shards}
    if len(names) > 1 and len(widths) == 1:
        first = next(s for s in shards if s.columns != shards[0].columns)
        raise DataError(
            f"the parquet files in {path} have different columns ('{shards[0].path.name}' and "
            f"'{first.path.name}' differ); every shard needs the same columns in the same order"
        )
    return shards
