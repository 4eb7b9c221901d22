"""The aekit command, called in process through main(argv) (and once as a real process)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CUDA, spawn_aekit
from safetensors.torch import load_file

import aekit
from aekit.cli import main
from aekit.errors import ModelFileError

QUICK = ["--limit", "300", "--epochs", "2", "--hidden", "32", "--latent-dim", "4", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    return out


def test_train_writes_a_complete_run_directory(run_dir, capsys):
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "loss.png",
        "reconstructions.png",
    } <= names
    assert not any(n.endswith(".tmp") for n in names)
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["aekit_version"] == aekit.__version__
    assert cfg["model"]["name"] == "dense"
    assert cfg["model"]["config"]["hidden"] == [32] and cfg["model"]["config"]["latent_dim"] == 4
    # "auto" is linear where the model starts from PCA (issue 16), sigmoid on [0, 1] otherwise
    assert cfg["model"]["config"]["output_activation"] == "identity"
    assert cfg["init"]["kind"] == "pca"
    assert cfg["scaler"]["kind"] == "image"
    assert cfg["training"]["epochs"] == 2 and cfg["data"]["n_train"] == 270
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all("val_loss" in r for r in rows)


def test_train_prints_where_the_run_went(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    assert f"run written to {out}" in capsys.readouterr().out


def test_eval_json(run_dir, capsys):
    assert main(["eval", str(run_dir), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    # the run's 30 held-out validation rows (10% of --limit 300), not the rows it trained on
    assert metrics["split"] == "val" and metrics["held_out"] is True
    assert metrics["n_samples"] == 30 and metrics["units"] == "data"
    # digits are 0..16: errors in those units, and in the image scaler's [0, 1] (x 1/16)
    assert 0 < metrics["mse"] < 0.2 * 16**2 and 0 < metrics["mae"] < 0.5 * 16
    assert metrics["scaled_mse"] == pytest.approx(metrics["mse"] / 16**2, rel=1e-4)
    assert 5 < metrics["psnr"] < 60


def test_eval_matches_python_reconstruction(run_dir):
    from aekit.data import load_dataset, train_val_split

    model = aekit.load(run_dir)
    _, raw = train_val_split(load_dataset("digits", limit=300).X, 0.1, 0)  # training's split
    X = model.scaler.transform(raw)
    scaled_mse = float(np.mean((model.reconstruct_scaled(X) - X) ** 2))
    mse = float(np.mean((model.reconstruct_numpy(raw) - raw) ** 2))
    assert aekit.evaluate(run_dir)["scaled_mse"] == pytest.approx(scaled_mse, rel=1e-5)
    assert aekit.evaluate(run_dir)["mse"] == pytest.approx(mse, rel=1e-5)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_encode_and_reconstruct_write_arrays(run_dir, tmp_path, suffix, capsys):
    z_path, r_path = tmp_path / f"z{suffix}", tmp_path / f"r{suffix}"
    assert main(["encode", str(run_dir), "--limit", "50", "--out", str(z_path)]) == 0
    assert main(["reconstruct", str(run_dir), "--limit", "50", "--out", str(r_path)]) == 0
    load = np.load if suffix == ".npy" else (lambda p: np.loadtxt(p, delimiter=","))
    Z, R = load(z_path), load(r_path)
    assert Z.shape == (50, 4) and R.shape == (50, 64)
    model = aekit.load(run_dir)
    from aekit.data import load_dataset

    X = load_dataset("digits", limit=50).X
    # a loaded model takes raw data through its stored scaler, as the commands do
    np.testing.assert_allclose(Z, model.encode_numpy(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(Z, model.encode_scaled(model.scaler.transform(X)), rtol=1e-6)
    np.testing.assert_allclose(R, model.reconstruct_numpy(X), rtol=1e-5, atol=1e-5)
    # back in digits' units (0..16; the default output is linear, so a little outside)
    assert -8 < R.min() and R.max() < 24
    assert R.max() > 1.5  # not the scaled space


def test_every_command_has_help_with_an_example(capsys):
    for cmd in ("train", "eval", "encode", "reconstruct"):
        assert main([cmd, "--help"]) == 0
        assert "example:" in capsys.readouterr().out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aekit: error:")
    return lines[0]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("1,2,3\n4,nan,6\n", "non-finite"),
        ("1,2,3\n4,5\n", "line 2"),
        ("1,2,3\n4,abc,6\n", "line 2, column 2"),
        ("", "empty"),
    ],
)
def test_bad_data_file_is_one_line_exit_2_nothing_written(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--out", str(out), "--quiet"]) == 2
    assert fragment in _error_line(capsys)
    assert not out.exists()


def test_missing_file_and_unknown_dataset(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "no such data file" in _error_line(capsys)
    assert main(["train", "--data", "cifar", "--out", str(tmp_path / "r")]) == 2
    _error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_mnist_without_data_dir_says_where_to_point(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AEKIT_DATA", raising=False)
    monkeypatch.setenv("AEKIT_OFFLINE", "1")  # offline, a missing data set says where to point
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "r")]) == 2
    line = _error_line(capsys)
    assert "--data-dir" in line and "AEKIT_DATA" in line


def test_wrong_width_data_is_refused(run_dir, tmp_path, capsys):
    path = tmp_path / "narrow.npy"
    np.save(path, np.random.default_rng(0).random((10, 30)))
    out = tmp_path / "z.npy"
    for cmd in (["eval"], ["encode", "--out", str(out)], ["reconstruct", "--out", str(out)]):
        assert main([cmd[0], str(run_dir), "--data", str(path), *cmd[1:]]) == 2
        assert "30 features but the model expects 64" in _error_line(capsys)
    assert not out.exists()


def test_bad_output_suffix_writes_nothing(run_dir, tmp_path, capsys):
    out = tmp_path / "z.txt"
    assert main(["encode", str(run_dir), "--out", str(out)]) == 2
    assert ".npy or .csv" in _error_line(capsys)
    assert not out.exists()


def test_usage_errors_exit_2(capsys):
    assert main(["train", "--model", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["train", "--hidden", "a,b"]) == 2
    assert main([]) == 2


class _Exploit:
    """Unpickling this runs a command: exactly what aekit.load must never do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_and_pt_files_are_refused_without_running_them(run_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_text((run_dir / "config.json").read_text())
    (evil / "model.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    pt = tmp_path / "model.pt"
    torch.save({"x": _Exploit(marker)}, pt)
    for target in (evil, evil / "model.safetensors", pt):
        with pytest.raises(ModelFileError, match="pickle"):
            aekit.load(target)
        assert main(["eval", str(target)]) == 2
        assert "arbitrary code" in _error_line(capsys)
    assert not marker.exists()


def test_missing_run_and_corrupt_weights(run_dir, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "no such run" in _error_line(capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((run_dir / "config.json").read_text())
    data = (run_dir / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert main(["eval", str(broken)]) == 2
    assert "corrupt" in _error_line(capsys)


def test_resume_extends_a_run_to_the_same_weights(tmp_path):
    args = ["train", *QUICK[:2], "--hidden", "32", "--latent-dim", "4", "--quiet", "--seed", "7"]
    assert main([*args, "--epochs", "5", "--out", str(tmp_path / "full")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "part")]) == 0
    assert (
        main(["train", "--resume", "--epochs", "5", "--out", str(tmp_path / "part"), "--quiet"])
        == 0
    )
    _assert_same_run(tmp_path / "full", tmp_path / "part", epochs=5)


def _assert_same_run(a: Path, b: Path, epochs: int) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ca, cb = load_file(a / "checkpoint.safetensors"), load_file(b / "checkpoint.safetensors")
    assert ca.keys() == cb.keys() and all(torch.equal(ca[k], cb[k]) for k in ca)
    ra = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]
    assert len(ra) == len(rb) == epochs
    assert [r["train_loss"] for r in ra] == [r["train_loss"] for r in rb]


ENGINES = [
    pytest.param([], id="torch-cpu"),
    pytest.param(
        ["--engine", "numpy", "--activation", "sigmoid", "--latent-activation", "sigmoid"],
        id="numpy",
    ),
    pytest.param(["--device", "cuda"], id="torch-cuda", marks=CUDA),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path, engine):
    """A real process killed with SIGKILL mid-training, then resumed, ends bit-identical."""
    args = [
        "train",
        "--hidden",
        "256",
        "--latent-dim",
        "8",
        "--epochs",
        "40",
        "--quiet",
        "--batch-size",
        "32",
        *engine,
    ]
    killed = tmp_path / "killed"
    proc = spawn_aekit([*args, "--out", str(killed)])
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(metrics.read_text().splitlines())
    assert 3 <= done < 40
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed process ran with one thread: same kernels, same bits
    device = engine[engine.index("--device") :][:2] if "--device" in engine else []
    try:
        assert main(["train", "--resume", "--out", str(killed), "--quiet", *device]) == 0
        assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    finally:
        torch.set_num_threads(threads)
    _assert_same_run(tmp_path / "clean", killed, epochs=40)


def test_numpy_engine_trains_and_resumes_exactly(tmp_path):
    common = [
        "train",
        "--engine",
        "numpy",
        "--hidden",
        "",
        "--latent-activation",
        "sigmoid",
        "--limit",
        "400",
        "--batch-size",
        "64",
        "--quiet",
    ]
    assert main([*common, "--epochs", "4", "--out", str(tmp_path / "full")]) == 0
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "half")]) == 0
    assert (
        main(["train", "--resume", "--quiet", "--epochs", "4", "--out", str(tmp_path / "half")])
        == 0
    )
    assert json.loads((tmp_path / "full" / "config.json").read_text())["training"]["engine"] == (
        "numpy"
    )
    _assert_same_run(tmp_path / "full", tmp_path / "half", epochs=4)


