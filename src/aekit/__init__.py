"""aekit: autoencoders, correct down to the equations.

The public API, re-exported lazily so that ``import aekit.scratch`` (the NumPy engine) does not
import PyTorch::

    import aekit
    run = aekit.train("digits", out="runs/digits", epochs=20)   # trains and writes the run
    model = aekit.load("runs/digits")                           # rebuilt through the registry
    Z = model.encode_numpy(X)                                   # raw data: the run's scaler applies
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AekitError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "ModelFileError": "errors",
    "TrainingDivergedError": "errors",
    "MODELS": "nn",
    "Autoencoder": "nn",
    "build_model": "nn",
    "register_model": "nn",
    "TrainConfig": "training",
    "Callback": "training",
    "TensorBoardLogger": "training",
    "MLflowLogger": "training",
    "fit": "training",
    "load": "io.checkpoint",
    "save": "io.checkpoint",
    "train": "apps.train",
    "evaluate": "apps.evaluate",
    "encode": "apps.evaluate",
    "reconstruct": "apps.evaluate",
    "denoise": "apps.denoise",
    "sample": "apps.generation",
    "interpolate": "apps.generation",
    "log_likelihood": "apps.generation",
    "nll": "apps.generation",
    "compress": "apps.compression",
    "decompress": "apps.compression",
    "fit_density": "apps.generation",
    "sample_run": "apps.generation",
    "CodeDensity": "apps.density",
    "frechet_distance": "functional.frechet",
    "load_dataset": "data",
    "Scaler": "data",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
