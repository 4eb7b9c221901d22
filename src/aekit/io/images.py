"""Rows of images written as image files into a folder that appears only when complete.

The folder is filled under a temporary sibling name (``.NAME.tmp-XXXX``) and renamed into
place at the end; a folder already at the name (an earlier output) is moved aside first and
removed after. Killed at any instant, the output name holds the old folder, the whole new one,
or (between the two renames) nothing; never a part. Stray temporary siblings are removed by
the next write of the same folder, so a rerun proceeds.

Names come from the input (:attr:`aekit.data.Dataset.files`): the same relative paths, with
the suffix ``.png`` (lossless; a JPEG's reconstruction is not saved as a JPEG). Rows without
names are ``00000.png``, ``00001.png``, ... A name that is absolute or climbs (``..``) is
refused before anything is written, as are two inputs that would write one file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import ConfigError, DataError, file_error


def output_names(names, n: int) -> list[str]:
    """The relative .png path of each of ``n`` rows; checked (see the module docstring)."""
    if names is None:
        return [f"{i:05d}.png" for i in range(n)]
    out = []
    for name in names:
        p = PurePosixPath(str(name).replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or not p.parts or p.name in ("", "."):
            raise DataError(f"the output name {name!r} would write outside the output folder")
        out.append(str(p.with_suffix(".png")))
    seen: dict[str, str] = {}
    for name, given in zip(out, names, strict=True):
        if name in seen:
            raise DataError(
                f"{seen[name]!r} and {given!r} would both be written as {name!r}; rename one"
            )
        seen[name] = given
    return out


def to_pixels(X: np.ndarray, shape, max_value: float | None) -> np.ndarray:
    """Rows in data units -> uint8 (or uint16 for 16-bit grey) arrays (N, H, W[, C])."""
    c, h, w = shape
    if c not in (1, 3) or h == 1:
        raise ConfigError(f"rows of shape {tuple(shape)} are not images: write a .npy file instead")
    if max_value is None:
        raise ConfigError(
            "these images hold values of no fixed range (floats): write a .npy file instead"
        )
    deep = max_value > 255 and c == 1
    top = 65535 if deep else 255
    pixels = np.clip(np.rint(np.asarray(X, np.float64) / max_value * top), 0, top)
    pixels = pixels.astype(np.uint16 if deep else np.uint8).reshape(len(X), c, h, w)
    return pixels[:, 0] if c == 1 else pixels.transpose(0, 2, 3, 1)


def write_image_folder(folder, X, shape, max_value, names=None) -> list[str]:
    """Write each row of ``X`` as a PNG under ``folder``; returns the relative names."""
    return _write_pixels(folder, to_pixels(X, shape, max_value), names)


def write_images(folder, images, max_value, names=None) -> list[str]:
    """Write images of any sizes, each (C, H, W) in data units, as PNGs under ``folder``
    (a fully convolutional model's outputs keep each input's size); returns the names."""
    pixels = [to_pixels(img.reshape(1, -1), img.shape, max_value)[0] for img in images]
    return _write_pixels(folder, pixels, names)


def _write_pixels(folder, pixels, names) -> list[str]:
    from PIL import Image

    folder = Path(folder)
    relative = output_names(names, len(pixels))
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".{folder.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.tmp-"))
    except OSError as e:
        raise file_error(e, folder, "make the folder") from None
    try:
        for name, img in zip(relative, pixels, strict=True):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path, format="PNG")
        _swap_in(tmp, folder)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise file_error(e, folder) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return relative


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``; an existing folder there is moved aside, then removed."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; name a folder for the images")
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-old-"))
        os.rmdir(old)
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
