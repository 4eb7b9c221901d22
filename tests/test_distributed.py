"""DistributedDataParallel through torchrun: sharding, 2 processes vs 1, resume, bad worlds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aekit.cli import main
from aekit.training import distributed
from aekit.training.distributed import shard

SRC = str(Path(__file__).resolve().parents[1] / "src")
ARGS = ["--limit", "301", "--hidden", "32", "--latent-dim", "4", "--quiet", "--threads", "1"]


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_shards_cover_every_row_of_every_batch_once(world):
    for size in list(range(1, 40)) + [128, 1000]:
        parts = [shard(size, world, r) for r in range(world)]
        rows = [i for lo, hi in parts for i in range(lo, hi)]
        assert rows == list(range(size))  # each row once, in order, contiguous per rank
        widths = [hi - lo for lo, hi in parts]
        assert max(widths) - min(widths) <= 1


def test_outside_torchrun_this_process_writes(monkeypatch):
    for key in distributed.ENV:
        monkeypatch.delenv(key, raising=False)
    assert not distributed.launched() and distributed.is_writer()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    assert distributed.launched() and not distributed.is_writer()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(argv: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    cmd += [f"--master-port={_free_port()}", "-m", "aekit", *argv]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def test_two_processes_reach_the_single_process_weights_and_resume(tmp_path):
    """Global batch 269 of 270 rows: the last batch has one row, so one rank sits it out."""
    common = ["train", *ARGS, "--batch-size", "269"]
    done = _torchrun([*common, "--epochs", "2", "--out", str(tmp_path / "ddp")])
    assert done.returncode == 0, done.stderr[-6000:]
    # rank 0 reports, and rank 0 alone writes (a second writer would have met the lock)
    assert done.stdout.count("run written to") == 1, (done.stdout, done.stderr[-6000:])
    again = _torchrun(["train", "--resume", "--epochs", "4", "--out", str(tmp_path / "ddp")])
    assert again.returncode == 0, again.stderr[-6000:]
    assert main([*common, "--epochs", "4", "--out", str(tmp_path / "one")]) == 0
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir() if p.name.endswith(".tmp")) == []


def test_a_world_with_an_empty_rank_is_refused_in_one_line(tmp_path):
    done = _torchrun(["train", "--limit", "1", "--val-fraction", "0", "--out", str(tmp_path / "r")])
    assert done.returncode != 0
    # one line per rank (two processes share the pipe, so the lines may interleave)
    assert done.stderr.count("aekit: error: 1 samples cannot be shared by 2 processes") == 2
    assert not _aekit_frames(done.stderr)  # (torchrun itself prints a traceback of its own)


def _aekit_frames(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "File" in line and "/aekit/" in line]


def test_the_numpy_engine_is_refused_under_torchrun(tmp_path):
    done = _torchrun(["train", "--engine", "numpy", *ARGS, "--out", str(tmp_path / "r")])
    assert done.returncode != 0
    assert "runs in one process" in done.stderr and not _aekit_frames(done.stderr)
