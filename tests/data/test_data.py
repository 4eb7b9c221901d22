"""Tests of aekit.data: loading every source, validation messages, scaling and splitting."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from aekit.data import (
    Dataset,
    Scaler,
    default_scaler_kind,
    load_dataset,
    train_val_split,
    validate_array,
)
from aekit.errors import DataError

SHARED_DATA = Path(
    os.environ.get("AEKIT_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data"
)


def _need(name: str) -> Path:
    if not (SHARED_DATA / name / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real {name} IDX files not found under {SHARED_DATA} (set AEKIT_DATA)")
    return SHARED_DATA


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + payload))


def _fake_mnist(root: Path, n: int = 3, n_labels: int | None = None) -> np.ndarray:
    """Write a tiny, valid MNIST-format train split under root/mnist; return its images."""
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n if n_labels is None else n_labels, dtype=np.uint8)
    _write_idx(root / "mnist/train-images-idx3-ubyte.gz", 2051, images.shape, images.tobytes())
    _write_idx(root / "mnist/train-labels-idx1-ubyte.gz", 2049, labels.shape, labels.tobytes())
    return images


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- built-in image sets


def test_digits_shape_range_and_metadata():
    ds = load_dataset("digits", split="test")  # split is ignored for digits
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    assert ds.X.min() == 0 and ds.X.max() == 16
    assert ds.image_shape == (1, 8, 8) and ds.max_value == 16
    assert ds.labels is not None and ds.labels.shape == (1797,) and set(ds.labels) == set(range(10))
    small = load_dataset("digits", limit=10)
    assert small.X.shape == (10, 64) and np.array_equal(small.labels, ds.labels[:10])


def test_mnist_train_real_values():
    ds = load_dataset("mnist", data_dir=_need("mnist"))
    assert ds.X.shape == (60000, 784) and ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    assert ds.image_shape == (1, 28, 28) and ds.max_value == 255
    assert ds.X.min() == 0 and ds.X.max() == 255
    assert ds.X.mean() == pytest.approx(33.318, abs=0.01)
    assert ds.labels.shape == (60000,) and ds.labels[0] == 5
    assert np.bincount(ds.labels).tolist()[:2] == [5923, 6742]


def test_mnist_test_split_limit_and_env(monkeypatch):
    monkeypatch.setenv("AEKIT_DATA", str(_need("mnist")))
    ds = load_dataset("mnist", split="test")
    assert ds.X.shape == (10000, 784) and len(ds.labels) == 10000 and ds.labels[0] == 7
    small = load_dataset("mnist", split="test", limit=5)
    assert np.array_equal(small.X, ds.X[:5]) and small.labels.tolist() == [7, 2, 1, 0, 4]


def test_fashion_mnist_test_split():
    ds = load_dataset("fashion-mnist", data_dir=_need("fashion-mnist"), split="test")
    assert ds.X.shape == (10000, 784) and ds.max_value == 255 and ds.labels[0] == 9


def test_idx_parsed_from_written_files(tmp_path):
    images = _fake_mnist(tmp_path, n=3)
    ds = load_dataset("MNIST", data_dir=tmp_path)
    assert np.array_equal(ds.X, images.reshape(3, 784).astype(np.float32))
    assert ds.labels.tolist() == [0, 1, 2] and ds.name == "mnist"


def test_idx_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("AEKIT_DATA", raising=False)
    monkeypatch.setenv("AEKIT_OFFLINE", "1")  # missing files are reported, not downloaded
    with pytest.raises(DataError, match="AEKIT_DATA"):
        load_dataset("mnist")
    with pytest.raises(DataError, match=r"no mnist folder at .*--data-dir"):
        load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("mnist", data_dir=tmp_path, split="val")
    _fake_mnist(tmp_path, n=3, n_labels=4)
    with pytest.raises(DataError, match="3 train images but 4 labels"):
        load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"missing IDX file .*t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path, split="test")


def test_idx_bad_magic_truncated_and_not_gzip(tmp_path):
    images = tmp_path / "mnist/train-images-idx3-ubyte.gz"
    _fake_mnist(tmp_path)
    _write_idx(images, 2049, (3, 28, 28), bytes(3 * 784))
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        load_dataset("mnist", data_dir=tmp_path)
    _write_idx(images, 2051, (3, 28, 28), bytes(100))
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", data_dir=tmp_path)
    _write_idx(images, 2051, (3,), b"")
    with pytest.raises(DataError, match="truncated inside its header"):
        load_dataset("mnist", data_dir=tmp_path)
    images.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read IDX file"):
        load_dataset("mnist", data_dir=tmp_path)


# ---------------------------------------------------------------- arrays and validate_array


def test_array_source_is_tabular_float32():
    ds = load_dataset([[1, 2], [3, 4], [5, 6]], limit=2)
    assert ds.X.dtype == np.float32 and ds.X.tolist() == [[1, 2], [3, 4]]
    assert ds.image_shape is None and ds.max_value is None and ds.labels is None


def test_validate_array_conversions():
    a = np.ones((3, 2), dtype=np.float32)
    assert validate_array(a) is a  # no copy when nothing needs converting
    f = validate_array(np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    assert f.flags.c_contiguous and f.dtype == np.float32 and f[1, 2] == 5
    assert validate_array(np.array([["1", "2.5"]], dtype=object)).tolist() == [[1.0, 2.5]]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (np.arange(4.0), r"1-D .*reshape"),
        (np.zeros((2, 2, 2)), r"3 dimensions .*reshape\(len\(X\), -1\)"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros((3, 0)), "empty"),
        (np.array([["a", "b"]], dtype=object), "non-numeric"),
        ([[1, 2], [3]], "not a rectangular array"),
        (np.ones((2, 2)) * 1j, "complex"),
        (np.array([[1.0, np.nan], [2, 3], [np.inf, -np.inf]]), r"3 non-finite .* rows 0, 2 "),
        (np.array([[1e300, 1.0]]), r"1 non-finite value .* row 0 "),  # overflows float32
    ],
)
def test_validate_array_rejects(bad, fragment):
    with pytest.raises(DataError, match=fragment):
        validate_array(bad)


def test_validate_array_width_and_what():
    with pytest.raises(DataError, match="data has 30 features but the model expects 64"):
        validate_array(np.zeros((2, 30)), width=64)
    with pytest.raises(DataError, match="^input X is 1-D"):
        validate_array(np.zeros(3), what="input X")


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "3"])
def test_bad_limit(limit):
    with pytest.raises(DataError, match="limit must be a positive"):
        load_dataset("digits", limit=limit)


def test_dataset_checks_image_shape_and_labels():
    with pytest.raises(DataError, match="image_shape"):
        Dataset(np.zeros((2, 10), np.float32), "x", image_shape=(1, 3, 3))
    with pytest.raises(DataError, match="2 samples but 3 labels"):
        Dataset(np.zeros((2, 9), np.float32), "x", labels=np.arange(3))


# ---------------------------------------------------------------- files


def test_missing_file_unknown_suffix_and_name(tmp_path):
    with pytest.raises(DataError, match="no such data file: .*nope.csv"):
        load_dataset(tmp_path / "nope.csv")
    for source in (str(_write(tmp_path / "x.dat", "1,2\n")), "cifar10"):
        with pytest.raises(DataError, match=r"digits, mnist, fashion-mnist .*\.npy, \.npz, \.csv"):
            load_dataset(source)
    # a .txt file is a list of image paths; numbers in it are named as such
    with pytest.raises(DataError, match=r"x.txt line 1 names '1,2'.*list of image paths.*\.csv"):
        load_dataset(_write(tmp_path / "x.txt", "1,2\n"))
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        load_dataset(tmp_path / "dir.csv")


def test_csv_with_and_without_header(tmp_path):
    plain = load_dataset(_write(tmp_path / "plain.csv", "1,2,3\n4,5,6.5\n"))
    header = load_dataset(_write(tmp_path / "head.csv", "a,b,c\n1,2,3\n\n4,5,6.5\n"))
    assert plain.X.tolist() == header.X.tolist() == [[1, 2, 3], [4, 5, 6.5]]
    assert plain.X.dtype == np.float32 and plain.name == "plain" and plain.labels is None
    zipped = tmp_path / "z.csv.gz"
    zipped.write_bytes(gzip.compress(b"1,2\n3,4\n"))
    assert load_dataset(zipped).X.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,b\n", "header row but no data rows"),
        ("a,b\n1,2\n3\n", "line 3 has 1 value\\(s\\) but the first row has 2"),
        ("1,2\n3,x\n", "line 2, column 2 holds 'x', which is not a number"),
        ("1,2\n3,\n", "line 2, column 2 holds an empty cell"),
        ("a;b\n1;2\n", "must be comma-separated"),
        (
            "1,2\nnan,3\ninf,1\n",
            r"data file 'bad.csv' has 2 non-finite values \(NaN/Inf\) in lines 2, 3;",
        ),
    ],
)
def test_csv_errors(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment):
        load_dataset(_write(tmp_path / "bad.csv", text))


def test_npy_round_trip_and_errors(tmp_path):
    X = np.arange(12, dtype=np.int16).reshape(4, 3)
    np.save(tmp_path / "ok.npy", X)
    ds = load_dataset(tmp_path / "ok.npy")
    assert ds.X.dtype == np.float32 and np.array_equal(ds.X, X) and ds.name == "ok"
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(DataError, match=r"'flat.npy' is 1-D .*reshape"):
        load_dataset(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a numeric .npy file"):
        load_dataset(tmp_path / "obj.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(tmp_path / "empty.npy")


def test_npz_keys(tmp_path):
    X, y = np.random.default_rng(0).normal(size=(5, 2)), np.array([0, 1, 0, 1, 1])
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    ds = load_dataset(tmp_path / "xy.npz")
    assert np.allclose(ds.X, X) and ds.labels.tolist() == y.tolist()
    np.savez(tmp_path / "one.npz", features=X)
    only = load_dataset(tmp_path / "one.npz")
    assert np.allclose(only.X, X) and only.labels is None
    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(DataError, match="holds 'a', 'b' and none is named 'X'"):
        load_dataset(tmp_path / "two.npz")
    np.save(tmp_path / "plain.npy", X)
    (tmp_path / "plain.npy").rename(tmp_path / "plain.npz")
    assert np.allclose(load_dataset(tmp_path / "plain.npz").X, X)
    np.savez(tmp_path / "pickled.npz", X=np.array([None, 1], dtype=object))
    with pytest.raises(DataError, match="not a numeric .npz file"):
        load_dataset(tmp_path / "pickled.npz")
    np.savez(tmp_path / "short.npz", X=X, y=y[:3])
    with pytest.raises(DataError, match="5 samples but 3 labels"):
        load_dataset(tmp_path / "short.npz")


def test_parquet_round_trip_and_errors(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1.5, 2.0], "b": [3, 4]}), tmp_path / "t.parquet")
    assert load_dataset(tmp_path / "t.parquet").X.tolist() == [[1.5, 3], [2.0, 4]]
    pq.write_table(pa.table({"a": [1.0], "s": ["x"]}), tmp_path / "s.parquet")
    with pytest.raises(DataError, match="column 's' is not numeric"):
        load_dataset(tmp_path / "s.parquet")
    pq.write_table(pa.table({"a": [1.0, None]}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"1 non-finite value \(NaN/Inf\) in row 1 \(0-based\)"):
        load_dataset(tmp_path / "n.parquet")
    _write(tmp_path / "junk.parquet", "not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_dataset(tmp_path / "junk.parquet")


def test_parquet_without_pyarrow_or_pandas(tmp_path, monkeypatch):
    for mod in ("pyarrow", "pyarrow.parquet", "pandas"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` raise ImportError
    _write(tmp_path / "t.parquet", "whatever")
    with pytest.raises(DataError, match=r"pip install aekit\[parquet\]"):
        load_dataset(tmp_path / "t.parquet")


# ---------------------------------------------------------------- scaling


def _table() -> np.ndarray:
    X = np.random.default_rng(1).normal(3.0, 2.0, size=(200, 4)).astype(np.float32)
    X[:, 2] = 7.0  # a constant column
    return X


def test_image_scaler_maps_to_unit_interval():
    ds = load_dataset("digits")
    scaler = Scaler.fit(ds.X, default_scaler_kind(ds), max_value=ds.max_value)
    Z = scaler.transform(ds.X)
    assert scaler.kind == "image" and Z.dtype == np.float32 and Z.min() == 0 and Z.max() == 1
    assert np.allclose(scaler.inverse_transform(Z), ds.X, atol=1e-5)
    with pytest.raises(DataError, match="needs the pixel maximum"):
        Scaler.fit(ds.X, "image")


def test_minmax_and_standard_match_sklearn():
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X = _table()
    mm, st = Scaler.fit(X, "minmax"), Scaler.fit(X, "standard")
    ref_mm, ref_st = (
        MinMaxScaler().fit(X.astype(np.float64)),
        StandardScaler().fit(X.astype(np.float64)),
    )
    assert np.allclose(mm.transform(X), ref_mm.transform(X), atol=1e-6)
    assert np.allclose(st.transform(X), ref_st.transform(X), atol=1e-5)
    assert np.allclose(st.offset, ref_st.mean_) and np.allclose(1 / st.scale, ref_st.scale_)
    for scaler in (mm, st):
        assert scaler.scale[2] == 1.0 and np.all(scaler.transform(X)[:, 2] == 0)
        back = scaler.inverse_transform(scaler.transform(X))
        assert back.dtype == np.float32 and np.allclose(back, X, atol=1e-5)
    assert mm.transform(X).min() == 0 and mm.transform(X).max() == pytest.approx(1.0)


def test_none_scaler_is_identity_and_copies():
    X = _table()
    s = Scaler.fit(X, "none")
    assert np.array_equal(s.transform(X), X) and s.transform(X) is not X
    assert np.array_equal(s.inverse_transform(X), X) and s.to_dict()["offset"] is None


def test_scaler_rejects_unknown_kind_and_wrong_width():
    with pytest.raises(DataError, match="unknown scaler 'zscore'"):
        Scaler.fit(_table(), "zscore")
    with pytest.raises(DataError, match="data has 3 features but the scaler was fitted on 4"):
        Scaler.fit(_table(), "minmax").transform(np.zeros((2, 3)))


@pytest.mark.parametrize("kind", ["image", "minmax", "standard", "none"])
def test_scaler_dict_round_trip_is_exact(kind):
    X = _table()
    scaler = Scaler.fit(X, kind, max_value=255)
    back = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert back == scaler and back.kind == kind
    assert np.array_equal(back.transform(X), scaler.transform(X))
    if kind != "none":
        assert back.offset.dtype == np.float64 and np.array_equal(back.scale, scaler.scale)


@pytest.mark.parametrize(
    "d",
    [
        None,
        {"kind": "minmax", "offset": [0.0]},
        {"kind": "minmax", "offset": [0.0], "scale": [1.0], "extra": 1},
        {"kind": "robust", "offset": [0.0], "scale": [1.0]},
        {"kind": "minmax", "offset": [0.0, 1.0], "scale": [1.0]},
        {"kind": "minmax", "offset": [0.0], "scale": [0.0]},
        {"kind": "minmax", "offset": ["a"], "scale": [1.0]},
        {"kind": "minmax", "offset": [float("nan")], "scale": [1.0]},
        {"kind": "minmax", "offset": [], "scale": []},
        {"kind": "none", "offset": [0.0], "scale": [1.0]},
        {"kind": "image", "offset": [0.0, 0.0], "scale": [1.0, 1.0]},
    ],
)
def test_scaler_from_dict_rejects_malformed(d):
    with pytest.raises(DataError, match="malformed scaler dict"):
        Scaler.from_dict(d)


def test_default_scaler_kind():
    assert default_scaler_kind(load_dataset(np.ones((2, 3)))) == "minmax"
    assert (
        default_scaler_kind(Dataset(np.ones((1, 4), np.float32), "i", (1, 2, 2), None, 1.0))
        == "image"
    )


# ---------------------------------------------------------------- train/validation split


def test_split_sizes_partition_and_determinism():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    train, val = train_val_split(X, 0.2, seed=0)
    assert train.shape == (80, 2) and val.shape == (20, 2)
    assert sorted(np.concatenate([train, val])[:, 0].tolist()) == X[:, 0].tolist()
    again, val_again = train_val_split(X, 0.2, seed=0)
    assert np.array_equal(again, train) and np.array_equal(val_again, val)
    assert not np.array_equal(train_val_split(X, 0.2, seed=1)[1], val)
    whole, none = train_val_split(X, 0.0, seed=0)
    assert whole is X and none is None
    tiny_train, tiny_val = train_val_split(X[:2], 0.01, seed=0)
    assert len(tiny_train) == 1 and len(tiny_val) == 1


@pytest.mark.parametrize("frac", [-0.1, 1.0, 1.5, float("nan"), True, "0.2"])
def test_split_rejects_bad_fraction(frac):
    with pytest.raises(DataError, match=r"val_fraction must be in \[0, 1\)"):
        train_val_split(np.zeros((10, 2)), frac, seed=0)


def test_split_needs_a_training_sample():
    with pytest.raises(DataError, match="leaves no training data"):
        train_val_split(np.zeros((1, 2)), 0.5, seed=0)
    with pytest.raises(DataError, match="empty"):
        train_val_split(np.zeros((0, 2)), 0.5, seed=0)


def test_csv_first_row_mixing_numbers_and_text_is_an_error_not_a_header(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("1,2,x\n4,5,6\n")
    with pytest.raises(DataError, match="line 1, column 3"):
        load_dataset(path)
