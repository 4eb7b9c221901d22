"""Anomaly detector folders: config.json (the detector's settings under ``DETECTOR_KEY``),
one model folder per ensemble member, the nearest-neighbour part's reference rows and the
isolation part's trees.

``FORMAT`` versions the folder: 1 (no "format" entry) before the isolation part, 2 with it
(an isolation part's trees in ``ISOLATION_FILE``); a folder of a later format is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelFileError
from ..io import checkpoint as ckpt
from ..io.files import write_json

DETECTOR_KEY = "detector"  # the config.json entry that marks a detector run
REFERENCE_FILE = "knn-reference.safetensors"  # a detector's nearest-neighbour rows
ISOLATION_FILE = "isolation-forest.safetensors"  # its isolation forest's arrays
FORMAT = 2  # the settings' "format": 2 since the isolation part


def save_detector(
    path: str | os.PathLike,
    nets,
    settings: dict[str, Any],
    reference: np.ndarray | None = None,
    forest: dict[str, np.ndarray] | None = None,
) -> Path:
    """A folder: config.json (the detector's settings, with ``"format": FORMAT``),
    member-<i>/ per model and, with a nearest-neighbour part, its ``reference`` rows
    (``REFERENCE_FILE``, safetensors), with an isolation part its ``forest``
    (``ISOLATION_FILE``), appearing whole (:func:`aekit.io.files.atomic_folder`); an earlier
    detector there is replaced."""
    from .. import __version__
    from ..io.files import atomic_folder

    def fill(tmp: Path) -> None:
        for i, net in enumerate(nets):
            ckpt.save(net, tmp / f"member-{i}")
        if reference is not None:
            ckpt.save_tensors(tmp / REFERENCE_FILE, {"rows": torch.from_numpy(reference)})
        if forest is not None:
            arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in forest.items()}
            ckpt.save_tensors(tmp / ISOLATION_FILE, arrays)
        info = {"format": FORMAT, **settings}
        write_json(tmp / ckpt.CONFIG_FILE, {"aekit_version": __version__, DETECTOR_KEY: info})

    return atomic_folder(path, fill, _is_detector)


def _is_detector(folder: Path) -> bool:
    """An earlier detector folder (which a new fit may replace), not a user's folder."""
    try:
        config = ckpt.read_config(folder)
    except ModelFileError:
        return False
    allowed = {ckpt.CONFIG_FILE, REFERENCE_FILE, ISOLATION_FILE}
    allowed |= {p.name for p in folder.glob("member-*") if p.is_dir()}
    return DETECTOR_KEY in config and {p.name for p in folder.iterdir()} <= allowed


def load_detector(path: str | os.PathLike) -> tuple[list, dict[str, Any]]:
    """(member models, settings) written by :func:`save_detector`; never unpickles. With a
    nearest-neighbour part, settings["knn_reference_"] holds its rows (float64); with an
    isolation part, settings["isolation_forest_"] its arrays."""
    config = ckpt.read_config(path)
    settings = config.get(DETECTOR_KEY)
    if not isinstance(settings, dict) or "n_members" not in settings:
        raise ModelFileError(f"{path} is not an anomaly detector run (no '{DETECTOR_KEY}' entry)")
    version = settings.get("format", 1)
    if not isinstance(version, int) or not 1 <= version <= FORMAT:
        raise ModelFileError(
            f"{path} is a detector of format {version!r}; this aekit reads formats 1 to "
            f"{FORMAT} (a newer aekit wrote it)"
        )
    nets = [ckpt.load(Path(path) / f"member-{i}") for i in range(int(settings["n_members"]))]
    if settings.get("n_neighbors_") is not None:
        tensors, _ = ckpt.read_tensors(Path(path) / REFERENCE_FILE)
        rows = tensors.get("rows")
        width = settings.get("n_features_in_")
        if rows is None or rows.ndim != 2 or rows.shape[1] != width or len(rows) < 2:
            raise ModelFileError(f"{path}/{REFERENCE_FILE} does not hold the detector's rows")
        settings["knn_reference_"] = rows.numpy().astype(np.float64)
    if settings.get("isolation_weight_") is not None:
        from .isolation import check_forest

        tensors, _ = ckpt.read_tensors(Path(path) / ISOLATION_FILE)
        forest = {k: v.numpy() for k, v in tensors.items()}
        if not check_forest(forest, int(settings.get("n_features_in_") or 0)):
            raise ModelFileError(f"{path}/{ISOLATION_FILE} does not hold the detector's trees")
        settings["isolation_forest_"] = forest
    return nets, settings
