"""Issue 13, point 5: training throughput with 1 and 2 processes on this machine (CPU, gloo).

``aekit train`` on MNIST's 60,000 training images (the default dense model, batch 256, no
validation split, 3 epochs), as one process with 1 and with all threads, and as ``torchrun
--nproc-per-node 2`` with one thread per process (the same global batch). The samples/s of the
last epoch are reported (the first pays for start-up).

    python benchmarks/distributed.py          # writes benchmarks/results/distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, data_dir, save_result


def run(cmd: list[str], out: Path, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return {"samples_per_s": last["samples_per_s"], "train_loss": last["train_loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    common = ["train", "--data", "mnist", "--data-dir", str(data_dir()), "--batch-size", "256"]
    common += ["--val-fraction", "0", "--epochs", str(args.epochs), "--quiet"]
    if args.limit:
        common += ["--limit", str(args.limit)]
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        setups = [("1 process", 1, 1), (f"1 process, {cores} threads", 1, cores)]
        setups.append(("2 processes (torchrun, gloo)", 2, 1))
        for label, nproc, threads in setups:
            out = Path(tmp) / label.replace(" ", "-").replace(",", "")
            argv = [*common, "--threads", str(threads), "--out", str(out)]
            if nproc == 1:
                cmd = [sys.executable, "-m", "aekit", *argv]
            else:
                cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
                cmd += ["--master-port=29533", "-m", "aekit", *argv]
            row = {"setup": label, "processes": nproc, "threads_each": threads}
            row.update(run(cmd, out, threads))
            rows.append(row)
            print(
                f"{label:32s} {row['samples_per_s']:9.0f} samples/s  loss {row['train_loss']:.4f}"
            )
    name = "distributed_smoke" if args.limit else "distributed"
    path = save_result(name, {"epochs": args.epochs, "limit": args.limit, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
