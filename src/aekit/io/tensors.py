"""safetensors files with a checksum of their tensors: written atomically, refused when damaged.

Weights, checkpoints and densities are plain dicts of tensors (never pickle); every file is
serialised in memory and renamed into place (:mod:`aekit.io.files`), and its metadata carries
the sha256 of its tensors, which :func:`read_tensors` verifies.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from ..errors import ModelFileError
from .files import atomic_write

CHECKSUM_KEY = "aekit.sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta=None) -> None:
    """Write a safetensors file atomically, with a checksum of its tensors in the metadata.

    It is serialised in memory and written by Python's file I/O, so that a full disk or a
    permission error is an OSError with its errno; :func:`read_tensors` verifies the checksum,
    so a file damaged on disk is refused rather than loaded as other weights.
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**(meta or {}), CHECKSUM_KEY: tensors_digest(tensors)}
    data = save_bytes(tensors, metadata=meta)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def check_safetensors(path: Path) -> None:
    """Refuse anything that is not a safetensors file before any parser sees it."""
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first bytes
    # may well be 0x80 or "PK" (a header of 384 bytes starts with 0x80), so test this first.
    header_len = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    fits = 0 < header_len <= path.stat().st_size - 8 and head[8:9] == b"{"
    if fits and path.suffix not in (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin"):
        return
    if head[:1] == b"\x80" or path.suffix in (".pkl", ".pickle"):
        kind = "a pickle"
    elif head[:2] == b"PK" or path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        kind = "a PyTorch .pt/zip (pickle) file"
    else:
        kind = "not a safetensors file"
    raise ModelFileError(
        f"{path} is {kind}; aekit loads only safetensors weights with a JSON config, "
        "because unpickling a file can run arbitrary code"
    )


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file and its metadata, refusing pickles."""
    path = Path(path)
    check_safetensors(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{path} is corrupt or unreadable: {e}") from None
    expected = meta.pop(CHECKSUM_KEY, None)  # files written before 0.2 have none
    if expected is not None and tensors_digest(tensors) != expected:
        raise ModelFileError(
            f"{path} is corrupt: its tensors do not match the checksum written with them"
        )
    return tensors, meta


# state-dict keys of files written by aekit 0.1 that the composed model renamed
_RENAMED = (("logvar.", "latent.logvar."),)


def upgrade_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of an older file mapped to today's layout (a Gaussian latent's head moved)."""
    out = {}
    for key, value in tensors.items():
        for old, new in _RENAMED:
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out
