"""The IDX format of MNIST and Fashion-MNIST: big-endian magic, one uint32 per dimension,
then unsigned bytes; files gzipped or not."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from aekit.errors import DataError

IDX_IMAGES, IDX_LABELS = 2051, 2049  # the magic numbers of uint8 images (3-D) and labels (1-D)


def has_idx(folder: Path, stem: str) -> bool:
    """Whether ``folder`` holds the IDX file ``stem``, gzipped or not."""
    return (folder / f"{stem}.gz").is_file() or (folder / stem).is_file()


def idx_file(folder: Path, stem: str) -> Path:
    """The path of the IDX file ``stem`` in ``folder`` (``.gz`` first), or DataError."""
    for path in (folder / f"{stem}.gz", folder / stem):  # uncompressed copies work too
        if path.is_file():
            return path
    raise DataError(f"missing IDX file {folder / (stem + '.gz')}; download it into {folder}")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: big-endian magic, then one uint32 per dimension."""
    try:
        raw = path.read_bytes()
        buf = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path} ({exc}); download it again") from None
    if len(buf) < 4 or int.from_bytes(buf[:4], "big") != magic:
        found = int.from_bytes(buf[:4], "big") if len(buf) >= 4 else None
        kind = "images" if magic == IDX_IMAGES else "labels"
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
