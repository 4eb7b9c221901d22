"""Shared fixtures: small real data, and the shared data folder when it is present."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# the suite's models are tiny: one thread beats two on a 2-core machine (no contention)
torch.set_num_threads(1)
# no test reaches the internet: a missing data set is an error, not a download
# (tests/data/test_download.py serves its own mirror on 127.0.0.1 and switches this off)
os.environ["AEKIT_OFFLINE"] = "1"


def shared_data_dir() -> Path | None:
    """$AEKIT_DATA, else ../shared/data beside the checkout; None when absent."""
    path = Path(os.environ.get("AEKIT_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
    return path if (path / "mnist").is_dir() else None


SRC = str(Path(__file__).resolve().parents[1] / "src")


def _default_sigint() -> None:
    # a suite started in the background of a non-interactive shell (`pytest &`) inherits
    # SIGINT ignored, and Python keeps an inherited SIG_IGN: the child would shrug off the
    # Ctrl-C the fault tests send. Each child starts with the default, as from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn_aekit(argv: list[str], capture_stderr: bool = False) -> subprocess.Popen:
    """``python -m aekit ARGV`` in a process of its own: this checkout's code, one thread."""
    return subprocess.Popen(
        [sys.executable, "-m", "aekit", *argv],
        env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL,
        text=True,
        preexec_fn=_default_sigint,
    )


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine (CPU-only, as CI)"
)
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Each device the suite runs on: the CPU always, CUDA where present (skipped otherwise)."""
    return request.param


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set AEKIT_DATA or place shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def digits01() -> np.ndarray:
    """The first 200 scikit-learn digits scaled to [0, 1], float32 (200, 64)."""
    from sklearn.datasets import load_digits

    return (load_digits().data[:200] / 16.0).astype(np.float32)


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault-injection suite's counts (tests/test_faults.py), when it ran."""
    import sys

    faults = sys.modules.get("test_faults")
    counts = getattr(faults, "COUNTS", None)
    if counts:
        terminalreporter.section("fault injection")
        for what, n in sorted(counts.items()):
            terminalreporter.write_line(f"{n:6d}  {what}")
