"""The compressed-image file format (.aek): a fixed header, then the entropy coder's words.

Layout (little-endian), 52 bytes of header then the payload::

    offset  size  field
    0       4     magic b"AEKC"
    4       2     format version: 1 (the code only), 2 (code and residual layer), 3
                  (either, with the images' file names), 4 (a spatial codec's payload,
                  :mod:`aekit.apps.codec`; flag bit 4) or 5 (a context model's payload,
                  :mod:`aekit.apps.lossless`; flag bit 5: lossless or to a step q)
    6       2     flags: bit 0 set = a residual layer follows the code (version 2 or 3);
                  bits 1-2: how the images came in and go back out, 0 = rows (N, C*H*W),
                  1 = (N, H, W) (C = 1), 2 = (N, C, H, W); bit 3 set = the file names come
                  first in the payload (version 3)
    8       12    image shape C, H, W (3 x uint32; 1, 1, D for rows that are not images;
                  C, 0, 0 for a spatial codec's images of different sizes)
    20      4     number of images N
    24      4     code width L (a spatial codec: its code's channels M; a context
                  model: its number of planes P)
    28      16    model hash: the first 16 bytes of sha256 over the model's name, config,
                  weights and scaler (:func:`model_hash`)
    44      4     payload length in bytes
    48      4     CRC-32 of bytes 0-47 and of the payload
    52      ...   payload: the range coder's 32-bit words

With a residual layer (version 2; :mod:`aekit.apps.residual`) the payload is: the residual
parameters (29 bytes: step, lo, hi as float64, half-width A as uint32, integer flag as uint8),
the number of the code's 32-bit words (uint32), the code's words, then the residual's words.
A reader that knows only version 1 refuses such a file instead of decoding the code alone.
With file names (version 3, flag bit 1) the payload begins with their length in bytes
(uint32) and the names, UTF-8, one per image, joined by newlines and zlib-compressed; the
rest is the payload of version 1 or 2. The names are bytes of the file like any other (the
reports' bits per pixel count them); they are checked again when written out (never outside
the output folder, :mod:`aekit.io.images`).

Every way a file can be wrong is refused by :func:`unpack` with one
:class:`~aekit.errors.CompressedFileError` line before anything is decoded: too short,
another format (magic), a newer version, a length that disagrees with the file (truncated or
trailing bytes), unknown flags, a checksum mismatch (corrupt), more images than half the
machine's memory holds, or another model's hash.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass

from ..errors import CompressedFileError
from .checkpoint import tensors_digest

MAGIC = b"AEKC"
VERSION = 5  # the newest this aekit reads and writes (version 1 files: no residual layer)
RESIDUAL = 1  # flag bit
NAMES = 8  # flag bit 3 (version 3)
SPATIAL = 16  # flag bit 4 (version 4): a spatial codec's payload (:mod:`aekit.apps.codec`)
LEARNED = 32  # flag bit 5 (version 5): a context model's payload (:mod:`aekit.apps.lossless`)
LAYOUT_SHIFT, LAYOUT_MASK = 1, 0b110  # flag bits 1-2: the sample's dimensions minus one
_HEADER = struct.Struct("<4sHH3III16sII")
HEADER_SIZE = _HEADER.size  # 52


@dataclass(frozen=True)
class Header:
    """What a compressed file says about itself."""

    shape: tuple[int, int, int]  # (C, H, W) of one image
    count: int  # number of images
    width: int  # code width L
    model_hash: bytes  # 16 bytes
    residual: bool = False  # a residual layer follows the code (format version 2)
    sample_ndim: int = 1  # 1: rows (N, D); 2: images (N, H, W); 3: images (N, C, H, W)
    names: tuple[str, ...] | None = None  # the images' file names (format version 3)
    spatial: bool = False  # a spatial codec's payload (format version 4)
    learned: bool = False  # a context model's payload (format version 5)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape as it was given to compress: (D,), (H, W) or (C, H, W)."""
        c, h, w = self.shape
        return ((c * h * w,), (h, w), (c, h, w))[self.sample_ndim - 1]


def model_hash(model) -> bytes:
    """16 bytes identifying ``model``: its registry record, weights and data scaler.

    Two models that would decode a payload differently have different hashes (up to a
    sha256 collision), so a file is never decoded by a model that did not write it.
    """
    h = hashlib.sha256()
    # the record as versions before the parts' own settings spelt it: their files still decode
    record = {"name": model.name, "config": model.config.legacy_dict()}
    h.update(json.dumps(record, sort_keys=True).encode())
    h.update(tensors_digest(model.state_dict()).encode())
    scaler = getattr(model, "scaler", None)
    h.update(json.dumps(scaler.to_dict() if scaler is not None else None, sort_keys=True).encode())
    return h.digest()[:16]


