"""Load (issue 26, point 4): memory stays flat and nothing is left behind.

1. ``aekit encode --stream`` and ``aekit score --stream`` of a float32 .npy of ``--rows`` rows
   x 64 columns (10 million: 2.56 GB): the resident set of each process, sampled every 0.2 s
   from /proc, at its first, middle and last samples and at its peak, beside the file's size.
2. ``--kills`` short runs started and killed with SIGKILL at an instant drawn over half as
   long again as the start would take uninterrupted, in a loop (each next start resumes
   when there is a config.json, else trains anew on the same ``--out``, as the messages
   say; a run that finishes is compared with the uninterrupted one and the loop goes on
   in a new folder), then one run to the end: the peak resident set of each process
   (flat: the last tenth against the first), where the kills landed, and afterwards the
   stray files (``*.tmp``, ``.tmp-*`` folders) and whether every run's lock is free.

    python benchmarks/load.py                          # 10 million rows, 200 kills
    python benchmarks/load.py --rows 1000000 --kills 30   # a shorter look
    python benchmarks/load.py --parts kills               # the kill loop alone (the streamed
                                                          # record of --out is kept)

Writes ``benchmarks/results/load.json``. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def watch(argv: list[str], kill_after: float | None = None) -> dict:
    """Run ``python -m aekit ARGV``, sampling its resident set; SIGKILL after ``kill_after`` s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aekit", *argv],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples, t0 = [], time.monotonic()
    while proc.poll() is None:
        if kill_after is not None and time.monotonic() - t0 >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        r = rss_mb(proc.pid)
        if r is not None:
            samples.append(r)
        time.sleep(0.2 if kill_after is None else 0.02)
    _, err = proc.communicate()
    return {"rc": proc.returncode, "seconds": time.monotonic() - t0, "rss_mb": samples,
            "stderr": err.strip()[-300:]}  # fmt: skip


def write_big(path: Path, rows: int, cols: int = 64, chunk: int = 250_000) -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, cols)).astype(np.float32)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)}
        )
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            block = rng.normal(size=(n, 8)).astype(np.float32) @ basis
            block += 0.1 * rng.normal(size=(n, cols)).astype(np.float32)
            f.write(block.tobytes())


