"""Issue 13, point 2: train and encode a float32 .npy larger than memory, in bounded memory.

Generates ``--gigabytes`` (default 8) of MNIST-like rows (784 wide: the training images tiled,
each copy shifted by a pixel or two and with a little noise, so the rows are not repeats),
written block by block. Then, each in its own process so that each peak resident set is its
own: (1) ``aekit train --stream`` for one epoch, (2) streamed ``aekit encode`` of the whole
file, (3) the in-memory reference: encode a slice of the same data already in memory. Targets:
peak RSS of (1) and (2) under 1.5 GB; (2)'s throughput (rows/s, reading included) >= 80% of
(3)'s. (2) and (3) run one after the other ``--repeats`` times; the ratio reported is the
median round's (each round's two numbers are taken minutes apart at most, on the same load).

    python benchmarks/out_of_core.py                  # writes benchmarks/results/out_of_core.json
    python benchmarks/out_of_core.py --gigabytes 0.2  # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, mnist, save_result

WIDTH = 784
# the peak resident set of this process's own memory (VmHWM): ru_maxrss would carry the
# parent's peak over fork and exec
HWM = """
def hwm():
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
"""
CHILD = (
    HWM
    + """
import json, sys, time
sys.argv = ["aekit"] + json.loads(sys.argv[1])
from aekit.cli import main
# what the commands import, off the clock as for the in-memory reference (torch alone takes
# one to four seconds to import on this machine: a tenth of the streamed encode's time)
import torch, aekit.apps.evaluate, aekit.apps.streamed, aekit.apps.train
t0 = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_rss_mb": hwm()}))
"""
)
IN_MEMORY = (
    HWM
    + """
import json, sys, time
import numpy as np
import torch
import aekit
run, path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
X = np.load(path, mmap_mode="r")[:rows].copy()  # the slice, in memory before the clock starts
model = aekit.load(run)
model.encode_numpy(X[:1000])
t0 = time.perf_counter()
Z = model.encode_numpy(X)
seconds = time.perf_counter() - t0
print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
                  "peak_rss_mb": hwm()}))
"""
)


def generate(path: Path, gigabytes: float, seed: int = 0) -> int:
    """Write ``gigabytes`` of MNIST-like float32 rows to ``path`` in blocks; returns rows."""
    base = mnist("train")  # (60000, 784) in [0, 1]
    rows = int(gigabytes * 2**30 // (WIDTH * 4))
    rng = np.random.default_rng(seed)
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, WIDTH)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        done = 0
        while done < rows:
            n = min(len(base), rows - done)
            shift = rng.integers(-2, 3, size=2)
            block = np.roll(base[:n].reshape(n, 28, 28), tuple(shift), axis=(1, 2)).reshape(n, -1)
            block = np.clip(block + rng.normal(0, 0.02, block.shape), 0, 1).astype("<f4")
            f.write(block.tobytes())
            done += n
    return rows


def child(argv: list[str]) -> dict:
    env_cmd = [sys.executable, "-c", CHILD, json.dumps(argv)]
    done = subprocess.run(env_cmd, capture_output=True, text=True, cwd=REPO, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def encode_round(run: Path, data: Path, folder: Path, rows: int, args) -> dict:
    """One streamed encode of the whole file and, right after, the in-memory reference; the
    load average before and after (other processes on the machine skew both)."""
    before = os.getloadavg()[0]
    out = str(folder / "z.npy")
    threads = ["--threads", str(args.threads)]
    encode = child(["encode", str(run), "--data", str(data), "--stream", "--out", out, *threads])
    encode["rows_per_s"] = rows / encode["seconds"]
    Path(out).unlink()
    ref_cmd = [sys.executable, "-c", IN_MEMORY, str(run), str(data)]
    ref_cmd += [str(min(rows, args.slice_rows)), str(args.threads)]
    ref = json.loads(subprocess.run(ref_cmd, capture_output=True, text=True, env=_env(),
                                    check=True).stdout.strip().splitlines()[-1])  # fmt: skip
    ratio = encode["rows_per_s"] / ref["rows_per_s"]
    load = [before, os.getloadavg()[0]]
    print(f"encode streamed {encode['rows_per_s']:,.0f} rows/s (peak RSS "
          f"{encode['peak_rss_mb']:.0f} MB), in memory ({ref['rows']:,} rows) "
          f"{ref['rows_per_s']:,.0f} rows/s: {ratio:.3f}; "
          f"load {load[0]:.1f} -> {load[1]:.1f}")  # fmt: skip
    return {"streamed": encode, "in_memory": ref, "ratio": ratio, "load_average": load}


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=8.0)
    parser.add_argument("--dir", help="where to write the data (default: a temporary folder)")
    parser.add_argument("--slice-rows", type=int, default=200_000, help="in-memory reference")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="for every phase")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the two encodes")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(dir=args.dir) if not args.keep else None
    folder = Path(tmp.name if tmp else (args.dir or tempfile.mkdtemp()))
    data, run = folder / "big.npy", folder / "run"
    t0 = time.perf_counter()
    rows = generate(data, args.gigabytes)
    print(f"wrote {rows:,} x {WIDTH} float32 ({data.stat().st_size / 2**30:.2f} GiB) "
          f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    threads = ["--threads", str(args.threads)]
    flags = ["--stream", "--epochs", "1", "--batch-size", "256", "--val-fraction", "0.01"]
    train = child(["train", "--data", str(data), *flags, "--quiet", "--out", str(run), *threads])
    train["rows_per_s"] = rows / train["seconds"]
    print(
        f"train 1 epoch streamed: {train['seconds']:.0f} s, peak RSS {train['peak_rss_mb']:.0f} MB"
    )
    rounds = [encode_round(run, data, folder, rows, args) for _ in range(args.repeats)]
    encode = max((r["streamed"] for r in rounds), key=lambda e: e["rows_per_s"])
    ref = max((r["in_memory"] for r in rounds), key=lambda e: e["rows_per_s"])
    ratios = sorted(r["ratio"] for r in rounds)
    ratio = ratios[len(ratios) // 2]  # the median round: both numbers from the same round
    print(f"streamed / in memory, median of {len(rounds)} rounds: {ratio:.3f} "
          f"(rounds {', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip
    passed = {
        "train_rss_under_1.5GB": train["peak_rss_mb"] < 1536,
        "encode_rss_under_1.5GB": encode["peak_rss_mb"] < 1536,
        "streamed_encode_at_least_80pct": ratio >= 0.8,
    }
    print(json.dumps(passed))
    name = "out_of_core" if args.gigabytes >= 8 else "out_of_core_smoke"
    path = save_result(name, {"gigabytes": args.gigabytes, "rows": rows, "train": train,
                              "encode": encode, "in_memory_encode": ref, "ratio": ratio,
                              "rounds": rounds, "pass": passed})  # fmt: skip
    print(f"wrote {path}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
