"""Tests of aekit.data.download against a local HTTP mirror on 127.0.0.1 (never the internet).

Most tests serve tiny synthetic IDX files whose md5 is put into ``download.MD5`` for the test;
those that serve the real MNIST files skip when the shared data folder is absent.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from aekit.cli import main
from aekit.data import download, load_dataset
from aekit.errors import AekitError, DataError

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"


class Mirror:
    """A threaded HTTP server serving ``folder``, with Range support and injected faults."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[tuple[str, str | None]] = []  # (file name, Range header)
        self.truncate: set[str] = set()  # files whose next reply stops halfway (once each)
        self.busy: set[str] = set()  # files whose next request gets 503 (once each)
        self.delay = 0.0
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append((name, self.headers.get("Range")))
                time.sleep(mirror.delay)
                path = mirror.folder / name
                if name in mirror.busy:
                    mirror.busy.discard(name)
                    self.send_error(503)
                    return
                if not path.is_file():
                    self.send_error(404)
                    return
                body, start = path.read_bytes(), 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in mirror.truncate:
                    mirror.truncate.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    return  # HTTP/1.0: the connection closes short of Content-Length
                self.wfile.write(body[start:])

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def names(self) -> list[str]:
        return [name for name, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_internet(request, monkeypatch, tmp_path):
    """Every test: a cache in tmp, no retry waits, and a mirror that is never the internet."""
    if "data_dir" in request.fixturenames:  # find the shared data before AEKIT_DATA changes
        request.getfixturevalue("data_dir")
    monkeypatch.setenv("AEKIT_MIRROR", "http://127.0.0.1:9/")  # port 9: nothing listens
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("AEKIT_OFFLINE", raising=False)
    monkeypatch.delenv("AEKIT_PROGRESS", raising=False)
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))


