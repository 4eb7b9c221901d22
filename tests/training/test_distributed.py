"""DistributedDataParallel through torchrun: sharding, 2 processes vs 1, resume, bad worlds."""

from __future__ import annotations

import json
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

SRC = str(Path(__file__).resolve().parents[2] / "src")
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


def test_leaving_together_ends_the_world(monkeypatch):
    """The end of a job that succeeded: the ranks meet, then the process group is gone
    (destroyed while the interpreter is whole, not at its exit)."""
    from datetime import timedelta

    import torch.distributed as dist

    init = f"tcp://127.0.0.1:{_free_port()}"
    dist.init_process_group("gloo", init_method=init, rank=0, world_size=1)
    try:
        monkeypatch.setattr(distributed, "launched", lambda: True)
        distributed.leave_together(timedelta(seconds=60))
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


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
    # the run says how it was made: two processes over gloo, at the start and the resume
    cfg = json.loads((tmp_path / "ddp" / "config.json").read_text())
    made = [cfg["provenance"], *cfg["resumes"]]
    assert [(m["processes"], m["backend"], m["device"]) for m in made] == [(2, "gloo", "cpu")] * 2
    assert made[1]["command"][:3] == ["aekit", "train", "--resume"]


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


@pytest.mark.parametrize("world, batch", [(2, 16), (3, 7), (2, 1), (4, 50)])
def test_streamed_ranks_read_their_own_blocks_and_cover_the_epoch_once(
    tmp_path, digits01, monkeypatch, world, batch
):
    """Each rank's stretch, taken batch by batch as the loop does, is its own part of the
    one-process epoch; together they are the epoch; no rank reads more than one extra block."""
    import numpy as np

    from aekit.data import stream
    from aekit.data.stream import BlockShuffle, StreamedArray, split_blocks
    from aekit.training.distributed import RankStretch

    monkeypatch.setattr(stream, "BLOCK_BYTES", 64 * 4 * 23)
    np.save(tmp_path / "x.npy", digits01)
    train, _ = split_blocks(StreamedArray(tmp_path / "x.npy"), 0.1, seed=0)
    n = len(train)
    whole = BlockShuffle(train, 4, 2, torch.from_numpy)[0:n].numpy()
    reads, parts = [], []
    real_read = train.read
    for r in range(world):
        monkeypatch.setattr(train, "read", lambda b, r=r: reads.append(r) or real_read(b))
        ranks = RankStretch(train, 4, 2, torch.from_numpy, world, r)
        taken = []
        for start in range(0, n, batch):
            size = min(batch, n - start)
            lo, hi = shard(size, world, r)
            rows = ranks.take(size, hi - lo)
            assert (rows is None) == (hi == lo) and (rows is None or len(rows) == hi - lo)
            taken += [] if rows is None else [rows.numpy()]
        parts.append(np.concatenate(taken) if taken else np.zeros((0, 64), np.float32))
        assert reads.count(r) <= -(-len(parts[-1]) // 23) + 1
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(reads) <= len(train.blocks) + world - 1


def test_streamed_training_under_torchrun_resumes_exactly(tmp_path, digits01):
    """A parquet file of 5 row groups (5 blocks): 2 ranks, 2 epochs then resumed to 3, equal
    to 3 epochs straight; rank 0 alone writes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({f"c{j}": digits01[:, j] for j in range(digits01.shape[1])})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=40)
    common = ["train", "--data", str(tmp_path / "x.parquet"), "--stream", "--batch-size", "32"]
    common += ["--hidden", "16", "--latent-dim", "3", "--quiet", "--threads", "1"]
    common += ["--val-fraction", "0.2"]
    for name, epochs in (("straight", "3"), ("resumed", "2")):
        done = _torchrun([*common, "--epochs", epochs, "--out", str(tmp_path / name)])
        assert done.returncode == 0, done.stderr[-6000:]
        assert done.stdout.count("run written to") == 1, (done.stdout, done.stderr[-6000:])
    again = _torchrun(["train", "--resume", "--epochs", "3", "--out", str(tmp_path / "resumed")])
    assert again.returncode == 0, again.stderr[-6000:]
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # streamed in two processes, it cannot resume in one: refused in one line, nothing run
    cfg = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert (cfg["provenance"]["processes"], cfg["provenance"]["backend"]) == (2, "gloo")
    alone = subprocess.run(
        [sys.executable, "-m", "aekit", "train", "--resume", "--epochs", "4", "--out",
         str(tmp_path / "resumed")],
        env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 2, alone.stderr
    lines = alone.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "streamed its data in 2 process(es) and cannot resume in 1" in (lines[0])
    ), lines
    assert _weights(tmp_path / "resumed").keys() == b.keys()
    assert all(torch.equal(_weights(tmp_path / "resumed")[k], b[k]) for k in b)
