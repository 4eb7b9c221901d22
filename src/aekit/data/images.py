"""Image files as data: a folder (recursively), one file, or a text file listing paths.

Every file is hostile until checked. :func:`scan` reads headers only (Pillow opens lazily), so
the size, mode, frame count and pixel count of every image are known, and refused, before any
pixel is decoded or any large array allocated. :func:`read_images` then decodes them into one
float32 matrix (N, C*H*W), channels first, in the files' own units (0-255 for 8-bit, 0-65535
for 16-bit). :class:`ImageShard` decodes rows on demand for ``--stream``.

What each Pillow mode becomes (``color="auto"``):

- grey: ``1`` (0 or 255), ``L``, ``LA`` (alpha dropped), 16-bit ``I;16*`` (kept 16-bit), ``I``
  (32-bit integers, kept when they fit 16 bits), ``F`` (32-bit floats, as they are);
- RGB: ``RGB``, ``RGBA`` and ``RGBX`` (alpha dropped), ``P`` (the palette looked up), ``CMYK``,
  ``YCbCr``, ``LAB``, ``HSV`` (converted to RGB). 16-bit colour files are read as 8 bits per
  channel (what Pillow decodes), with a warning.

``color="gray"`` or ``"rgb"`` converts every image to that mode (grey = ITU-R 601 luma), which
is how a folder mixing modes is read. EXIF orientation is applied (photos come upright).
Animated files and multi-page TIFFs are refused, as are images over ``max_pixels``
(``AEKIT_MAX_PIXELS``, default 2**26 pixels) and images with no pixels.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
LIST_SUFFIX = ".txt"
COLORS = ("auto", "gray", "rgb")
MAX_PIXELS = 2**26
_GREY = {"1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_RGB = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
_STREAM_SHARDS = (".npy", ".parquet")


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: where it is, its name for outputs, size and kind."""

    path: Path
    name: str  # relative, POSIX separators: the name outputs keep
    width: int
    height: int
    kind: str  # "gray" or "rgb"
    depth: str  # "uint8", "uint16" or "float32"


@dataclass(eq=False)
class ImageSet:
    """Decoded images: rows (N, C*H*W) float32 channels first, and what they are."""

    X: np.ndarray
    shape: tuple[int, int, int]
    names: tuple[str, ...]
    dtype: str
    max_value: float | None
    sources: dict[str, np.ndarray] | None = None  # read_patches: each file's whole image


def is_image_source(path: str | os.PathLike) -> bool:
    """An image file, a ``.txt`` list of paths, or a folder that holds no .npy/.parquet
    shards at its top (a folder of shards is streamed data)."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return not any(f.suffix.lower() in _STREAM_SHARDS for f in _entries(p) if f.is_file())
    return name.endswith(IMAGE_SUFFIXES) or name.endswith(LIST_SUFFIX)


def parse_resize(text: str | None) -> tuple[int, int] | None:
    """``"64x48"`` (height x width) -> (64, 48); ``"64"`` -> (64, 64); None stays None."""
    if text is None:
        return None
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        size = tuple(int(v) for v in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) <= 0 or max(size) > 65535:
        raise DataError(f"resize takes HxW in pixels, e.g. 64x64, got {text!r}")
    return size  # type: ignore[return-value]


def max_pixels(limit: int | None = None) -> int:
    """The pixel limit per image: ``limit``, else ``AEKIT_MAX_PIXELS``, else 2**26."""
    if limit is not None:
        return int(limit)
    text = os.environ.get("AEKIT_MAX_PIXELS", "")
    if not text.strip():
        return MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(f"AEKIT_MAX_PIXELS must be a positive whole number, got {text!r}")
    return value


def max_memory() -> int:
    """The bytes one allocation of aekit's (a model's weights, decoded images) may take:
    ``AEKIT_MAX_MEMORY`` (a whole number of bytes, or with K, M, G or T: powers of 1024),
    else half this machine's physical memory."""
    from ..errors import ConfigError

    text = os.environ.get("AEKIT_MAX_MEMORY", "").strip()
    if not text:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
        except (ValueError, OSError, AttributeError):
            return 2**40
    unit = 1024 ** ("KMGT".index(text[-1].upper()) + 1) if text[-1].upper() in "KMGT" else 1
    try:
        value = int(text[:-1] if unit > 1 else text) * unit
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(
            f"AEKIT_MAX_MEMORY must be a positive number of bytes (e.g. 8G), got {text!r}"
        )
    return value


