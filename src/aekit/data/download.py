"""Fetch MNIST and Fashion-MNIST: the original IDX ``.gz`` files, checked by md5, into a cache.

Where the files go: ``<root>/<name>/`` with root the ``data_dir`` given, else ``$AEKIT_DATA``,
else ``$XDG_CACHE_HOME/aekit`` (``~/.cache/aekit``). Only the files that are missing are fetched.

Settings (environment variables):

- ``AEKIT_MIRROR``: the base URL(s) to fetch from, comma- or space-separated, tried in turn;
  each file is fetched from ``<mirror><file name>``, and ``{name}`` in a mirror becomes the
  data set's name (``mnist``, ``fashion-mnist``); a local folder works too.
  Default: :data:`MIRRORS`.
- ``AEKIT_OFFLINE=1``: never download; a missing file is reported as before.
- ``AEKIT_PROGRESS=1``: show the progress bar even when stderr is not a terminal.

A file is written to ``<file>.part`` and renamed only once its md5 matches; an interrupted
download is resumed (HTTP ``Range``) by the next attempt or the next process. One process
downloads into a folder at a time (``flock`` on ``<folder>/.download.lock``); another one waits,
then finds the files there.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from aekit.errors import AekitError, DataError, file_error

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
"""The default mirrors (torchvision's), tried in turn; ``AEKIT_MIRROR`` replaces them."""

MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
"""The published md5 of each original file; a download that differs is refused."""

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
TIMEOUT_S = 30.0
RETRY_DELAYS_S = (1.0, 2.0, 4.0)  # waits before the 2nd, 3rd, 4th try that made no progress
_CHUNK = 1 << 16
# unknown host, nothing listening, no such local file, a bad certificate: the next mirror
_PERMANENT = (socket.gaierror, ConnectionRefusedError, FileNotFoundError, ssl.CertificateError)
_LOCK = ".download.lock"


def cache_dir() -> Path:
    """The folder that holds ``mnist/`` and ``fashion-mnist/`` when no ``data_dir`` is given.

    Returns
    -------
    Path
        ``$AEKIT_DATA`` when set, else ``$XDG_CACHE_HOME/aekit``, else ``~/.cache/aekit``.
    """
    if os.environ.get("AEKIT_DATA"):
        return Path(os.environ["AEKIT_DATA"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "aekit"


def offline() -> bool:
    """True when ``AEKIT_OFFLINE`` is set to 1/true/yes/on: nothing is downloaded."""
    return os.environ.get("AEKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def mirrors(name: str, mirror: str | None = None) -> list[str]:
    """The base URLs to try for data set ``name``, in turn.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        The data set; ``{name}`` in a mirror becomes it.
    mirror : str, optional
        URL(s) or local folder(s), comma- or space-separated; default ``AEKIT_MIRROR``, else
        :data:`MIRRORS`.

    Returns
    -------
    list of str
        Base URLs ending in ``/``; a file's URL is the base followed by the file name.
    """
    given = mirror if mirror else os.environ.get("AEKIT_MIRROR", "")
    bases = given.replace(",", " ").split() or list(MIRRORS[name])
    out = []
    for base in bases:
        base = base.replace("{name}", name)
        if "://" not in base:  # a local folder
            base = Path(base).expanduser().resolve().as_uri()
        out.append(base if base.endswith("/") else base + "/")
    return out


def fetch_idx(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    split: str | None = None,
    mirror: str | None = None,
    progress: bool | None = None,
) -> Path:
    """Download the IDX files of MNIST or Fashion-MNIST that are missing from ``root/name``.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        The data set.
    root : str or path, optional
        The folder that holds ``name/``; default :func:`cache_dir`.
    split : {"train", "test"}, optional
        Fetch only that split's images and labels; default both splits.
    mirror : str, optional
        Base URL(s) to fetch from instead of ``AEKIT_MIRROR`` / :data:`MIRRORS`.
    progress : bool, optional
        Show a tqdm bar on stderr; default when stderr is a terminal or ``AEKIT_PROGRESS=1``.

    Returns
    -------
    Path
        ``root/name``, holding the files (files already there, compressed or not, are kept).

    Raises
    ------
    DataError
        Every mirror failed (unreachable, not found) or served a file whose md5 differs.
    FileSystemError
        The folder cannot be made or written (the message names the path and the cause).

    Examples
    --------
    >>> folder = fetch_idx("mnist", "data", split="test")  # doctest: +SKIP
    """
    if name not in MD5:
        raise DataError(f"cannot download {name!r}; only {', '.join(MD5)} can be")
    if split is not None and split not in SPLIT_FILES:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    folder = (Path(root).expanduser() if root is not None else cache_dir()) / name
    wanted = SPLIT_FILES[split] if split is not None else tuple(MD5[name])
    if not _missing(folder, wanted):
        return folder
    bases = mirrors(name, mirror)
    if progress is None:
        progress = sys.stderr.isatty() or os.environ.get("AEKIT_PROGRESS", "") == "1"
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise file_error(e, folder, "make the download folder") from None
    try:
        with _folder_lock(folder):
            for file in _missing(folder, wanted):  # again: another process may have fetched it
                print(f"aekit: downloading {name} {file} into {folder}", file=sys.stderr)
                _fetch_file(bases, folder / file, MD5[name][file], progress)
    except BaseException:
        if created:  # leave no empty folder behind (a .part to resume from is kept)
            with contextlib.suppress(OSError):
                if {p.name for p in folder.iterdir()} <= {_LOCK}:
                    (folder / _LOCK).unlink(missing_ok=True)
                    folder.rmdir()
        raise
    return folder


def _missing(folder: Path, files: tuple[str, ...]) -> list[str]:
    """The files absent from ``folder``, neither as ``.gz`` nor as an uncompressed copy."""
    return [
        f for f in files if not (folder / f).is_file() and not (folder / f[: -len(".gz")]).is_file()
    ]


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``flock`` on ``folder/.download.lock`` (dropped by the kernel if the process dies)."""
    if fcntl is None:  # no flock (Windows): each process then has its own .part file
        yield
        return
    path = folder / _LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise file_error(e, path, "lock") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"aekit: waiting for another process downloading into {folder}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _fetch_file(bases: list[str], dest: Path, md5: str, progress: bool) -> None:
    """Fetch ``dest`` from the first mirror that serves it whole with the right md5."""
    part = dest.with_name(dest.name + (".part" if fcntl else f".{os.getpid()}.part"))
    errors = []
    for base in bases:
        url = base + dest.name
        stale = part.is_file() and part.stat().st_size > 0  # left by an interrupted download
        try:
            _download(url, part, progress)
            if stale and _md5(part) != md5:  # the old part may not belong: once from scratch
                part.unlink()
                _download(url, part, progress)
            digest = _md5(part)
        except _Failed as e:
            errors.append(f"{url}: {e}")
            continue
        except OSError as e:
            raise file_error(e, part, "download into") from None
        if digest == md5:
            try:
                os.replace(part, dest)
            except OSError as e:
                raise file_error(e, dest, "download into") from None
            return
        part.unlink(missing_ok=True)
        if len(bases) == 1:
            raise DataError(
                f"refused the download of {url}: its md5 is {digest}, expected {md5}, so it is "
                "corrupt or not the original file; nothing was kept (try again, or set "
                "AEKIT_MIRROR to another mirror)"
            )
        errors.append(f"{url}: md5 {digest}, expected {md5}, refused as corrupt")
    raise DataError(
        f"cannot download {dest.name} into {dest.parent} ({'; '.join(errors)}); check the "
        "connection, set AEKIT_MIRROR to a mirror that serves it, or put the file there "
        "yourself (AEKIT_OFFLINE=1 turns downloads off)"
    )


class _Failed(Exception):
    """A mirror did not deliver the file (the message says why)."""


def _download(url: str, part: Path, progress: bool) -> None:
    """Fetch ``url`` into ``part``, resuming what is there, retrying while bytes arrive."""
    tries = 0
    while True:
        before = _size(part)
        try:
            if _get(url, part, progress):
                return
            why = "the connection closed before the end of the file"
        except AekitError:  # the local disk: not the mirror's fault
            raise
        except urllib.error.HTTPError as e:
            if e.code == 416:  # the .part holds the whole file already: the md5 decides
                return
            if e.code < 500:
                raise _Failed(f"HTTP {e.code} {e.reason}") from None
            why = f"HTTP {e.code} {e.reason}"
        except urllib.error.URLError as e:
            why = str(e.reason)
            if isinstance(e.reason, _PERMANENT):  # no use in asking this mirror again
                raise _Failed(why) from None
        except (OSError, http.client.HTTPException) as e:  # resets, timeouts, bad replies
            why = str(e) or type(e).__name__
        tries = 0 if _size(part) > before else tries + 1  # a try that made progress is free
        if tries > len(RETRY_DELAYS_S):
            raise _Failed(why)
        time.sleep(RETRY_DELAYS_S[tries - 1] if tries else 0.0)


def _get(url: str, part: Path, progress: bool) -> bool:
    """One request, appended to ``part`` (from the start unless the server resumes with 206).

    Returns True when the whole body arrived (or its size is unknown), False when the
    connection ended early.
    """
    from aekit import __version__

    have = _size(part)
    headers = {"User-Agent": f"aekit/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        if response.status != 206 or not _resumes_at(response, have):
            have = 0  # the server sent the whole file (or another range): start over
        length = response.headers.get("Content-Length", "")
        total = have + int(length) if length.isdigit() else None
        try:
            out = open(part, "ab" if have else "wb")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise file_error(e, part, "download into") from None
        with out, _bar(part.name, total, have, progress) as bar:
            while chunk := response.read(_CHUNK):
                _write(out, chunk, part)
                bar.update(len(chunk))
            _write(out, b"", part, sync=True)
    return total is None or _size(part) >= total


def _resumes_at(response, offset: int) -> bool:
    """True when a 206 reply's ``Content-Range: bytes START-END/TOTAL`` starts at ``offset``."""
    value = response.headers.get("Content-Range", "")
    start = value.removeprefix("bytes ").split("-", 1)[0].strip()
    return start.isdigit() and int(start) == offset


def _write(out, chunk: bytes, part: Path, sync: bool = False) -> None:
    try:
        out.write(chunk)
        if sync:
            out.flush()
            os.fsync(out.fileno())
    except OSError as e:  # ENOSPC and friends: one line naming the file
        raise file_error(e, part, "download into") from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _bar(name: str, total: int | None, initial: int, show: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not show,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.25,
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