def summary(samples: list[float]) -> dict:
    if not samples:
        return {"samples": 0}
    return {"samples": len(samples), "first": samples[0], "middle": samples[len(samples) // 2],
            "last": samples[-1], "peak": max(samples)}  # fmt: skip


def streamed(work: Path, rows: int) -> dict:
    big = work / "big.npy"
    t0 = time.monotonic()
    write_big(big, rows)
    small = work / "small.npy"
    np.save(small, np.load(big, mmap_mode="r")[:20_000])
    run, det = work / "run", work / "det"
    quick = ["--epochs", "3", "--latent-dim", "8", "--quiet", "--threads", "1"]
    assert watch(["train", "--data", str(small), "--out", str(run), *quick])["rc"] == 0
    argv = ["fit-detector", "--data", str(small), "--out", str(det), "--epochs", "3"]
    assert watch(argv)["rc"] == 0
    out = {"rows": rows, "columns": 64, "file_gb": big.stat().st_size / 1e9,
           "write_seconds": time.monotonic() - t0}  # fmt: skip
    for name, argv in {
        "encode": [
            "encode",
            str(run),
            "--data",
            str(big),
            "--stream",
            "--out",
            str(work / "z.npy"),
        ],
        "score": ["score", str(det), "--data", str(big), "--stream", "--out", str(work / "s.csv")],
    }.items():
        r = watch([*argv, "--threads", "1"])
        out[name] = {"rc": r["rc"], "seconds": r["seconds"], "rss_mb": summary(r["rss_mb"]),
                     "stderr": r["stderr"]}  # fmt: skip
        print(name, json.dumps(out[name]), flush=True)
    big.unlink()
    return out


def _lock_free(run: Path) -> bool:
    if not (run / ".lock").exists():
        return True
    fd = os.open(run / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _stage(run: Path) -> str:
    """Where a kill left a run: which of its files exist."""
    if not run.exists() or not [p for p in run.iterdir() if p.name != ".lock"]:
        return "nothing written"
    if not (run / "config.json").exists():
        return "before config.json"
    if not (run / "metrics.jsonl").exists():
        return "before the first epoch's end"
    return f"after epoch {len((run / 'metrics.jsonl').read_text().splitlines())}"


def kill_loop(work: Path, kills: int, seed: int, epochs: int = 6, minutes: float = 0) -> dict:
    """Short runs (``epochs`` epochs of 10,000 x 32 rows) killed at instants drawn over an
    uninterrupted run's duration; each next start resumes (a config.json) or trains anew on
    the same --out; a run that finishes is checked against the uninterrupted one (equal
    weights) and the loop starts the next run in a new folder."""
    from safetensors.numpy import load_file

    data = work / "loop.npy"
    np.save(data, np.random.default_rng(1).normal(size=(10_000, 32)).astype(np.float32))
    common = ["--quiet", "--threads", "1"]
    fresh = ["train", "--data", str(data), "--epochs", str(epochs), "--latent-dim", "4", *common]
    ref = work / "loop-reference"
    r = watch([*fresh, "--out", str(ref)])
    if r["rc"] != 0:
        raise SystemExit(f"the uninterrupted run failed: {r['stderr']}")
    fresh_seconds, want = r["seconds"], load_file(ref / "model.safetensors")
    # a start on a run whose epochs are all done only finishes it (summary, figures)
    finish_seconds = watch(["train", "--resume", *common, "--out", str(ref)])["seconds"]
    rng, peaks, codes, stages = random.Random(seed), [], {}, {}
    runs, n, finished, identical, killed, starts = work / "loop-runs", 0, 0, 0, 0, 0

    def start(kill_after):
        run = runs / f"{n:03d}"
        resume = (run / "config.json").exists()
        argv = ["train", "--resume", *common] if resume else fresh
        r = watch([*argv, "--out", str(run)], kill_after)
        peaks.append(max(r["rss_mb"], default=0.0))
        codes[str(r["rc"])] = codes.get(str(r["rc"]), 0) + 1
        return run, r

    def check(run: Path) -> int:
        got = load_file(run / "model.safetensors")
        return int(got.keys() == want.keys() and all((got[k] == want[k]).all() for k in got))

    def epochs_done(run: Path) -> int:
        m = run / "metrics.jsonl"
        return len(m.read_text().splitlines()) if m.exists() else 0

    stop = time.monotonic() + 60 * minutes if minutes else float("inf")
    while killed < kills and starts < 10 * kills and time.monotonic() < stop:
        # an instant over half as long again as the start would take uninterrupted: about a
        # third of the starts finish before it (the loop then goes on in a new folder)
        whole = finish_seconds if epochs_done(runs / f"{n:03d}") >= epochs else fresh_seconds
        run, r = start(rng.uniform(0.0, 1.5 * whole))
        starts += 1
        if r["rc"] == 0:  # finished before its kill: the next run in a new folder
            finished, identical, n = finished + 1, identical + check(run), n + 1
        elif r["rc"] == -signal.SIGKILL:
            killed += 1
            stages[_stage(run)] = stages.get(_stage(run), 0) + 1
            if killed % 10 == 0:
                print(f"{killed} kills, {finished} runs finished, peak RSS {peaks[-1]:.0f} MB",
                      flush=True)  # fmt: skip
        else:
            raise SystemExit(f"run {run} failed: {r['stderr']}")
    run, r = start(None)
    if r["rc"] != 0:
        raise SystemExit(f"the last run did not finish: {r['stderr']}")
    finished, identical = finished + 1, identical + check(run)
    stray = [str(p.relative_to(work)) for p in work.rglob("*") if ".tmp" in p.name]
    tenth = max(1, len(peaks) // 10)
    return {
        "kills": killed,
        "kills_asked": kills,
        "starts": starts + 1,
        "epochs_per_run": epochs,
        "uninterrupted_seconds": fresh_seconds,
        "finishing_seconds": finish_seconds,
        "exit_codes": codes,
        "killed_at": dict(sorted(stages.items())),
        "runs_finished": finished,
        "runs_equal_to_the_uninterrupted": identical,
        "peak_rss_mb_first_tenth": float(np.mean(peaks[:tenth])),
        "peak_rss_mb_last_tenth": float(np.mean(peaks[-tenth:])),
        "peak_rss_mb_max": float(max(peaks)),
        "stray_temporary_files": stray,
        "locks_free_after": all(_lock_free(p) for p in runs.iterdir()),
        "largest_config_json_bytes": max(
            (p / "config.json").stat().st_size for p in runs.iterdir()
        ),  # fmt: skip
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--minutes",
        type=float,
        default=0,
        help="end the kill loop after this long (0: none); the kills made are reported",
    )
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument(
        "--parts",
        default="streamed,kills",
        help="comma-separated: streamed, kills (a part not run keeps its record in --out)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/load.json"))
    a = p.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="aekit-load-"))
    work.mkdir(parents=True, exist_ok=True)
    parts = set(a.parts.split(","))
    if not parts or parts - {"streamed", "kills"}:
        raise SystemExit(f"--parts takes streamed and/or kills, not {a.parts!r}")
    result = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else {}
    result.update({"machine": os.uname().machine, "cpus": os.cpu_count()})
    stamp = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seed": a.seed}
    if "streamed" in parts:
        result["streamed"] = {**streamed(work, a.rows), **stamp}
    if "kills" in parts:
        t0 = time.monotonic()
        result["kill_loop"] = {**kill_loop(work, a.kills, a.seed, minutes=a.minutes), **stamp}
        result["kill_loop"]["seconds"] = time.monotonic() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["kill_loop"], indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