def said_bytes(n: int) -> str:
    """``n`` bytes as a person reads them: 1.5 GiB, 640.0 KiB, 12 bytes."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# ---------------------------------------------------------------- finding the files


def list_files(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """(path, output name) of every image of ``source``, in the order rows will have.

    A folder is walked recursively in sorted order (hidden names skipped, other suffixes
    ignored; links followed, a link back into the walk refused); a ``.txt`` file lists one
    path per line (relative to the list's folder; blank lines and ``#`` comments skipped).
    Output names are relative to the folder, or to the listed files' common folder, so they
    never climb out of an output folder.
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"no such data file or folder: {path}")
    if path.is_dir():
        files = _walk(path)
        if not files:
            raise DataError(
                f"{path} is a folder with no images ({', '.join(IMAGE_SUFFIXES)}) and no .npy "
                "or .parquet shards; pass a folder of images or shards, or a data file"
            )
        return [(f, f.relative_to(path).as_posix()) for f in files]
    if path.name.lower().endswith(LIST_SUFFIX):
        return _named(_read_list(path))
    if not path.name.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"{path.name} is not an image ({', '.join(IMAGE_SUFFIXES)})")
    return [(path, path.name)]


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DataError(f"cannot read the folder {folder}: {e.strerror or e}") from None


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    seen: set[str] = set()

    def visit(folder: Path) -> None:
        real = os.path.realpath(folder)
        if real in seen:
            raise DataError(
                f"{folder} leads back to a folder already read (a symbolic link loop or a "
                "second link to it); remove the link or pass the folders' images in a .txt list"
            )
        seen.add(real)
        for entry in _entries(folder):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                visit(entry)
            elif entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                files.append(entry)

    visit(root)
    return files