def pack(header: Header, payload: bytes) -> bytes:
    """The file's bytes: the header (with length and checksum) followed by ``payload``."""
    version, flags = (2, RESIDUAL) if header.residual else (1, 0)
    flags |= (header.sample_ndim - 1) << LAYOUT_SHIFT
    if header.names is not None:
        if len(header.names) != header.count:
            raise ValueError(f"{len(header.names)} names for {header.count} images")
        block = zlib.compress("\n".join(header.names).encode("utf-8"), 9)
        version, flags = 3, flags | NAMES
        payload = struct.pack("<I", len(block)) + block + payload
    if header.spatial:
        if header.residual:
            raise ValueError("a spatial codec's file has no residual layer of version 2")
        version, flags = 4, flags | SPATIAL
    if header.learned:
        if header.residual or header.spatial:
            raise ValueError("a context model's file has no code and no residual layer")
        version, flags = 5, flags | LEARNED
    head = _HEADER.pack(
        MAGIC, version, flags, *header.shape, header.count, header.width, header.model_hash,
        len(payload), 0,
    )[:-4]  # fmt: skip
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def unpack(data: bytes, expected_hash: bytes | None = None) -> tuple[Header, bytes]:
    """(header, payload) of a file's bytes, after every check; see the module docstring.

    Raises
    ------
    CompressedFileError
        The bytes are not a whole, intact .aek file (of the model with ``expected_hash``).
    """
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CompressedFileError(
            f"not an aekit compressed file (it starts with {data[:4]!r}, not {MAGIC!r})"
        )
    if len(data) < HEADER_SIZE:
        raise CompressedFileError(
            f"the compressed file is truncated: {len(data)} bytes, shorter than its "
            f"{HEADER_SIZE}-byte header"
        )
    magic, version, flags, c, h, w, count, width, digest, length, crc = _HEADER.unpack(
        data[:HEADER_SIZE]
    )
    if not 1 <= version <= VERSION:
        raise CompressedFileError(
            f"the compressed file has format version {version}; this aekit reads versions 1 "
            f"to {VERSION}"
        )
    ndim = ((flags & LAYOUT_MASK) >> LAYOUT_SHIFT) + 1
    base = flags & ~LAYOUT_MASK
    valid = {
        1: base == 0,
        2: base == RESIDUAL,
        3: base in (NAMES, NAMES | RESIDUAL),
        4: base in (SPATIAL, SPATIAL | NAMES),
        5: base in (LEARNED, LEARNED | NAMES),
    }
    if not valid[version] or ndim > 3 or (ndim == 2 and c != 1):
        raise CompressedFileError(
            f"the compressed file's flags {flags:#x} are not valid for format version {version}"
        )
    payload = data[HEADER_SIZE:]
    if len(payload) != length:
        what = "truncated" if len(payload) < length else "followed by stray bytes"
        raise CompressedFileError(
            f"the compressed file is {what}: its header announces {length} bytes of data, "
            f"{len(payload)} follow"
        )
    if zlib.crc32(payload, zlib.crc32(data[: HEADER_SIZE - 4])) != crc:
        raise CompressedFileError("the compressed file is corrupt: its checksum does not match")
    _check_size(count, c * h * w)
    names = None
    if flags & NAMES:
        names, payload = _names(payload, count)
    header = Header(
        (c, h, w), count, width, digest, bool(flags & RESIDUAL), ndim, names,
        bool(flags & SPATIAL), bool(flags & LEARNED),
    )  # fmt: skip
    if expected_hash is not None and digest != expected_hash:
        raise CompressedFileError(
            f"the compressed file was written by another model (hash {digest.hex()}, this "
            f"model's is {expected_hash.hex()}): decompress it with the run that compressed it"
        )
    return header, payload


def _check_size(count: int, size: int) -> None:
    """A header announcing more decoded data than allowed (half this machine's memory, or
    ``AEKIT_MAX_MEMORY``: :func:`aekit.data.images.max_memory`) is refused."""
    from ..data.images import max_memory

    need = count * size * 4  # the images as float32, the least a decoder allocates
    if need > max_memory():
        raise CompressedFileError(
            f"the compressed file announces {count} images of {size} values ({need / 2**30:.1f} "
            "GiB decoded), more than half this machine's memory (or AEKIT_MAX_MEMORY): it is "
            "corrupt or not for this machine"
        )


def _names(payload: bytes, count: int) -> tuple[tuple[str, ...], bytes]:
    """(the file names, the rest of the payload); a broken names block is refused."""
    if len(payload) < 4:
        raise CompressedFileError("the compressed file's names section is truncated")
    (size,) = struct.unpack("<I", payload[:4])
    if size > len(payload) - 4:
        raise CompressedFileError(
            f"the compressed file's names section announces {size} bytes, more than follow"
        )
    try:
        d = zlib.decompressobj()
        text = d.decompress(payload[4 : 4 + size], 64 * count * 1024 + 1024)
        if d.unconsumed_tail or not d.eof:
            raise ValueError("names block too long or incomplete")
        names = tuple(text.decode("utf-8").split("\n"))
    except (zlib.error, ValueError) as e:
        raise CompressedFileError(f"the compressed file's names section is corrupt ({e})") from None
    if len(names) != count:
        raise CompressedFileError(
            f"the compressed file names {len(names)} files for its {count} images"
        )
    return names, payload[4 + size :]
