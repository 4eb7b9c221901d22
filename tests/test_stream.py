"""Data larger than memory: blocks read from .npy files and shards, streamed training,
encoding and reconstruction equal to the in-memory results, bad files refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aekit.cli import main
from aekit.data import stream
from aekit.data.stream import BlockShuffle, StreamedArray, split_blocks
from aekit.errors import DataError


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_BYTES", 64 * 4 * 37)  # 37 rows of 64 float32 per block


@pytest.fixture
def files(tmp_path, digits01):
    X = (digits01 * 16).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "shards").mkdir()
    for i, lo in enumerate(range(0, len(X), 70)):
        np.save(tmp_path / "shards" / f"{i:02d}.npy", X[lo : lo + 70])
    return tmp_path, X


def test_blocks_and_shards_read_the_rows_of_the_file(files, small_blocks):
    tmp, X = files
    for source in (tmp / "x.npy", tmp / "shards"):
        arr = StreamedArray(source)
        assert arr.shape == X.shape and arr.n_blocks == -(-len(X) // 37)
        np.testing.assert_array_equal(
            np.concatenate([arr.block(b) for b in range(arr.n_blocks)]), X
        )
        np.testing.assert_array_equal(arr.rows(60, 150), X[60:150])  # across shard borders


def test_an_epoch_visits_every_training_row_once_in_a_seeded_order(files, small_blocks):
    tmp, X = files
    train, val = split_blocks(StreamedArray(tmp / "x.npy"), 0.2, seed=3)
    assert len(train) + len(val) == len(X)

    def epoch(seed, e):
        view = BlockShuffle(train, seed, e, torch.from_numpy)
        return torch.cat([view[i : i + 16] for i in range(0, len(train), 16)]).numpy()

    a = epoch(0, 0)
    rows = {r.tobytes() for r in a}
    expected = {r.tobytes() for b in train.blocks for r in train.data.block(int(b))}
    assert len(a) == len(train) and rows == expected
    np.testing.assert_array_equal(a, epoch(0, 0))  # a pure function of (seed, epoch)
    assert not np.array_equal(a, epoch(0, 1))


def test_streamed_encode_and_reconstruct_equal_the_in_memory_ones(files, small_blocks, capsys):
    tmp, X = files
    run = tmp / "run"
    assert (
        main(["train", "--data", str(tmp / "x.npy"), "--epochs", "1", "--quiet", "--out", str(run)])
        == 0
    )
    for command in ("encode", "reconstruct"):
        streamed, loaded = tmp / f"{command}-s.npy", tmp / f"{command}-m.npy"
        assert main([command, str(run), "--data", str(tmp / "shards"), "--out", str(streamed)]) == 0
        assert main([command, str(run), "--data", str(tmp / "x.npy"), "--out", str(loaded)]) == 0
        np.testing.assert_allclose(np.load(streamed), np.load(loaded), rtol=1e-6, atol=1e-6)


def test_streamed_training_resumes_exactly(files, small_blocks):
    tmp, _ = files
    args = ["train", "--data", str(tmp / "shards"), "--hidden", "16", "--latent-dim", "3"]
    args += ["--batch-size", "16", "--quiet", "--threads", "1"]
    assert main([*args, "--epochs", "4", "--out", str(tmp / "full")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp / "half")]) == 0
    assert main(["train", "--resume", "--epochs", "4", "--out", str(tmp / "half"), "--quiet"]) == 0
    a, b = load_file(tmp / "full/model.safetensors"), load_file(tmp / "half/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((tmp / "full/config.json").read_text())["data"]
    assert record["stream"] and record["n_val"] > 0  # whole blocks held out


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: np.save(d / "s.npy", np.array([["a", "b"]])), "holds <U1 values"),
        (lambda d: np.save(d / "f.npy", np.asfortranarray(np.ones((4, 3)))), "Fortran order"),
        (lambda d: np.save(d / "t.npy", np.ones((2, 3, 4))), "has shape (2, 3, 4)"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, make, fragment):
    make(tmp_path)
    (path,) = tmp_path.glob("*.npy")
    with pytest.raises(DataError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        StreamedArray(path)


def test_shards_of_mixed_width_and_truncated_files_are_refused(tmp_path, capsys):
    (tmp_path / "mixed").mkdir()
    np.save(tmp_path / "mixed" / "a.npy", np.ones((3, 4), np.float32))
    np.save(tmp_path / "mixed" / "b.npy", np.ones((3, 5), np.float32))
    assert main(["train", "--data", str(tmp_path / "mixed"), "--out", str(tmp_path / "r")]) == 2
    assert "different widths [4, 5]" in capsys.readouterr().err
    np.save(tmp_path / "t.npy", np.ones((100, 4), np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-40])
    with pytest.raises(DataError, match="truncated"):
        StreamedArray(tmp_path / "t.npy")
    assert not (tmp_path / "r").exists()


def test_a_non_finite_value_is_refused_naming_its_row(tmp_path, small_blocks):
    X = np.ones((100, 64), np.float32)
    X[77, 5] = np.nan
    np.save(tmp_path / "x.npy", X)
    arr = StreamedArray(tmp_path / "x.npy")
    with pytest.raises(DataError, match="row 77"):
        [arr.block(b) for b in range(arr.n_blocks)]
    X[77, 5] = 3e38  # large but finite: a float64 sum does not overflow
    np.save(tmp_path / "x.npy", X)
    arr = StreamedArray(tmp_path / "x.npy")
    assert sum(len(arr.block(b)) for b in range(arr.n_blocks)) == 100
