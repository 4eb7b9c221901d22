"""Files that are whole or absent: every write goes to a temporary name, then is renamed.

A process killed at any instant leaves either the old file or the new one, never half of one.
Temporary names carry the writing process's id (``.NAME.PID.XXXX.tmp``, folders
``.NAME.tmp-PID-XXXX``): the next write of the same name removes those a dead process left,
and never those of a live one (two processes writing one output do not remove each other's).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FileSystemError, file_error

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename tmp over ``path`` (after fsync).

    Raises
    ------
    FileSystemError
        (or :class:`~aekit.errors.DiskFullError`) naming the path and the cause, for any
        operating-system error; the previous file at ``path`` is left as it was.
    """
    path = Path(path)
    try:
        make_folder(path.parent)
        remove_stale(path.parent, path.name)
        prefix = f".{path.name}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    except OSError as e:
        raise file_error(e, path) from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run folder is for people to read
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise file_error(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_folder(folder: str | os.PathLike, fill, replaceable) -> Path:
    """Call ``fill(tmp_folder)`` then rename the folder into place as ``folder``.

    The folder is filled under a temporary sibling (``.NAME.tmp-PID-XXXX``); a folder already at
    ``folder`` is replaced only when ``replaceable(folder)`` says it is an earlier output of
    the same kind (else one :class:`~aekit.errors.ConfigError` line, before anything is
    written): it is moved aside, the new one renamed in, the old one removed. Killed at any
    instant, ``folder`` holds the old output, the whole new one, or (between the two renames)
    nothing; never a part. Stray siblings of a killed write are removed by the next one
    (those of a live process are kept).
    """
    import shutil

    from ..errors import ConfigError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; name a folder")
    if folder.is_dir() and any(folder.iterdir()) and not replaceable(folder):
        raise ConfigError(
            f"--out {folder} is a folder holding other files; name a new folder (aekit replaces "
            "only an earlier output of the same command)"
        )
    parent = folder.parent
    tag = f".{folder.name}.tmp-{os.getpid()}-"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent, folder.name)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=tag))
    except OSError as e:
        raise file_error(e, folder, "make the folder") from None
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700
        fill(tmp)
        _swap_in(tmp, folder, tag)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise file_error(e, folder) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_in(tmp: Path, folder: Path, tag: str, tries: int = 5) -> None:
    """Rename ``tmp`` to ``folder``, moving a folder there aside first (then removing it).
    Another process finishing the same output at the same moment may move the old folder
    first, or rename its own in between: the move aside is then skipped, or done again."""
    import errno
    import shutil

    for attempt in range(tries):
        old = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{tag}old-"))
            os.rmdir(old)
            try:
                os.replace(folder, old)
            except FileNotFoundError:  # the other writer moved it aside first
                old = None
        try:
            os.replace(tmp, folder)
            return
        except OSError as e:  # the other writer's folder arrived in between
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == tries - 1:
                raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


# what follows a temporary name's ".NAME.": a file's "PID.XXXXXXXX.tmp" (mkstemp's 8 letters),
# a folder's "tmp-PID-XXXXXXXX" or "tmp-PID-old-XXXXXXXX", or one from before pids ("tmp-XXXX")
_TEMPORARY = (
    r"(?:(\d+)\.[a-z0-9_]{8}\.tmp|tmp-(\d+)-(?:old-)?[a-z0-9_]{8}|tmp-(?:old-)?[a-z0-9_]{8})"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): alive
        return True
    return True


def remove_stale(folder: str | os.PathLike, name: str | None = None) -> list[str]:
    """Remove the temporary files and folders of writes of ``name`` (None: of any name) in
    ``folder`` that a process no longer running left (killed as it wrote); returns their names.

    The temporary names of this process and of other live ones are kept: writes in progress.
    Errors are ignored (what cannot be listed or removed is left).
    """
    import re
    import shutil

    head = r"\..+\." if name is None else re.escape(f".{name}.")
    pattern = re.compile(head + _TEMPORARY)
    removed = []
    try:
        entries = [p for p in Path(folder).iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    for p in entries:
        m = pattern.fullmatch(p.name)
        if m is None:
            continue
        pid = int(m.group(1) or m.group(2) or 0)  # 0: a folder from before pids
        if pid == os.getpid() or (pid and _alive(pid)):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p.name)
        except OSError:
            pass
    return removed


def make_folder(path: str | os.PathLike) -> Path:
    """mkdir -p, with one clear error when a file is in the way or permissions refuse."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileSystemError(
            errno.EEXIST, f"cannot make the folder {path}: a file of that name is in the way"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise file_error(e, path, "make the folder") from None
    return path


def _named_csv(tmp: str, array: np.ndarray, names, prefix: str) -> None:
    import csv

    table = np.asarray(array).reshape(len(array), -1)
    with open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", *(f"{prefix}{j}" for j in range(table.shape[1]))])
        for name, row in zip(names, table, strict=True):
            out.writerow([name, *(f"{v:.9g}" for v in row)])


def write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(obj, indent=2, allow_nan=True) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_array(path: str | os.PathLike, array: np.ndarray, names=None, prefix="x") -> None:
    """Write .npy or .csv atomically; any other suffix is refused before anything is written.

    With ``names`` (one per row: the input files) a .csv gets a header and a first column
    ``file``, the other columns named ``{prefix}0``, ``{prefix}1``, ...
    """
    path = Path(path)
    if path.suffix == ".csv" and names is not None:
        atomic_write(path, lambda tmp: _named_csv(tmp, array, names, prefix))
        return
    if path.suffix == ".npy":

        def write_npy(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array)

        atomic_write(path, write_npy)
    elif path.suffix == ".csv":
        atomic_write(path, lambda tmp: np.savetxt(tmp, array, delimiter=",", fmt="%.9g"))
    else:
        raise ConfigError(f"cannot write {path.name}: use a .npy or .csv output file")
