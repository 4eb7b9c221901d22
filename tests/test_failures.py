"""The failures a user hits: first-epoch interruptions, two writers, operating-system errors,
resume with changed flags or moved data, users' own images, threads. Each is one clear line
(exit 2; 1 for a full disk) with the previous files intact."""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import spawn_aekit
from safetensors.torch import load_file

import aekit
from aekit.cli import main
from aekit.errors import DiskFullError, FileSystemError, RunLockedError
from aekit.io import files
from aekit.io.rundir import RunLock

QUICK = ["--limit", "200", "--hidden", "16", "--latent-dim", "3", "--quiet", "--epochs", "2"]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_run_killed_in_its_first_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["train", "--hidden", "64", "--latent-dim", "4", "--epochs", "2", "--quiet"]
    args += ["--batch-size", "1", "--limit", "600", "--threads", "1"]
    killed = tmp_path / "killed"
    proc = spawn_aekit([*args, "--out", str(killed)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "checkpoint.safetensors").exists():
            break
        time.sleep(0.002)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.jsonl").exists(), "the first epoch had already finished"
    assert not (killed / "model.safetensors").exists()
    assert main(["eval", str(killed)]) == 2  # nothing trained yet: refused, not scored
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--resume", "--out", str(killed), "--quiet"]) == 0
        assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    finally:
        torch.set_num_threads(threads)
    a, b = load_file(killed / "model.safetensors"), load_file(tmp_path / "clean/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_writer_is_refused_and_the_first_run_is_untouched(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    before = _snapshot(out)
    with RunLock(out):  # another process writing the run
        assert main(["train", "--resume", "--epochs", "4", "--out", str(out), "--quiet"]) == 2
        assert "being written by another aekit process" in _error(capsys)
        with pytest.raises(RunLockedError):
            aekit.train(out=out, resume=True, epochs=4)
    assert _snapshot(out) == before
    # a lock left by a dead process holds nothing: the next writer goes ahead
    assert (out / ".lock").exists()
    assert main(["train", "--resume", "--epochs", "3", "--out", str(out), "--quiet"]) == 0


def test_out_that_is_a_file_below_a_file_or_empty_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "f.txt"
    a_file.write_text("keep me")
    for out, fragment in (
        (str(a_file), "is a file"),
        (str(a_file / "run"), "cannot make the folder"),
        ("", "--out must name"),
    ):
        assert main(["train", *QUICK, "--out", out]) == 2
        assert fragment in _error(capsys)
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize(
    "code, exit_code, cls",
    [(errno.ENOSPC, 1, DiskFullError), (errno.EACCES, 2, FileSystemError)],
)
def test_a_write_that_fails_leaves_the_previous_files_intact(
    tmp_path, capsys, monkeypatch, code, exit_code, cls
):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    before = _snapshot(out)
    real = files.os.replace

    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "replace", failing_replace)
    argv = ["train", "--resume", "--epochs", "4", "--out", str(out), "--quiet"]
    assert main(argv) == exit_code
    line = _error(capsys)
    assert str(out) in line and os.strerror(code) in line
    with pytest.raises(cls):
        aekit.train(out=out, resume=True, epochs=4)
    monkeypatch.setattr(files.os, "replace", real)
    assert _snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no debris


def test_encode_to_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["encode", str(out), "--out", str(blocker / "z.npy")]) == 2
    assert "cannot" in _error(capsys)