@pytest.fixture
def served(tmp_path, monkeypatch) -> Iterator[tuple[Mirror, np.ndarray]]:
    """A mirror of a tiny synthetic MNIST (120 train, 10 test images); AEKIT_MIRROR points to it."""
    folder = tmp_path / "served"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
    files = {
        TRAIN_IMAGES: _idx(2051, images),
        TRAIN_LABELS: _idx(2049, (np.arange(120) % 10).astype(np.uint8)),
        "t10k-images-idx3-ubyte.gz": _idx(2051, images[:10]),
        "t10k-labels-idx1-ubyte.gz": _idx(2049, np.arange(10, dtype=np.uint8)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    monkeypatch.setitem(download.MD5, "mnist", md5)
    mirror = Mirror(folder)
    monkeypatch.setenv("AEKIT_MIRROR", mirror.url)
    yield mirror, images
    mirror.close()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# ---------------------------------------------------------------- the md5 table and mirrors


def test_md5_table_matches_the_shared_md5sums(data_dir):
    listed = {}
    for line in (data_dir / "MD5SUMS").read_text().splitlines():
        digest, path = line.split()
        listed[path.removeprefix("./")] = digest
    for name, files in download.MD5.items():
        for file, digest in files.items():
            assert listed[f"{name}/{file}"] == digest


def test_mirror_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("AEKIT_MIRROR")
    assert download.mirrors("mnist")[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert download.mirrors("fashion-mnist") == [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    ]
    monkeypatch.setenv("AEKIT_MIRROR", "http://a/{name}, http://b/x/")
    assert download.mirrors("fashion-mnist") == ["http://a/fashion-mnist/", "http://b/x/"]
    assert download.mirrors("mnist", mirror="http://c") == ["http://c/"]
    assert download.mirrors("mnist", mirror=str(tmp_path)) == [tmp_path.as_uri() + "/"]


def test_cache_dir_is_aekit_data_else_the_user_cache(monkeypatch, tmp_path):
    assert download.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("AEKIT_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir() == tmp_path / "xdg" / "aekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert download.cache_dir() == Path.home() / ".cache" / "aekit"


# ---------------------------------------------------------------- downloading and the cache


def test_fresh_download_then_the_cache_serves_it(served, tmp_path):
    mirror, images = served
    ds = load_dataset("mnist", limit=50)
    assert np.array_equal(ds.X, images[:50].reshape(50, 784).astype(np.float32))
    assert ds.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert sorted(mirror.names()) == [TRAIN_IMAGES, TRAIN_LABELS]  # the train split only
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir() if not p.name.startswith(".")) == sorted(
        [TRAIN_IMAGES, TRAIN_LABELS]
    )
    again = load_dataset("mnist", limit=50)
    assert np.array_equal(again.X, ds.X) and len(mirror.requests) == 2  # no new request
    assert load_dataset("mnist", split="test").n_samples == 10
    assert len(mirror.requests) == 4


def test_real_mnist_from_a_local_mirror(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "real"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, folder / name)
    mirror = Mirror(folder)
    try:
        monkeypatch.setenv("AEKIT_MIRROR", mirror.url)
        ds = load_dataset("mnist", split="test")  # the real md5 table, not a patched one
        want = load_dataset("mnist", data_dir=data_dir, split="test")
        assert np.array_equal(ds.X, want.X) and np.array_equal(ds.labels, want.labels)
        assert len(mirror.requests) == 2
    finally:
        mirror.close()


def test_data_dir_with_the_files_downloads_nothing(served, tmp_path):
    mirror, images = served
    mine = tmp_path / "mine" / "mnist"
    mine.mkdir(parents=True)
    for name in (TRAIN_IMAGES, TRAIN_LABELS):
        shutil.copy(mirror.folder / name, mine / name)
    assert load_dataset("mnist", data_dir=tmp_path / "mine").n_samples == 120
    assert mirror.requests == [] and not (tmp_path / "cache").exists()


def test_data_dir_without_the_files_is_downloaded_into(served, tmp_path):
    mirror, _ = served
    ds = load_dataset("mnist", data_dir=tmp_path / "mine", split="test")
    assert ds.n_samples == 10 and (tmp_path / "mine/mnist/t10k-images-idx3-ubyte.gz").is_file()
    assert not (tmp_path / "cache").exists()


def test_truncated_reply_is_resumed_with_a_range_request(served, tmp_path):
    mirror, images = served
    mirror.truncate.add(TRAIN_IMAGES)
    ds = load_dataset("mnist")
    assert np.array_equal(ds.X, images.reshape(120, 784).astype(np.float32))
    tries = [rng for name, rng in mirror.requests if name == TRAIN_IMAGES]
    half = (mirror.folder / TRAIN_IMAGES).stat().st_size // 2
    assert tries == [None, f"bytes={half}-"]


def test_server_error_is_retried(served):
    mirror, _ = served
    mirror.busy.add(TRAIN_LABELS)
    assert load_dataset("mnist").n_samples == 120
    assert mirror.names().count(TRAIN_LABELS) == 2


def test_part_file_of_an_earlier_run_is_resumed(served, tmp_path):
    mirror, _ = served
    cached = tmp_path / "cache" / "mnist"
    cached.mkdir(parents=True)
    body = (mirror.folder / TRAIN_IMAGES).read_bytes()
    (cached / f"{TRAIN_IMAGES}.part").write_bytes(body[:100])
    download.fetch_idx("mnist", split="train")
    assert (cached / TRAIN_IMAGES).read_bytes() == body
    assert (TRAIN_IMAGES, "bytes=100-") in mirror.requests
    assert not list(cached.glob("*.part"))


def test_stale_part_file_is_fetched_again_from_the_start(served, tmp_path):
    mirror, _ = served
    cached = tmp_path / "cache" / "mnist"
    cached.mkdir(parents=True)
    body = (mirror.folder / TRAIN_IMAGES).read_bytes()
    (cached / f"{TRAIN_IMAGES}.part").write_bytes(b"x" * 100)  # not this file's first bytes
    download.fetch_idx("mnist", split="train")
    assert (cached / TRAIN_IMAGES).read_bytes() == body
    assert [r for n, r in mirror.requests if n == TRAIN_IMAGES] == ["bytes=100-", None]


def test_concurrent_downloads_share_one_fetch(served, tmp_path):
    mirror, images = served
    mirror.delay = 0.2
    results: list[object] = []

    def load() -> None:
        try:
            results.append(load_dataset("mnist").X)
        except Exception as e:  # reported by the assertion below
            results.append(e)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for X in results:
        assert isinstance(X, np.ndarray) and np.array_equal(X, images.reshape(120, -1))
    assert sorted(mirror.names()) == [TRAIN_IMAGES, TRAIN_LABELS]  # each file once


def test_progress_bar_when_asked(served, capsys):
    download.fetch_idx("mnist", split="test", progress=True)
    err = capsys.readouterr().err
    assert "aekit: downloading mnist t10k-images-idx3-ubyte.gz into" in err
    assert "t10k-labels-idx1-ubyte.gz.part" in err  # the tqdm bar's description


def test_a_local_folder_works_as_a_mirror(served, monkeypatch):
    mirror, _ = served
    monkeypatch.setenv("AEKIT_MIRROR", str(mirror.folder))
    assert load_dataset("mnist", split="test").n_samples == 10 and mirror.requests == []


# ---------------------------------------------------------------- failures: one clear line


def test_corrupt_file_is_refused_and_not_kept(served, tmp_path):
    mirror, _ = served
    path = mirror.folder / TRAIN_IMAGES
    body = bytearray(path.read_bytes())
    body[200] ^= 0xFF
    path.write_bytes(bytes(body))
    with pytest.raises(DataError) as exc:
        load_dataset("mnist")
    line = _one_line(exc)
    assert "refused" in line and "md5" in line and TRAIN_IMAGES in line
    cached = tmp_path / "cache" / "mnist"
    assert not (cached / TRAIN_IMAGES).exists() and not list(cached.glob("*.part"))


def test_missing_file_on_the_mirror_is_one_line(served):
    mirror, _ = served
    (mirror.folder / TRAIN_LABELS).unlink()
    with pytest.raises(DataError) as exc:
        load_dataset("mnist")
    line = _one_line(exc)
    assert "HTTP 404" in line and f"{mirror.url}{TRAIN_LABELS}" in line and "AEKIT_MIRROR" in line


def test_server_down_is_one_line(monkeypatch):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AEKIT_MIRROR", f"http://127.0.0.1:{port}/")
    with pytest.raises(DataError) as exc:
        load_dataset("mnist")
    line = _one_line(exc)
    assert line.startswith("cannot download train-images-idx3-ubyte.gz into")
    assert f"127.0.0.1:{port}" in line and "refused" in line.lower()
    assert not (download.cache_dir() / "mnist").exists()  # no empty folder left behind


def test_offline_keeps_the_old_message(served, monkeypatch, tmp_path):
    mirror, _ = served
    monkeypatch.setenv("AEKIT_OFFLINE", "1")
    monkeypatch.delenv("AEKIT_DATA")
    with pytest.raises(DataError, match="no data dir is set.*--data-dir.*AEKIT_DATA"):
        load_dataset("mnist")
    with pytest.raises(DataError, match=r"no mnist folder at .*--data-dir"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataError, match=r"missing IDX file .*train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path)
    assert mirror.requests == []


def test_unwritable_folder_is_one_line(served, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(AekitError) as exc:
        load_dataset("mnist", data_dir=blocker)
    assert str(blocker) in _one_line(exc)


# ---------------------------------------------------------------- the command line


def test_cli_train_downloads_from_the_mirror_and_trains(served, tmp_path, capsys):
    mirror, _ = served
    out = tmp_path / "run"
    argv = ["train", "--data", "mnist", "--limit", "100", "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--hidden", "32", "--latent-dim", "4", "--quiet"]) == 0
    assert (out / "model.safetensors").is_file()
    assert sorted(mirror.names()) == [TRAIN_IMAGES, TRAIN_LABELS]
    assert (tmp_path / "cache" / "mnist" / TRAIN_IMAGES).is_file()
    assert "aekit: downloading mnist" in capsys.readouterr().err
