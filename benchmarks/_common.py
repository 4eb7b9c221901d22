"""Helpers shared by the benchmark scripts (run by hand, never by the test suite)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def data_dir() -> Path:
    """The shared data folder: $AEKIT_DATA, else ../shared/data beside the checkout."""
    path = Path(os.environ.get("AEKIT_DATA", REPO.parent / "shared" / "data"))
    if not (path / "mnist").is_dir():
        raise SystemExit(f"MNIST not found under {path}; set AEKIT_DATA to the shared data folder")
    return path


def mnist(split: str = "train") -> np.ndarray:
    """MNIST images scaled to [0, 1], float32 (N, 784)."""
    from aekit.data import load_dataset

    return load_dataset("mnist", data_dir=data_dir(), split=split).X / np.float32(255)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The machine's measured fp32 matmul rate (best of ``repeats``), GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def save_result(name: str, result: dict) -> Path:
    """Write benchmarks/results/<name>.json with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def load_result(name: str) -> dict | None:
    """A previous run's benchmarks/results/<name>.json, or None."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