def test_resume_applies_safe_changes_and_refuses_the_others(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    for flags, fragment in (
        (["--hidden", "32"], "cannot change hidden"),
        (["--model", "tied"], "cannot change model"),
        (["--batch-size", "7"], "cannot change batch_size"),
        (["--limit", "100"], "cannot change limit"),
    ):
        assert main(["train", "--resume", "--out", str(out), *flags, "--quiet"]) == 2
        assert fragment in _error(capsys)
    argv = ["train", "--resume", "--out", str(out), "--epochs", "3", "--lr", "0.002"]
    assert main([*argv, "--hidden", "16", "--quiet"]) == 0  # equal to the run's: fine
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["epochs"] == 3 and training["lr"] == 0.002


def test_a_run_finds_moved_data_and_refuses_different_data(tmp_path, capsys, digits01):
    data = tmp_path / "x.npy"
    np.save(data, digits01)
    out = tmp_path / "r"
    assert main(["train", "--data", str(data), *QUICK, "--out", str(out)]) == 0
    stored = json.loads((out / "config.json").read_text())["data"]["source"]
    assert Path(stored).is_absolute()
    moved = tmp_path / "elsewhere" / "x.npy"
    moved.parent.mkdir()
    data.rename(moved)
    argv = ["train", "--resume", "--out", str(out), "--epochs", "3", "--quiet"]
    assert main(argv) == 2
    assert "--data" in _error(capsys)  # says how to point at the moved data
    assert main([*argv, "--data", str(moved)]) == 0
    np.save(moved, digits01[::-1])  # other values under the same name
    assert main([*argv[:-2], "4", "--quiet", "--data", str(moved)]) == 2
    assert "not the data" in _error(capsys)


@pytest.mark.parametrize("layout", ["NHW", "NCHW", "flat"])
def test_conv_models_train_on_a_users_images(tmp_path, digits01, layout):
    images = (digits01.reshape(-1, 8, 8) * 255).astype(np.uint8)
    extra = []
    if layout == "NCHW":
        images = images[:, None]
    elif layout == "flat":
        images = images.reshape(len(images), -1)
        extra = ["--image-shape", "1,8,8"]
    path = tmp_path / "imgs.npy"
    np.save(path, images)
    out = tmp_path / "r"
    argv = ["train", "--data", str(path), "--model", "conv", "--channels", "4,8", *extra]
    assert main([*argv, "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["config"]["image_shape"] == [1, 8, 8]
    assert cfg["scaler"]["kind"] == "image"  # uint8 images are scaled by 255
    assert main(["eval", str(out), "--json"]) == 0


def test_a_wrong_image_shape_is_one_line(tmp_path, capsys, digits01):
    path = tmp_path / "imgs.npy"
    np.save(path, digits01.reshape(-1, 8, 8))
    argv = ["train", "--data", str(path), "--model", "conv", "--image-shape", "1,4,16"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "image_shape" in _error(capsys)
    assert not (tmp_path / "r").exists()


def test_threads_are_set_and_checked(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["train", *QUICK, "--threads", "1", "--out", str(tmp_path / "r")]) == 0
        assert torch.get_num_threads() == 1
        assert main(["train", *QUICK, "--threads", "0", "--out", str(tmp_path / "s")]) == 2
        assert "--threads" in _error(capsys)
    finally:
        torch.set_num_threads(before)


def test_eval_says_what_it_scored(tmp_path, capsys):
    out = tmp_path / "r"  # (random start: a kept PCA start would be refitted on the val rows)
    assert main(["train", *QUICK, "--init", "random", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # issue 21: the run's held-out rows, 10% of the 200 it read (it scored all 1,797 before)
    assert result["data"] == "digits" and result["split"] == "val" and result["held_out"]
    assert result["n_samples"] == 20 and result["rows"] == "20 held-out validation rows of digits"
    assert main(["eval", str(out), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "all" and not result["held_out"]
    assert result["n_samples"] == 1797  # the whole source: --limit was for training


def test_a_loaded_model_scales_raw_data_as_the_commands_do(tmp_path):
    table = np.random.default_rng(0).normal(50, 20, size=(300, 6)).astype(np.float32)
    run = aekit.train(table, out=tmp_path / "r", epochs=2)
    model = aekit.load(run.out)
    Z = model.encode_numpy(table)
    np.testing.assert_allclose(Z, model.encode_scaled(model.scaler.transform(table)), rtol=1e-6)
    X_hat = model.reconstruct_numpy(table)
    assert abs(X_hat.mean() - table.mean()) < 10  # in the data's units, not in [0, 1]