def _read_list(path: Path) -> list[Path]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the path list {path}: {e}") from None
    base, files = path.parent, []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = Path(entry) if Path(entry).is_absolute() else base / entry
        if not file.is_file():
            raise DataError(
                f"{path.name} line {number} names {entry!r}, which is not a file (a .txt file "
                "is read as a list of image paths, relative to its folder; save a table of "
                "numbers as .csv)"
            )
        if not file.name.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(
                f"{path.name} line {number} names {entry!r}, not an image "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        files.append(file)
    if not files:
        raise DataError(f"the path list {path} names no images; write one image path per line")
    return files


def _named(files: list[Path]) -> list[tuple[Path, str]]:
    """Names relative to the files' common folder (no '..', never absolute), unique."""
    real = [Path(os.path.realpath(f)) for f in files]
    common = Path(os.path.commonpath([r.parent for r in real]))
    named = [(f, r.relative_to(common).as_posix()) for f, r in zip(files, real, strict=True)]
    twice = [n for n, k in Counter(n for _, n in named).items() if k > 1]
    if twice:
        raise DataError(f"the path list names {twice[0]!r} more than once; list each image once")
    return named


# ---------------------------------------------------------------- headers and pixels


def _open(path: Path, limit: int):
    """The Pillow image (header read, pixels not decoded), its frames and pixels checked."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # aekit's own limit below, with its own message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(path)
    except UnidentifiedImageError:
        raise DataError(f"{path} is not an image Pillow can read; remove or replace it") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"cannot read the image {path} ({e}); remove or replace it") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise DataError(f"the image {path} has no pixels ({w}x{h}); remove it")
    if w * h > limit:
        im.close()
        raise DataError(
            f"the image {path} announces {w}x{h} = {w * h} pixels, over the limit of {limit} "
            "(a decompression bomb, or a very large photo); set AEKIT_MAX_PIXELS to allow it"
        )
    if getattr(im, "n_frames", 1) > 1:
        frames = im.n_frames
        im.close()
        raise DataError(
            f"the image {path} holds {frames} frames (animated or multi-page); aekit reads "
            "still images: save the frame you want as its own file"
        )
    return im


def _kind_depth(im, path: Path) -> tuple[str, str]:
    mode = im.mode
    if mode in _GREY:
        depth = {"F": "float32", "1": "uint8", "L": "uint8", "LA": "uint8"}.get(mode, "uint16")
        return "gray", depth
    if mode in _RGB:
        tile = getattr(im, "tile", None) or []
        raw = str(tile[0][3]) if tile and len(tile[0]) > 3 else ""
        if ";16" in raw:
            warnings.warn(
                f"{path.name} is 16-bit colour; it is read as 8 bits per channel", stacklevel=3
            )
        return "rgb", "uint8"
    raise DataError(f"the image {path} has the mode {mode!r}, which aekit does not read")


def _orientation_swaps(im) -> bool:
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation: a quarter turn
    except Exception:  # noqa: BLE001 - an unreadable EXIF block: no rotation
        return False


def scan(source: str | os.PathLike, *, limit: int | None = None) -> list[ImageInfo]:
    """Every image's header, checked (see the module's docstring); nothing decoded."""
    limit = max_pixels(limit)
    infos = []
    for path, name in list_files(source):
        im = _open(path, limit)
        try:
            kind, depth = _kind_depth(im, path)
            w, h = im.size
            if _orientation_swaps(im):
                w, h = h, w
        finally:
            im.close()
        infos.append(ImageInfo(path, name, w, h, kind, depth))
    return infos


def plan(infos: list[ImageInfo], color: str, resize: tuple[int, int] | None, source):
    """(C, H, W), dtype and pixel maximum for the set; mixed modes, depths or sizes refused."""
    if color not in COLORS:
        raise DataError(f"unknown color {color!r}; use one of {', '.join(COLORS)}")
    kinds = Counter(i.kind for i in infos)
    if color == "auto" and len(kinds) > 1:
        raise DataError(
            f"{source} mixes grayscale ({kinds['gray']} files, e.g. "
            f"{_first(infos, kind='gray')}) and RGB images ({kinds['rgb']}, e.g. "
            f"{_first(infos, kind='rgb')}); pass --color gray or --color rgb to convert all"
        )
    kind = next(iter(kinds)) if color == "auto" else color
    deep = [i for i in infos if i.kind == "gray" and i.depth != "uint8"]
    if kind == "rgb" and deep:
        raise DataError(
            f"{source} holds {deep[0].depth} grey images (e.g. {deep[0].name}), which colour "
            "would cut to 8 bits: drop --color rgb, or convert them first"
        )
    depths = Counter(i.depth for i in infos) if kind == "gray" else Counter(["uint8"])
    if len(depths) > 1:
        found = ", ".join(f"{d} ({n} files)" for d, n in sorted(depths.items()))
        raise DataError(
            f"{source} mixes bit depths: {found}; their values are in different units, "
            "so convert them to one depth first"
        )
    depth = next(iter(depths))
    if resize is None:
        sizes = Counter((i.height, i.width) for i in infos)
        if len(sizes) > 1:
            found = ", ".join(
                f"{h}x{w} ({n} file{'s' if n > 1 else ''})" for (h, w), n in sizes.most_common(4)
            )
            more = f" and {len(sizes) - 4} more" if len(sizes) > 4 else ""
            raise DataError(
                f"{source} holds images of {len(sizes)} sizes (HxW): {found}{more}; this model "
                "needs one size: pass --resize HxW (e.g. --resize "
                f"{sizes.most_common(1)[0][0][0]}x{sizes.most_common(1)[0][0][1]})"
            )
        h, w = next(iter(sizes))
    else:
        h, w = resize
    maximum = {"uint8": 255.0, "uint16": 65535.0}.get(depth)
    return (1 if kind == "gray" else 3, h, w), depth, maximum


def _first(infos: list[ImageInfo], *, kind: str) -> str:
    return next(i.name for i in infos if i.kind == kind)


def decode(info: ImageInfo, shape: tuple[int, int, int], depth: str, limit: int) -> np.ndarray:
    """One image as float32 (C, H, W) in its own units, converted and resized per ``shape``."""
    from PIL import Image, ImageOps

    c, h, w = shape
    opened = _open(info.path, limit)
    try:
        opened.load()
        im = _convert(ImageOps.exif_transpose(opened), c, depth, info.path)
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.LANCZOS)
        arr = np.asarray(im, dtype=np.float32)
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(
            f"cannot decode the image {info.path} ({e}); it is truncated or corrupt: "
            "remove or replace it"
        ) from None
    finally:
        opened.close()
    if depth == "uint16":
        arr = np.clip(arr, 0, 65535)  # a resized "I" image can ring past the range
    elif depth == "uint8":
        arr = np.clip(arr, 0, 255)
    elif not np.isfinite(arr).all():
        raise DataError(f"the image {info.path} holds NaN or Inf pixel values; fix or remove it")
    return arr[None] if c == 1 else arr.transpose(2, 0, 1)


def _convert(im, channels: int, depth: str, path: Path):
    """Pillow image in the set's mode: 'L' or 'RGB' for 8-bit, 'I' or 'F' otherwise."""
    if channels == 3:  # (plan refuses 16-bit and float grey here)
        return im.convert("RGB")
    if depth == "uint8":  # (every grey file is 8-bit then: plan refuses mixed depths)
        return im.convert("L")
    if depth == "uint16":
        if im.mode == "I":
            lo, hi = im.getextrema()
            if lo < 0 or hi > 65535:
                raise DataError(
                    f"the image {path} holds 32-bit values {lo}..{hi}, outside 16 bits; "
                    "save it as 8- or 16-bit"
                )
        return im.convert("I")
    return im.convert("F")


