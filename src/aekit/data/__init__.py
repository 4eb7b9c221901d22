"""Data loading, validation, scaling and splitting.

Everything here works on one float32 matrix of shape (N, D) in raw units; scaling is a separate,
invertible step so that reconstructions can be mapped back to the data's own units.
"""

from __future__ import annotations

from aekit.data.builtin import BUILTIN
from aekit.data.record import Dataset, validate_array
from aekit.data.scaling import SCALER_KINDS, Scaler, default_scaler_kind, train_val_split
from aekit.data.sources import load_dataset
from aekit.data.tables import SUFFIXES

__all__ = [
    "BUILTIN",
    "SCALER_KINDS",
    "SUFFIXES",
    "Dataset",
    "Scaler",
    "default_scaler_kind",
    "load_dataset",
    "train_val_split",
    "validate_array",
]