def test_numpy_engine_trains_the_default_dense_model(tmp_path):
    """With no --latent-activation the code layer takes the hidden layers' activation."""
    out = tmp_path / "r"
    assert main(["train", "--engine", "numpy", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    model = json.loads((out / "config.json").read_text())["model"]["config"]
    assert model["activation"] == model["latent_activation"] == "relu"


def test_numpy_engine_refuses_two_activations_before_writing(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", "--engine", "numpy", "--latent-activation", "identity", "--out", str(out)]
    assert main([*argv, "--epochs", "1"]) == 2
    assert "one activation" in _error_line(capsys)
    assert not out.exists()


# ---- issue 21: held-out rows, --split, --device/--threads everywhere --------------------------


def test_eval_scores_the_held_out_rows_of_a_file_of_ones_own(tmp_path, capsys):
    """Before: a file's eval scored split "all", the 270 training rows included."""
    from sklearn.datasets import load_digits

    rows = load_digits().data.astype(np.float32)
    path, other = tmp_path / "x.npy", tmp_path / "other.npy"
    np.save(path, rows[:300])
    np.save(other, rows[300:350])
    out = tmp_path / "r"
    argv = ["train", "--data", str(path), "--hidden", "16", "--latent-dim", "3", "--epochs", "2"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    assert "split: val (30 held-out validation rows of x.npy)" in capsys.readouterr().out
    assert main(["eval", str(out), "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert (held["split"], held["held_out"], held["n_samples"]) == ("val", True, 30)
    # the same rows as training held out: summary.json's validation MSE, from train's own split
    summary = json.loads((out / "summary.json").read_text())["validation"]
    assert held["mse"] == pytest.approx(summary["mse"], rel=1e-5)
    for split, n in (("all", 300), ("train", 270), ("val", 30)):  # the file holds 300 rows
        assert main(["eval", str(out), "--split", split, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert (got["split"], got["n_samples"], got["held_out"]) == (split, n, split == "val")
    assert main(["eval", str(out), "--split", "test"]) == 2  # a file has no test split
    assert "no test split" in _error_line(capsys)
    # other data: scored whole, and said so; the run's splits mean nothing there
    assert main(["eval", str(out), "--data", str(other)]) == 0
    assert "all 50 rows of other.npy, other data than the run's own" in capsys.readouterr().out
    assert main(["eval", str(out), "--data", str(other), "--split", "val"]) == 2
    assert "other data" in _error_line(capsys)
    # the run's own file, named: still its held-out rows
    assert main(["eval", str(out), "--data", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 30
    np.save(path, rows[:300] + 1)  # changed since training: its validation rows are gone
    assert main(["eval", str(out)]) == 2
    assert "has changed since the run was trained" in _error_line(capsys)
    assert main(["eval", str(out), "--split", "all", "--json"]) == 0


def test_eval_of_an_mnist_run_scores_its_test_split(tmp_path, capsys, data_dir):
    out = tmp_path / "r"
    argv = ["train", "--data", "mnist", "--data-dir", str(data_dir), "--limit", "200"]
    assert main([*argv, "--hidden", "", "--latent-dim", "2", "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", str(out), "--limit", "50", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["split"], got["held_out"], got["n_samples"]) == ("test", True, 50)
    assert main(["eval", str(out), "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 20  # 10% of the 200 it read


def test_every_command_takes_device_and_threads(tmp_path, capsys):
    """README: every command takes --device and --threads (report and export refused them)."""
    from aekit.cli import build_parser

    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    for name, parser in sub.choices.items():
        flags = {f for a in parser._actions for f in a.option_strings}
        assert {"--device", "--threads"} <= flags, name
    out = tmp_path / "r"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    page = tmp_path / "p.html"
    assert main(["report", str(out), "--out", str(page), "--device", "cpu", "--threads", "1"]) == 0
    assert "30 held-out validation rows of digits" in page.read_text()
    assert main(["report", str(out), "--out", str(page), "--split", "train"]) == 0
    assert "270 training rows of digits" in page.read_text()
    if not torch.cuda.is_available():
        capsys.readouterr()
        onnx_out = str(tmp_path / "m.onnx")
        assert main(["export", str(out), "--out", onnx_out, "--device", "cuda"]) == 2
        assert "CUDA is not available" in _error_line(capsys)


def test_eval_of_a_run_trained_on_an_array_needs_data(tmp_path, digits01):
    from aekit.errors import DataError

    run = aekit.train(digits01, out=tmp_path / "r", epochs=1)
    with pytest.raises(DataError, match="pass --data"):
        aekit.evaluate(run.out)
    got = aekit.evaluate(run.out, digits01[:40])  # other data: scored whole, overlap unknown
    assert (got["split"], got["held_out"], got["n_samples"]) == ("all", None, 40)


def test_output_piped_into_a_reader_that_stopped_ends_quietly(run_dir):
    """``aekit eval RUN | head -1``: the reader is gone before aekit writes; no error line."""
    import subprocess
    import sys

    from conftest import SRC

    proc = subprocess.Popen(
        [sys.executable, "-m", "aekit", "eval", str(run_dir), "--threads", "1"],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # as head does after its line: every write of aekit's now fails
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "error" not in err and "Traceback" not in err and "Exception" not in err, err


def test_quiet_train_says_only_where_the_run_went(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["train", *QUICK, "--init", "pca", "--out", str(out)]) == 0
    quiet = capsys.readouterr().out.splitlines()
    argv = [a for a in QUICK if a != "--quiet"]
    assert main(["train", *argv, "--init", "pca", "--out", str(tmp_path / "loud")]) == 0
    loud = capsys.readouterr().out
    assert quiet == [f"run written to {out}"], quiet
    assert "trained 2 epochs" in loud and "next: aekit eval" in loud
