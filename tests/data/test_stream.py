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


def _parquet(path, X, row_group_size, names=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = names or [f"p{j}" for j in range(X.shape[1])]
    table = pa.table({n: X[:, j] for j, n in enumerate(names)})
    pq.write_table(table, path, row_group_size=row_group_size)


def test_parquet_is_read_by_row_groups_and_an_epoch_walks_them_whole(files, small_blocks):
    tmp, X = files
    _parquet(tmp / "x.parquet", X, row_group_size=50)
    (tmp / "pq").mkdir()
    _parquet(tmp / "pq" / "a.parquet", X[:120], row_group_size=80)
    _parquet(tmp / "pq" / "b.parquet", X[120:], row_group_size=80)
    for source, sizes in ((tmp / "x.parquet", [50] * 4), (tmp / "pq", [80, 40, 80])):
        arr = StreamedArray(source)
        ends = np.cumsum(sizes)
        assert set(ends) <= set(arr.bounds)  # no block straddles a row group
        assert max(np.diff(arr.bounds)) <= 37
        for b in np.random.default_rng(0).permutation(arr.n_blocks):  # any order
            np.testing.assert_array_equal(arr.block(b), X[slice(*arr.block_range(b))])
        train, _ = split_blocks(arr, 0.0, seed=0)
        epoch = BlockShuffle(train, 5, 1, torch.from_numpy)
        rows = torch.cat([epoch[i : i + 16] for i in range(0, len(X), 16)]).numpy()
        assert sorted(map(bytes, rows)) == sorted(map(bytes, X))
        # each row group's rows come together (its blocks in turn): walked as one piece
        group = np.searchsorted(ends, [_row_of(X, r) for r in rows], side="right")
        assert (np.diff(group) != 0).sum() == len(sizes) - 1


def _row_of(X, row) -> int:
    return int(np.flatnonzero((X == row).all(axis=1))[0])


def test_streamed_parquet_training_and_encoding_equal_the_in_memory_ones(files, small_blocks):
    tmp, X = files
    _parquet(tmp / "x.parquet", X, row_group_size=64)
    run, data = tmp / "run", str(tmp / "x.parquet")
    args = ["train", "--data", data, "--hidden", "16", "--latent-dim", "3", "--batch-size", "16"]
    args += ["--quiet", "--threads", "1", "--stream"]
    assert main([*args, "--epochs", "3", "--out", str(run)]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp / "half")]) == 0
    assert main(["train", "--resume", "--epochs", "3", "--out", str(tmp / "half"), "--quiet"]) == 0
    a, b = load_file(run / "model.safetensors"), load_file(tmp / "half/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    for command in ("encode", "reconstruct"):
        streamed, loaded = tmp / f"{command}-s.npy", tmp / f"{command}-m.npy"
        assert main([command, str(run), "--data", data, "--stream", "--out", str(streamed)]) == 0
        assert main([command, str(run), "--data", data, "--out", str(loaded)]) == 0
        np.testing.assert_allclose(np.load(streamed), np.load(loaded), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: _strings(d / "s.parquet"), "column 'name' is not numeric (string)"),
        (lambda d: (d / "j.parquet").write_bytes(b"PAR1 not really"), "not a readable parquet"),
        (lambda d: _two(d, 4, 5), "different widths [4, 5]"),
        (lambda d: _two(d, 4, 4, names=list("wxyz")), "have different columns"),
        (lambda d: _nulls(d / "n.parquet"), "missing value (NaN/Inf/null) in row 2"),
        (lambda d: (d / "t.csv").write_text("1,2\n"), "streaming reads .npy and .parquet"),
    ],
)
def test_bad_parquet_is_refused_in_one_line(tmp_path, make, fragment, capsys):
    make(tmp_path)
    (data,) = [p for p in tmp_path.iterdir() if p.name != "r"]
    code = main(["train", "--data", str(data), "--stream", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("aekit: error: ") and err.count("\n") == 1, err
    assert fragment in err and not (tmp_path / "r").exists()


def _strings(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0], "name": ["a", "b"]}), path)


def _two(folder, w1, w2, names=None):
    (folder / "d").mkdir()
    _parquet(folder / "d" / "a.parquet", np.ones((3, w1), np.float32), 2)
    _parquet(folder / "d" / "b.parquet", np.ones((3, w2), np.float32), 2, names)


def _nulls(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": pa.array([1, 2, None, 4], pa.int64()), "b": [0.0] * 4}), path)


def test_streamed_scores_and_flags_equal_the_in_memory_ones(files, small_blocks, capsys):
    tmp, X = files
    _parquet(tmp / "x.parquet", X, row_group_size=64)
    det = str(tmp / "det")
    fit = ["fit-detector", "--data", str(tmp / "x.npy"), "--out", det, "--n-estimators", "2"]
    assert main([*fit, "--epochs", "3", "--max-samples", "64"]) == 0
    for command in ("score", "detect"):
        ref = tmp / f"{command}-m.csv"
        assert main([command, det, "--data", str(tmp / "x.npy"), "--out", str(ref)]) == 0
        for source in ("x.npy", "shards", "x.parquet"):
            out = tmp / f"{command}-{source}.csv"
            args = [command, det, "--data", str(tmp / source), "--stream", "--out", str(out)]
            assert main(args) == 0
            assert out.read_text() == ref.read_text()
    code = main(["score", det, "--data", str(tmp / "shards"), "--limit", "5", "--out", str(ref)])
    assert code == 2 and "--limit does not apply to streamed data" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_a_scaler_fitted_in_parts_and_combined_equals_the_one_pass_scaler(
    files, small_blocks, kind
):
    """What each torchrun rank does: fit on every world-th block, merge the sums."""
    tmp, X = files
    arr = StreamedArray(tmp / "x.npy")
    world = 3
    parts = [stream._moments(arr, range(r, arr.n_blocks, world)) for r in range(world)]

    def combine(*mine):  # the all-reduce, over the three parts
        lo, hi = np.min([p[0] for p in parts], 0), np.max([p[1] for p in parts], 0)
        return lo, hi, *(np.sum([p[i] for p in parts], 0) for i in (2, 3, 4))

    merged = stream.fit_scaler(arr, kind, part=(1, world), combine=combine)
    whole = stream.fit_scaler(arr, kind)
    np.testing.assert_allclose(merged.offset, whole.offset, rtol=1e-12)
    np.testing.assert_allclose(merged.scale, whole.scale, rtol=1e-12)
    assert kind != "minmax" or np.array_equal(whole.offset, X.min(0))


def test_eval_of_a_streamed_run_scores_its_validation_blocks(files, small_blocks, monkeypatch,
                                                             capsys):  # fmt: skip
    """Issue 21: the held-out rows of a streamed run are its validation blocks, found again
    however the blocks of the eval's process would be cut."""
    tmp, X = files
    out = tmp / "r"
    argv = ["train", "--data", str(tmp / "x.npy"), "--stream", "--epochs", "1", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())["data"]
    arr = StreamedArray(tmp / "x.npy")
    _, val = split_blocks(arr, 0.1, 0)
    rows = np.concatenate([X[slice(*arr.block_range(int(b)))] for b in val.blocks])
    assert record["n_val"] == len(rows) and record["block_rows"] == 37
    monkeypatch.setattr(stream, "BLOCK_BYTES", 2**25)  # eval's default blocks: one block
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["split"], got["held_out"], got["n_samples"]) == ("val", True, len(rows))
    from aekit import load

    model = load(out)
    mse = np.mean((model.reconstruct_numpy(rows).astype(np.float64) - rows) ** 2)
    assert got["mse"] == pytest.approx(mse, rel=1e-5)
