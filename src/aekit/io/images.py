"""Rows of images written as image files into a folder that appears only when complete.

The folder is filled under a temporary sibling name and renamed into place at the end
(:func:`aekit.io.files.atomic_folder`): killed at any instant, the output name never holds a
part, and a rerun proceeds. An existing folder is replaced only when it holds only PNGs.

Names come from the input (:attr:`aekit.data.Dataset.files`): the same relative paths, with
the suffix ``.png`` (lossless; a JPEG's reconstruction is not saved as a JPEG). Rows without
names are ``00000.png``, ``00001.png``, ... A name that is absolute, climbs (``..``) or holds
a NUL byte is refused before anything is written, as are two inputs that would write one file.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import ConfigError, DataError
from .files import atomic_folder


def output_names(names, n: int) -> list[str]:
    """The relative .png path of each of ``n`` rows; checked (see the module docstring)."""
    if names is None:
        return [f"{i:05d}.png" for i in range(n)]
    out = []
    for name in names:
        p = PurePosixPath(str(name).replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or not p.parts or p.name in ("", "."):
            raise DataError(f"the output name {name!r} would write outside the output folder")
        if "\x00" in str(name):  # no file system takes it (and Pillow raises ValueError)
            raise DataError(f"the output name {name!r} holds a NUL byte; it cannot be a file name")
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
    """Write each row of ``X`` as a PNG under ``folder``; returns the relative names.

    An existing ``folder`` is replaced only when it holds nothing but images (an earlier
    output); see :func:`aekit.io.files.atomic_folder`.
    """
    return _write_pixels(folder, to_pixels(X, shape, max_value), names)


def write_images(folder, images, max_value, names=None) -> list[str]:
    """Write images of any sizes, each (C, H, W) in data units, as PNGs under ``folder``
    (a fully convolutional model's outputs keep each input's size); returns the names."""
    pixels = [to_pixels(img.reshape(1, -1), img.shape, max_value)[0] for img in images]
    return _write_pixels(folder, pixels, names)


def _write_pixels(folder, pixels, names) -> list[str]:
    from PIL import Image

    relative = output_names(names, len(pixels))

    def fill(tmp: Path) -> None:
        for name, img in zip(relative, pixels, strict=True):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path, format="PNG")

    atomic_folder(folder, fill, _only_images)
    return relative


def _only_images(folder: Path) -> bool:
    return all(p.is_dir() or p.suffix.lower() == ".png" for p in folder.rglob("*"))
