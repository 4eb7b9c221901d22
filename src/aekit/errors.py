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


class TrainingDivergedError(AekitError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""
