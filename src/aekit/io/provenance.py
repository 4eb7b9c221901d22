"""How a run was made: versions, device, precision, processes, threads and the command line.

:func:`provenance` is recorded in a new run's ``config.json`` (key ``provenance``) and once
more for every resume (``resumes``, a list). :func:`resume_check` holds a resume against the
run's record: what would change the result is refused (streamed data under another process
count: each process reads its own share of the blocks), what would not (another machine,
device or version) is said in one line and allowed.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import torch


def provenance(device=None, precision: str | None = None) -> dict[str, Any]:
    """This process's side of a run, as JSON-ready values (``device`` by its kind: cpu, cuda,
    mps)."""
    from .. import __version__

    processes, backend = 1, None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        processes = torch.distributed.get_world_size()
        backend = str(torch.distributed.get_backend())
    elif os.environ.get("WORLD_SIZE", "").isdigit():
        processes = int(os.environ["WORLD_SIZE"])
    return {
        "aekit": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.node(),
        "device": None if device is None else torch.device(device).type,
        "precision": precision,
        "processes": processes,
        "backend": backend,
        "threads": torch.get_num_threads(),
        "command": _command(sys.argv),
    }


def _command(argv: list[str]) -> list[str]:
    """The command line as typed: ``python -m aekit`` (and torchrun's ``-m aekit``) put the
    path of ``aekit/__main__.py`` first; it is recorded as ``aekit``."""
    from pathlib import Path

    first = Path(argv[0]) if argv else None
    if first is not None and first.name == "__main__.py" and first.parent.name == "aekit":
        return ["aekit", *argv[1:]]
    return list(argv)


def resume_check(stored: dict[str, Any] | None, now: dict[str, Any], streamed: bool) -> list[str]:
    """The differences between a run's record and a resume that are allowed, one phrase each;
    raises :class:`aekit.errors.ConfigError` for one that cannot give the run's result.
    A run written before provenance was recorded (``stored`` None) is allowed as it is."""
    from ..errors import ConfigError

    if not stored:
        return []
    if streamed and stored.get("processes", 1) != now["processes"]:
        raise ConfigError(
            f"this run streamed its data in {stored.get('processes', 1)} process(es) and cannot "
            f"resume in {now['processes']}: each process reads its own share of the blocks, so "
            "the steps would differ; resume with the same torchrun --nproc-per-node"
        )
    if stored.get("precision") not in (None, now["precision"]):
        raise ConfigError(
            f"this run computed in {stored['precision']} and cannot resume in {now['precision']}"
        )
    said = []
    for key in ("machine", "device", "aekit", "torch"):
        if stored.get(key) is not None and stored.get(key) != now[key]:
            said.append(f"{key} {stored[key]} -> {now[key]}")
    return said
