"""The fault-injection suite: runs killed at random moments, interrupted, starved of disk or
permissions at every file write, raced by a second writer, fed corrupt files and fuzzed input.

Marked ``faults`` (``pytest -m faults`` runs it alone); it is part of the default suite and of
CI. Its counts are printed at the end of the session (see ``tests/conftest.py``).
"""

from __future__ import annotations

import collections
import errno
import json
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import spawn_aekit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from aekit.cli import main
from aekit.data import load_dataset
from aekit.errors import DataError
from aekit.io import checkpoint as ckpt
from aekit.io import files

pytestmark = pytest.mark.faults
COUNTS: collections.Counter = collections.Counter()  # printed at the end of the session

BASE = ["--hidden", "32", "--latent-dim", "4", "--limit", "400", "--quiet", "--threads", "1"]
KILL_ARGS = ["train", *BASE, "--epochs", "4", "--batch-size", "4"]
WRITE_ARGS = ["train", *BASE, "--epochs", "2", "--batch-size", "64"]


def _clean(args: list[str], out: Path) -> Path:
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("clean")
    return {"kill": _clean(KILL_ARGS, base / "kill"), "write": _clean(WRITE_ARGS, base / "write")}


def _same_run(a: Path, b: Path) -> None:
    for name in (ckpt.MODEL_FILE, ckpt.CHECKPOINT_FILE):
        ta, tb = load_file(a / name), load_file(b / name)
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), name
    la = [json.loads(x)["train_loss"] for x in (a / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["train_loss"] for x in (b / "metrics.jsonl").read_text().splitlines()]
    assert la == lb


def _continue(out: Path, args: list[str]) -> None:
    """What the messages tell a user: resume a run that has a config, else train anew."""
    if (out / ckpt.CONFIG_FILE).exists():
        assert main(["train", "--resume", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    else:
        assert main([*args, "--out", str(out)]) == 0


def _epochs_done(out: Path) -> int:
    metrics = out / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.exists() else 0


@pytest.mark.parametrize("trial", range(8))
def test_sigkill_at_a_random_moment_resumes_bit_identical(trial, tmp_path, clean_runs):
    out = tmp_path / "run"
    proc = spawn_aekit([*KILL_ARGS, "--out", str(out)])
    # trials 0 and 1 kill while the run starts (before its first checkpoint), the others at a
    # random moment of its training or just after it
    marker = out / (".lock" if trial < 2 else ckpt.CHECKPOINT_FILE)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(random.Random(trial).uniform(0.0, 0.2 if trial < 2 else 0.35))
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _epochs_done(out)
    where = "after the end" if finished else f"in epoch {done + 1}" if done < 4 else "at the end"
    if not (out / ckpt.CHECKPOINT_FILE).exists() and not finished:
        where = "before the first checkpoint"
    COUNTS[f"SIGKILL {where}"] += 1
    _continue(out, KILL_ARGS)
    _same_run(clean_runs["kill"], out)
    COUNTS["SIGKILL: resumed bit-identical"] += 1


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_cleanly_and_say_how_to_resume(sig, code, tmp_path, clean_runs):
    out = tmp_path / "run"
    proc = spawn_aekit([*KILL_ARGS, "--out", str(out)], capture_stderr=True)
    deadline = time.monotonic() + 120
    while _epochs_done(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "training finished before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"aekit train --resume --out {out}" in lines[0], lines
    assert not (out / ".lock").exists() or _lock_is_free(out)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    _continue(out, KILL_ARGS)
    _same_run(clean_runs["kill"], out)
    COUNTS[f"{signal.Signals(sig).name}: clean stop, resumed bit-identical"] += 1


def _lock_is_free(out: Path) -> bool:
    import fcntl

    fd = os.open(out / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _valid_files(out: Path) -> None:
    """Every file of the run is whole: JSON parses, safetensors verify, no temporary debris."""
    if not out.exists():  # failed before anything was kept: the folder was cleaned up
        COUNTS["failed write: nothing kept, folder removed"] += 1
        return
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    for p in out.iterdir():
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            [json.loads(line) for line in p.read_text().splitlines()]
        elif p.suffix == ".safetensors":
            ckpt.read_tensors(p)


@pytest.mark.parametrize("code, exit_code", [(errno.ENOSPC, 1), (errno.EACCES, 2)])
def test_a_failure_at_every_file_write_keeps_the_run_whole(
    code, exit_code, tmp_path, clean_runs, monkeypatch, capsys
):
    real = os.replace
    calls = {"n": 0, "fail_at": -1}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise OSError(code, os.strerror(code))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    _clean(WRITE_ARGS, tmp_path / "count")
    writes = calls["n"]
    assert writes >= 8  # config, checkpoints, weights, metrics, figures
    for k in range(1, writes + 1):
        out = tmp_path / f"run{k}"
        calls.update(n=0, fail_at=k)
        capsys.readouterr()
        assert main([*WRITE_ARGS, "--out", str(out)]) == exit_code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and os.strerror(code) in err[0], err
        _valid_files(out)
        calls["fail_at"] = -1
        _continue(out, WRITE_ARGS)
        _same_run(clean_runs["write"], out)
        COUNTS[f"{errno.errorcode[code]} injected at a write, run whole and resumed"] += 1


def test_two_writers_on_one_run(tmp_path, clean_runs):
    out = tmp_path / "run"
    procs = [spawn_aekit([*KILL_ARGS, "--out", str(out)], capture_stderr=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "being written by another" in loser or "already holds a run" in loser
    _same_run(clean_runs["kill"], out)
    COUNTS["two writers: one refused, the run intact"] += 1


CORRUPTIONS = {
    "truncated to 0 bytes": lambda b: b[:0],
    "truncated to 8 bytes": lambda b: b[:8],
    "truncated to half": lambda b: b[: len(b) // 2],
    "the last bytes cut": lambda b: b[:-2],  # config.json ends "}\n": one byte would be the newline
    "a byte flipped in the middle": lambda b: _flip(b, len(b) // 2),
    "a byte flipped near the end": lambda b: _flip(b, len(b) - 3),
    "a byte flipped in the header": lambda b: _flip(b, 12),
}


def _flip(b: bytes, i: int) -> bytes:
    return b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1 :]


@pytest.mark.parametrize("name", [ckpt.MODEL_FILE, ckpt.CHECKPOINT_FILE, ckpt.CONFIG_FILE])
def test_truncated_or_corrupted_files_are_refused_in_one_line(name, tmp_path, clean_runs, capsys):
    source = clean_runs["write"]
    for what, damage in CORRUPTIONS.items():
        out = tmp_path / what.replace(" ", "-")
        shutil.copytree(source, out)
        path = out / name
        damaged = damage(path.read_bytes())
        if name == ckpt.CONFIG_FILE and what.startswith("a byte"):  # flipping may keep JSON valid
            i = len(damaged) // 2 if "middle" in what else 12 if "header" in what else -3
            damaged = damaged[:i] + b"\x00" + damaged[i + 1 :] if i >= 0 else damaged[:i] + b"\x00"
        path.write_bytes(damaged)
        argv = ["train", "--resume", "--out", str(out), "--epochs", "3", "--quiet"]
        if name != ckpt.CHECKPOINT_FILE:
            argv = ["eval", str(out)]
        capsys.readouterr()
        assert main(argv) == 2, (name, what)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("aekit: error:"), (name, what, err)
        COUNTS[f"corrupt {name} refused"] += 1


SUFFIXES = [".npy", ".npz", ".csv", ".csv.gz", ".parquet"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=600), suffix=st.sampled_from(SUFFIXES))
def test_fuzzed_data_files_load_or_raise_one_data_error(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(content)
        try:
            ds = load_dataset(path)
        except DataError as e:
            assert str(e) and "\n" not in str(e)
            COUNTS["fuzzed data files refused with one DataError"] += 1
            return
        assert ds.X.dtype == np.float32 and ds.X.ndim == 2 and np.isfinite(ds.X).all()
        COUNTS["fuzzed data files that loaded"] += 1


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet="0123456789.,-+eE naNinf\n\t;\"'", max_size=200),
    header=st.booleans(),
)
def test_fuzzed_csv_text_loads_or_raises_one_data_error(text, header):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_text(("a,b\n" if header else "") + text)
        try:
            ds = load_dataset(path)
        except DataError:
            COUNTS["fuzzed CSV texts refused with one DataError"] += 1
            return
        assert np.isfinite(ds.X).all()
        COUNTS["fuzzed CSV texts that loaded"] += 1


FLAGS = {
    "--epochs": ["0", "1", "-1", "x", "2.5"],
    "--limit": ["30", "0", "-3", "abc"],
    "--hidden": ["8", "", "0", "8,-1", "a,b"],
    "--latent-dim": ["2", "0", "-1", "q"],
    "--lr": ["0.01", "0", "-1", "nan", "inf"],
    "--batch-size": ["8", "0", "-2"],
    "--model": ["dense", "vae", "conv", "nope"],
    "--noise": ["gaussian:0.1", "mask:2", "bogus", "gaussian:x"],
    "--val-fraction": ["0.2", "1.5", "-0.1", "0"],
    "--scale": ["minmax", "standard", "bad"],
    "--data": ["digits", "nope.xyz", "missing.npy"],
    "--device": ["cpu", "auto", "gpu", "cuda:7"],
    "--threads": ["1", "0", "-4"],
    "--precision": ["fp32", "bf16", "fp8"],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picked=st.dictionaries(st.sampled_from(sorted(FLAGS)), st.integers(0, 4), max_size=5),
    command=st.sampled_from(["train", "eval", "encode", "reconstruct"]),
)
def test_fuzzed_command_lines_never_raise_and_write_nothing_on_error(picked, command):
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = [command]
        if command != "train":
            argv.append(str(Path(tmp) / "no-such-run"))
        for flag, i in picked.items():
            values = FLAGS[flag]
            argv += [flag, values[i % len(values)]]
        if command == "train":
            argv += ["--out", str(out), "--quiet", "--limit", "30", "--epochs", "1"][
                0 if "--limit" not in picked else 0 :
            ]
        else:
            argv += ["--out", str(Path(tmp) / "z.npy")] if command != "eval" else []
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        assert code in (0, 1, 2), (argv, code)
        if code == 2:
            lines = err.getvalue().strip().splitlines()
            assert lines and all(line.startswith(("aekit: error", "usage:")) for line in lines)
            assert "Traceback" not in err.getvalue()
            assert not out.exists() and not (Path(tmp) / "z.npy").exists(), argv
        COUNTS[f"fuzzed command lines, exit {code}"] += 1


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """300 grey 20 x 20 crops of scikit-image's 'camera' as PNGs: decoding them is the new
    step before a run's first checkpoint (issue 21)."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image ships the test photo")
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos") / "photos"
    folder.mkdir()
    camera, rng = skdata.camera(), np.random.default_rng(0)
    for i in range(300):
        y, x = rng.integers(0, 490, 2)
        Image.fromarray(camera[y : y + 20, x : x + 20]).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_while_images_are_decoded_reruns_to_the_same_run(trial, tmp_path, photo_folder):
    args = ["train", "--data", str(photo_folder), *BASE[:4], "--epochs", "2", "--quiet"]
    clean = tmp_path / "clean"
    assert main([*args, "--out", str(clean), "--threads", "1"]) == 0
    out = tmp_path / "run"
    proc = spawn_aekit([*args, "--out", str(out), "--threads", "1"])
    deadline = time.monotonic() + 120
    while not (out / ".lock").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(random.Random(100 + trial).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    started = (out / ckpt.CONFIG_FILE).exists()
    COUNTS[f"SIGKILL decoding images: {'after' if started else 'before'} config.json"] += 1
    _continue(out, [*args, "--threads", "1"])
    _same_run(clean, out)
    COUNTS["SIGKILL decoding images: rerun or resumed bit-identical"] += 1


# ------------------------------------------------------------------ any command, any instant

FAULT_SEED = int(os.environ.get("AEKIT_FAULT_SEED", "0"))
FAULT_COUNT = int(os.environ.get("AEKIT_FAULT_COUNT", "1"))  # kills per command; a soak: 50


def _snapshot(path: Path):
    """The bytes of a file, or of every file of a folder by relative name; None if absent."""
    if path.is_file() and path.suffix == ".safetensors":  # the tensors (metadata name paths)
        return {k: v.numpy().tobytes() for k, v in load_file(path).items()}
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        return {
            p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()
        }
    return None


@pytest.fixture(scope="module")
def job_runs(tmp_path_factory, photo_folder):
    """A dense run and a codec trained in process on the photos, for the jobs below."""
    base = tmp_path_factory.mktemp("jobs")
    quick = ["--epochs", "2", "--latent-dim", "4", "--quiet", "--threads", "1"]
    dense, codec, dncnn = base / "dense", base / "codec", base / "dncnn"
    assert main(["train", "--data", str(photo_folder), "--out", str(dense), *quick]) == 0
    argv = ["train", "--data", str(photo_folder), "--model", "compress", "--out", str(codec)]
    assert main([*argv, *quick]) == 0
    argv = ["train", "--data", str(photo_folder), "--model", "dncnn", "--limit", "60"]
    argv += ["--noise", "gaussian:25/255", "--epochs", "2", "--quiet", "--threads", "1"]
    assert main([*argv, "--out", str(dncnn)]) == 0
    return {"dense": dense, "codec": codec, "dncnn": dncnn, "photos": photo_folder}


JOBS = {  # the command, and the output it writes (relative to the test's folder)
    "encode": (
        lambda r, o: ["encode", str(r["dense"]), "--data", str(r["photos"]), "--out", o],
        "z.csv",
    ),
    "reconstruct": (
        lambda r, o: ["reconstruct", str(r["dense"]), "--data", str(r["photos"]), "--out", o],
        "recon",
    ),
    "compress": (
        lambda r, o: [
            "compress",
            str(r["codec"]),
            "--data",
            str(r["photos"]),
            "--out",
            o,
            "--step",
            "1",
        ],
        "x.aek",
    ),
    "fit-detector": (
        lambda r, o: [
            "fit-detector",
            "--data",
            str(r["photos"]),
            "--out",
            o,
            "--epochs",
            "2",
            "--n-estimators",
            "2",
        ],
        "det",
    ),
    "denoise": (
        lambda r, o: ["denoise", str(r["dncnn"]), "--data", str(r["photos"]), "--out", o],
        "clean",
    ),
    "report": (lambda r, o: ["report", str(r["dense"]), "--out", o], "report.html"),
    "fit-density": (lambda r, o: _density_argv(r, o), "copy/density.safetensors"),
}


def _density_argv(runs: dict, out: str) -> list[str]:
    """fit-density writes into its run: each test works on its own copy of the dense run."""
    run = Path(out).parent
    shutil.copytree(runs["dense"], run, dirs_exist_ok=True)
    return ["fit-density", str(run), "--components", "2"]


@pytest.mark.parametrize("kill", range(FAULT_COUNT))
@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_command_killed_at_a_random_instant_leaves_its_output_whole_or_absent(
    job, kill, job_runs, tmp_path
):
    """Killed anywhere in its run (SIGKILL, SIGTERM or Ctrl-C: in turn, by job and kill), a
    command's output is either absent or complete under its final name, and the same
    command run again writes the uninterrupted result. Instants are drawn from
    (AEKIT_FAULT_SEED, job, kill) over the command's measured duration."""
    argv_of, name = JOBS[job]
    clean, out = tmp_path / "clean" / name, tmp_path / "run" / name
    clean.parent.mkdir(parents=True), out.parent.mkdir(parents=True)
    t0 = time.monotonic()
    proc = spawn_aekit([*argv_of(job_runs, str(clean)), "--threads", "1"])
    assert proc.wait(timeout=300) == 0
    duration = time.monotonic() - t0
    sig = SIGNALS[(sorted(JOBS).index(job) + kill) % len(SIGNALS)]
    proc = spawn_aekit([*argv_of(job_runs, str(out)), "--threads", "1"], capture_stderr=True)
    time.sleep(random.Random(f"{FAULT_SEED}-{job}-{kill}").uniform(0.0, duration))
    stopped = _stop(proc, sig)
    if sig != signal.SIGKILL and stopped in (130, 143):  # a clean stop leaves no debris
        assert not [p.name for p in out.parent.iterdir() if ".tmp" in p.name]
    left = _snapshot(out)
    want = _snapshot(clean)
    if job == "report":  # the report names the time it was made: whole means its end is there
        assert left is None or left.rstrip().endswith(b"</html>")
    else:
        assert left is None or left == want, f"{job}: a part of the output under its final name"
    what = signal.Signals(sig).name
    COUNTS[f"{what} {job}: output {'absent' if left is None else 'whole'}"] += 1
    assert main([*argv_of(job_runs, str(out)), "--threads", "1"]) == 0
    if job == "report":
        assert _snapshot(out).rstrip().endswith(b"</html>")
    else:
        assert _snapshot(out) == want
    assert not [p for p in out.parent.iterdir() if ".tmp" in p.name]
    COUNTS[f"{what} {job}: rerun gives the uninterrupted output"] += 1


def test_a_fresh_run_on_a_folder_stopped_before_its_first_epoch_says_it_takes_it_over(
    tmp_path, capsys
):
    out = tmp_path / "run"
    out.mkdir()
    (out / ckpt.CONFIG_FILE).write_text("{}")  # what a run killed after writing it leaves
    assert main(["train", *BASE, "--epochs", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("aekit: warning:") == 1 and "stopped before its first epoch" in err
    assert json.loads((out / ckpt.CONFIG_FILE).read_text())["model"]["name"] == "dense"


# ------------------------------------------------------------------ a whole run of each kind

SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
EPOCHS = ["--epochs", "3", "--batch-size", "16", "--quiet", "--threads", "1"]
KINDS = {  # a run of each kind, on the photos (the dense one on the built-in digits)
    "dense": ["train", *BASE[:4], "--limit", "300", *EPOCHS],
    "conv on PNGs": ["--model", "conv", "--channels", "4,8", "--latent-dim", "4", "--limit", "80"],
    "dncnn": ["--model", "dncnn", "--noise", "gaussian:25/255", "--limit", "60"],
    "dncnn on crops": "--model dncnn --noise gaussian:25/255 --patch 12 --limit 60".split(),
    "codec": "--model codec --stages 2 --hyper-channels 4 --limit 40".split(),
}


def _kind_args(kind: str, photos: Path) -> list[str]:
    if kind == "dense":
        return KINDS[kind]
    return ["train", "--data", str(photos), *KINDS[kind], *EPOCHS]


@pytest.fixture(scope="module")
def kind_runs(tmp_path_factory, photo_folder):
    """Each kind's uninterrupted run, trained in process: {kind: (folder, file writes, the
    seconds a spawned run takes from holding its folder to its end)}, and "startup": the
    seconds a spawned command takes to begin (interpreter and imports). The writes are
    counted as the failing-write tests count them."""
    from unittest import mock

    base = tmp_path_factory.mktemp("kinds")
    t0 = time.monotonic()
    assert spawn_aekit(["--version"]).wait(timeout=120) == 0
    startup = time.monotonic() - t0  # a spawned run's interpreter and imports
    runs, real = {}, os.replace
    for kind in KINDS:
        calls = {"n": 0}

        def replace(src, dst, calls=calls):
            calls["n"] += 1
            return real(src, dst)

        out = base / kind.replace(" ", "-")
        t0 = time.monotonic()
        with mock.patch.object(files.os, "replace", replace):
            assert main([*_kind_args(kind, photo_folder), "--out", str(out)]) == 0
        # a spawned run's seconds from holding its folder to its end (lazy imports included)
        timed = base / f"{out.name}-timed"
        proc = spawn_aekit([*_kind_args(kind, photo_folder), "--out", str(timed)])
        _wait_for_lock(timed, proc)
        t0 = time.monotonic()
        assert proc.wait(timeout=300) == 0
        runs[kind] = (out, calls["n"], time.monotonic() - t0)
    return {**runs, "startup": startup}


def _wait_for_lock(out: Path, proc) -> None:
    """Until the command holds its folder (its lock file is there), or has ended."""
    deadline = time.monotonic() + 120
    while not (out / ".lock").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


def _stop(proc, sig) -> int:
    """Send ``sig`` now and wait; a SIGTERM or Ctrl-C must stop the command in one line
    (exit 143 or 130), or find it finished (0) or not yet started (killed by the signal
    before Python's handler was in place): never a traceback."""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        return proc.returncode
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 130, 143, -sig), (proc.returncode, err)
    if proc.returncode in (130, 143):
        lines = [line for line in err.splitlines() if "warning" not in line]
        assert len(lines) == 1 and lines[0].startswith("aekit: "), err
    return proc.returncode


def _continue_said(out: Path, args: list[str], capsys) -> None:
    """:func:`_continue`, and what it said: a fresh run on a folder that holds files of a run
    stopped before its config.json takes it over in one warning line; else nothing is said."""
    from aekit.io.rundir import Run

    started = [] if Run(out).config_file.exists() else Run(out).started_files()
    capsys.readouterr()
    _continue(out, args)
    err = capsys.readouterr().err.strip().splitlines()
    if started:
        assert len(err) == 1 and "this run starts it over" in err[0], (started, err)
        COUNTS["unfinished folder taken over, in one line"] += 1
    else:
        assert not err, err


def _where(out: Path, epochs: int) -> str:
    done = _epochs_done(out)
    if not out.exists() or not any(p.name != ".lock" for p in out.iterdir()):
        return "before any file"
    if not (out / ckpt.CHECKPOINT_FILE).exists():
        return "before the first checkpoint"
    return f"in epoch {done + 1}" if done < epochs else "at the end"


@pytest.mark.parametrize("kill", range(FAULT_COUNT))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_run_of_each_kind_stopped_at_a_random_instant_reaches_the_uninterrupted_run(
    kind, kill, kind_runs, photo_folder, tmp_path, capsys
):
    """A run of each kind (dense, conv on a folder of PNGs, the dncnn denoiser on the images and
    on random crops of them, the spatial codec) killed by SIGKILL, SIGTERM or Ctrl-C (in turn,
    by kind and kill) at an instant drawn from (AEKIT_FAULT_SEED, kind, kill) over its whole
    duration from the moment it holds its folder (data loading, the start, every epoch and
    write, the figures and summary; the interpreter's start is the next test's); then resumed (a
    config.json) or run again: the uninterrupted run's weights, checkpoint and losses, bit for
    bit, and no temporary file left."""
    clean, _, seconds = kind_runs[kind]
    args = _kind_args(kind, photo_folder)
    sig = SIGNALS[(sorted(KINDS).index(kind) + kill) % len(SIGNALS)]
    out = tmp_path / "run"
    proc = spawn_aekit([*args, "--out", str(out)], capture_stderr=True)
    _wait_for_lock(out, proc)
    time.sleep(random.Random(f"{FAULT_SEED}-{kind}-{kill}").uniform(0.0, seconds))
    code = _stop(proc, sig)
    if code in (130, 143):  # a clean stop: no debris, the lock free
        assert not [p.name for p in out.iterdir() if ".tmp" in p.name] if out.exists() else True
        assert not (out / ".lock").exists() or _lock_is_free(out)
    COUNTS[f"{signal.Signals(sig).name} {kind} {_where(out, 3)}"] += 1
    _continue_said(out, args, capsys)
    _same_run(clean, out)
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    COUNTS[f"{signal.Signals(sig).name} {kind}: resumed or rerun bit-identical"] += 1


@pytest.mark.parametrize("kill", range(FAULT_COUNT))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_at_a_random_instant_of_a_dense_run(
    sig, kill, kind_runs, photo_folder, tmp_path, capsys
):
    """The fixed-point test above, at an instant drawn over the whole run: one line, exit 143
    or 130 (or 0: finished), and the line's advice (resume, or run again) reaches the run."""
    clean, _, seconds = kind_runs["dense"]
    args = _kind_args("dense", photo_folder)
    out = tmp_path / "run"
    proc = spawn_aekit([*args, "--out", str(out)], capture_stderr=True)
    start = kind_runs["startup"]  # the interpreter's start and imports, then the run
    time.sleep(random.Random(f"{FAULT_SEED}-dense-{sig}-{kill}").uniform(0.0, start + seconds))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and proc.returncode in (0, 130, 143, -sig), err
    if proc.returncode in (130, 143):
        line = err.strip().splitlines()[-1]
        resume = "aekit train --resume" in line
        assert resume == (out / ckpt.CONFIG_FILE).exists(), (line, _where(out, 3))
        assert resume or "run the same command again" in line, line
    COUNTS[f"{signal.Signals(sig).name} dense at a random instant, exit {proc.returncode}"] += 1
    _continue_said(out, args, capsys)
    _same_run(clean, out)


@pytest.mark.parametrize("kill", range(FAULT_COUNT))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_full_disk_at_a_random_write_of_each_kind_keeps_the_run_whole(
    kind, kill, kind_runs, photo_folder, tmp_path, monkeypatch, capsys
):
    """ENOSPC at one file write drawn from (AEKIT_FAULT_SEED, kind, kill) among the run's
    writes: one line, exit 1, every file left whole, and resumed or rerun the uninterrupted
    run."""
    clean, writes, _ = kind_runs[kind]
    args = _kind_args(kind, photo_folder)
    fail_at = random.Random(f"{FAULT_SEED}-{kind}-enospc-{kill}").randint(1, writes)
    real, calls = os.replace, {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and os.strerror(errno.ENOSPC) in err[0], err
    _valid_files(out)
    monkeypatch.setattr(files.os, "replace", real)
    COUNTS[f"ENOSPC {kind} at write {fail_at} of {writes}"] += 1
    _continue(out, args)
    _same_run(clean, out)
    COUNTS[f"ENOSPC {kind}: run whole and resumed"] += 1


def test_a_dead_writers_temporary_files_go_and_a_live_ones_stay(tmp_path):
    """A write removes the temporary files of its name that a killed process left, never
    those of a live one (two processes writing one output at once) nor other names'."""
    import subprocess
    import sys

    target = tmp_path / "z.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        debris = {
            "dead file": tmp_path / f".z.csv.{dead.pid}.abcd1234.tmp",
            "live file": tmp_path / f".z.csv.{live.pid}.abcd1234.tmp",
            "dead folder": tmp_path / f".z.csv.tmp-{dead.pid}-abcd1234",
            "other name": tmp_path / f".y.csv.{dead.pid}.abcd1234.tmp",
            "not ours": tmp_path / ".z.csv.notes.tmp",
        }
        for what, p in debris.items():
            p.mkdir() if "folder" in what else p.write_text("part")
        files.write_array(target, np.zeros((2, 2)))
        assert np.loadtxt(target, delimiter=",").shape == (2, 2)
        left = {what for what, p in debris.items() if p.exists()}
        assert left == {"live file", "other name", "not ours"}
        # the run lock clears its folder of every dead writer's temporary file
        from aekit.io.rundir import RunLock

        with RunLock(tmp_path):
            pass
        left = {what for what, p in debris.items() if p.exists()}
        assert left == {"live file", "not ours"}
    finally:
        live.kill()
        live.wait()


def test_two_writers_finishing_one_output_folder_at_once_leave_one_whole(tmp_path, monkeypatch):
    """Another process finishing the same output folder between our steps: it moves the old
    folder aside first (ours finds none to move), or renames its own in just before ours
    (ours moves that aside in turn); either way one whole output, nothing of ours left."""
    from aekit.io.images import write_images

    def pngs(value: int) -> list[np.ndarray]:
        return [np.full((1, 4, 4), value, np.float32)]

    out = tmp_path / "recon"
    write_images(out, pngs(10), 255)
    real = os.replace
    for race in ("moved aside first", "renamed in first"):
        done = {"raced": False}

        def replace(src, dst, race=race, done=done):
            if not done["raced"] and Path(dst) == out and race == "renamed in first":
                done["raced"] = True  # the other writer's folder lands before ours
                write_images(out, pngs(30), 255)
            elif not done["raced"] and Path(src) == out and race == "moved aside first":
                done["raced"] = True  # the other writer moves the old folder away first
                shutil.rmtree(out)
            return real(src, dst)

        monkeypatch.setattr(files.os, "replace", replace)
        write_images(out, pngs(20), 255)
        monkeypatch.setattr(files.os, "replace", real)
        assert done["raced"]
        from PIL import Image

        (png,) = out.iterdir()
        assert np.asarray(Image.open(png)).max() == 20, race
        assert [p.name for p in tmp_path.iterdir()] == ["recon"], race
        COUNTS[f"two writers of one output folder, the other {race}: one whole output"] += 1


@pytest.mark.parametrize("kill", range(FAULT_COUNT))
@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_full_disk_at_a_random_write_of_each_command_leaves_its_output_absent(
    job, kill, job_runs, tmp_path, monkeypatch, capsys
):
    """ENOSPC at one of a command's file writes, drawn from (AEKIT_FAULT_SEED, job, kill):
    one line, exit 1, nothing under the output's name (nor a temporary file beside it), and
    the same command run again writes the uninterrupted output."""
    argv_of, name = JOBS[job]
    clean, out = tmp_path / "clean" / name, tmp_path / "run" / name
    clean.parent.mkdir(parents=True), out.parent.mkdir(parents=True)
    real, calls = os.replace, {"n": 0, "fail_at": -1}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    assert main([*argv_of(job_runs, str(clean)), "--threads", "1"]) == 0
    writes = calls["n"]
    assert writes >= 1
    calls.update(n=0, fail_at=random.Random(f"{FAULT_SEED}-{job}-enospc-{kill}").randint(1, writes))
    argv = [*argv_of(job_runs, str(out)), "--threads", "1"]  # (fit-density: a fresh copy)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and os.strerror(errno.ENOSPC) in err[0], err
    assert _snapshot(out) is None, f"{job}: a part of the output under its final name"
    assert not [p.name for p in out.parent.iterdir() if ".tmp" in p.name]
    COUNTS[f"ENOSPC {job} at write {calls['fail_at']} of {writes}: output absent"] += 1
    calls["fail_at"] = -1
    assert main(argv) == 0
    if job == "report":
        assert _snapshot(out).rstrip().endswith(b"</html>")
    else:
        assert _snapshot(out) == _snapshot(clean)
    COUNTS[f"ENOSPC {job}: rerun gives the uninterrupted output"] += 1


def test_ctrl_c_while_the_interpreter_exits_prints_no_traceback():
    """A Ctrl-C after the command has returned lands in the interpreter's exit (its atexit
    handlers: torch's among them), which would print a traceback; aekit ignores it there.
    The command here returns at once and the signal is sent from an atexit handler."""
    import subprocess
    import sys

    from conftest import SRC

    script = (
        "import atexit, os, runpy, signal, time\n"
        "import aekit.cli\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.2)\n"
        "aekit.cli.main = lambda: atexit.register(late) and 0\n"
        "runpy.run_module('aekit', run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, preexec_fn=lambda: signal.signal(
                              signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    COUNTS["Ctrl-C as the interpreter exits: ignored, no traceback"] += 1
