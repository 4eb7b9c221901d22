"""Exception types a caller can catch: every user mistake raises one of these."""

from __future__ import annotations


class AekitError(Exception):
    """Base class of every error aekit raises for a user's mistake."""


class DataError(AekitError, ValueError):
    """The data is missing, malformed, non-finite or of the wrong width."""


class ConfigError(AekitError, ValueError):
    """A model or training setting is invalid."""


class ModelFileError(AekitError, ValueError):
    """A run directory or model file is missing, unsafe (pickle) or corrupt."""


class MemoryLimitError(AekitError, MemoryError):
    """A model, data set or file would take more memory than allowed (``AEKIT_MAX_MEMORY``,
    default half this machine's); refused before anything of that size is allocated."""


class CompressedFileError(AekitError, ValueError):
    """A compressed image file is corrupt, truncated, of another format or another model's."""


class TrainingDivergedError(AekitError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class FileSystemError(AekitError, OSError):
    """Reading or writing a file failed: permissions, a path through a file, a full disk.

    The message names the path and the cause; the previous file at that path is intact.
    """


class DiskFullError(FileSystemError):
    """The disk filled while writing; free space, then resume (the CLI exits with 1)."""


class RunLockedError(AekitError, RuntimeError):
    """Another process is writing this run directory."""


_HINTS = {
    "EACCES": "check the permissions, or pick another path",
    "EPERM": "check the permissions, or pick another path",
    "EROFS": "the file system is read-only; pick another path",
    "ENOTDIR": "a part of the path is a file, not a folder; pick another path",
    "EEXIST": "a file is in the way; pick another path",
    "EISDIR": "the path is a folder; name a file",
    "ENOSPC": "the disk is full; free some space (a run continues with --resume)",
    "EDQUOT": "the disk quota is used up; free some space (a run continues with --resume)",
}


def file_error(e: OSError, path, action: str = "write") -> FileSystemError:
    """One clear error for an operating-system error on ``path``."""
    import errno

    name = errno.errorcode.get(e.errno or 0, "")
    cls = DiskFullError if name in ("ENOSPC", "EDQUOT") else FileSystemError
    hint = _HINTS.get(name)
    cause = e.strerror or str(e)
    msg = f"cannot {action} {path}: {cause}" + (f"; {hint}" if hint else "")
    return cls(e.errno, msg)