def read_images(
    source: str | os.PathLike,
    *,
    color: str | None = "auto",
    resize: tuple[int, int] | None = None,
    limit: int | None = None,
    max_pixels_: int | None = None,
) -> ImageSet:
    """Decode the images of ``source`` (a folder, a file or a .txt list) into one matrix.

    Every header is checked first (:func:`scan`, :func:`plan`), then the matrix is allocated
    once and filled image by image; ``limit`` keeps the first images only.
    """
    infos = scan(source, limit=max_pixels_)
    if limit is not None:
        infos = infos[:limit]
    shape, depth, maximum = plan(infos, color or "auto", resize, source)
    pixels = max_pixels(max_pixels_)
    X = _allocate(len(infos), int(np.prod(shape)), source)
    for i, info in enumerate(infos):
        X[i] = decode(info, shape, depth, pixels).reshape(-1)
    return ImageSet(X, shape, tuple(i.name for i in infos), depth, maximum)


def read_image_list(
    source: str | os.PathLike, *, color: str | None = "auto", limit: int | None = None
) -> tuple[list[np.ndarray], tuple[str, ...], str, float | None]:
    """Images of any sizes, each decoded at its own size, for fully convolutional models:
    (arrays (C, H_i, W_i) float32 in their own units, names, dtype, format maximum). Modes
    and depths are checked as by :func:`read_images`; sizes may differ."""
    infos = scan(source)
    if limit is not None:
        infos = infos[:limit]
    first = infos[0]
    (c, _, _), depth, maximum = plan(infos, color or "auto", (first.height, first.width), source)
    pixels = max_pixels()
    arrays = [decode(i, (c, i.height, i.width), depth, pixels) for i in infos]
    return arrays, tuple(i.name for i in infos), depth, maximum


def read_patches(
    source: str | os.PathLike, size: int, *, color: str | None = "auto", limit: int | None = None
) -> ImageSet:
    """Images of any sizes cut into ``size`` x ``size`` tiles (a grid from each top-left
    corner; the remainder at the right and bottom edges is left out): how a fully
    convolutional model trains on a folder of mixed sizes (DnCNN trains on patches too). The
    names are ``<file>#<row>,<column>`` of each tile."""
    arrays, names, depth, maximum = read_image_list(source, color=color, limit=limit)
    small = min(min(a.shape[1:]) for a in arrays)
    if size > small:
        raise DataError(
            f"patches of {size}x{size} do not fit the smallest image of {source} "
            f"({small} pixels on a side); use patches of at most {small}"
        )
    tiles, tile_names = [], []
    for a, name in zip(arrays, names, strict=True):
        for y in range(0, a.shape[1] - size + 1, size):
            for x in range(0, a.shape[2] - size + 1, size):
                tiles.append(a[:, y : y + size, x : x + size].reshape(-1))
                tile_names.append(f"{name}#{y},{x}")
    c = arrays[0].shape[0]
    return ImageSet(np.stack(tiles).astype(np.float32), (c, size, size), tuple(tile_names),
                    depth, maximum, dict(zip(names, arrays, strict=True)))  # fmt: skip


def patch_size(source: str | os.PathLike, limit: int | None = None) -> int | None:
    """None when the images of ``source`` share one size; else the side of the square tiles a
    fully convolutional model trains on: the smallest image side, at most 64."""
    infos = scan(source)[:limit]
    if len({(i.height, i.width) for i in infos}) <= 1:
        return None
    return min(64, min(min(i.height, i.width) for i in infos))


def _allocate(n: int, width: int, source) -> np.ndarray:
    from ..errors import MemoryLimitError

    need, limit = n * width * 4, max_memory()
    if need > limit:
        raise MemoryLimitError(
            f"{source} decodes to {said_bytes(need)} as float32, over the "
            f"{said_bytes(limit)} allowed (AEKIT_MAX_MEMORY; by default half this machine's "
            "memory); pass --stream to read it block by block, or --resize to smaller images"
        )
    return np.empty((n, width), np.float32)


class ImageShard:
    """Images as one shard of streamed data: headers checked at once, rows decoded on read."""

    def __init__(self, path: Path, color: str | None = None, resize=None) -> None:
        self.path = path
        self.infos = scan(path)
        self.shape, depth, self.max_value = plan(self.infos, color or "auto", resize, path)
        self._depth, self._limit = depth, max_pixels()
        self.n, self.width = len(self.infos), int(np.prod(self.shape))
        self.dtype = np.dtype(depth)  # uint8 files count as integer-valued, as a uint8 .npy
        self.columns = None
        self.groups = [self.n]
        self.names = tuple(i.name for i in self.infos)

    def read_into(self, lo: int, hi: int, out: np.ndarray) -> None:
        """Rows [lo, hi) decoded into ``out`` (float32, hi - lo rows)."""
        for k, info in enumerate(self.infos[lo:hi]):
            out[k] = decode(info, self.shape, self._depth, self._limit).reshape(-1)
