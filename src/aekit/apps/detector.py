"""Anomaly detector folders: config.json (the detector's settings under ``DETECTOR_KEY``),
one model folder per ensemble member, and the nearest-neighbour part's reference rows."""

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


def save_detector(
    path: str | os.PathLike, nets, settings: dict[str, Any], reference: np.ndarray | None = None
) -> Path:
    """A folder: config.json (the detector's settings), member-<i>/ per model and, with a
    nearest-neighbour part, its ``reference`` rows (``REFERENCE_FILE``, safetensors),
    appearing whole (:func:`aekit.io.files.atomic_folder`); an earlier detector there is
    replaced."""
    from .. import __version__
    from ..io.files import atomic_folder

    def fill(tmp: Path) -> None:
        for i, net in enumerate(nets):
            ckpt.save(net, tmp / f"member-{i}")
        if reference is not None:
            ckpt.save_tensors(tmp / REFERENCE_FILE, {"rows": torch.from_numpy(reference)})
        write_json(tmp / ckpt.CONFIG_FILE, {"aekit_version": __version__, DETECTOR_KEY: settings})

    return atomic_folder(path, fill, _is_detector)


def _is_detector(folder: Path) -> bool:
    """An earlier detector folder (which a new fit may replace), not a user's folder."""
    try:
        config = ckpt.read_config(folder)
    except ModelFileError:
        return False
    allowed = {ckpt.CONFIG_FILE, REFERENCE_FILE}
    allowed |= {p.name for p in folder.glob("member-*") if p.is_dir()}
    return DETECTOR_KEY in config and {p.name for p in folder.iterdir()} <= allowed


def load_detector(path: str | os.PathLike) -> tuple[list, dict[str, Any]]:
    """(member models, settings) written by :func:`save_detector`; never unpickles. With a
    nearest-neighbour part, settings["knn_reference_"] holds its rows (float64)."""
    config = ckpt.read_config(path)
    settings = config.get(DETECTOR_KEY)
    if not isinstance(settings, dict) or "n_members" not in settings:
        raise ModelFileError(f"{path} is not an anomaly detector run (no '{DETECTOR_KEY}' entry)")
    nets = [ckpt.load(Path(path) / f"member-{i}") for i in range(int(settings["n_members"]))]
    if settings.get("n_neighbors_") is not None:
        tensors, _ = ckpt.read_tensors(Path(path) / REFERENCE_FILE)
        rows = tensors.get("rows")
        width = settings.get("n_features_in_")
        if rows is None or rows.ndim != 2 or rows.shape[1] != width or len(rows) < 2:
            raise ModelFileError(f"{path}/{REFERENCE_FILE} does not hold the detector's rows")
        settings["knn_reference_"] = rows.numpy().astype(np.float64)
    return nets, settings
