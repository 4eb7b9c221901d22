"""Issue 2, point 9: aekit's training throughput against a minimal hand-written PyTorch loop.

MNIST train (60,000 images), dense 784-512-16-512-784, ReLU, sigmoid output, Adam 1e-3,
2 epochs, batch 64 and 256. Both loops run in this process over the same float32 tensor,
alternating, ``--repeats`` times each; the best throughput of each is reported, also as a
fraction of the machine's measured fp32 matmul rate (6 x 2 x weights FLOPs per sample: the
forward pass and the two backward products of each layer).

    python benchmarks/speed_dense.py            # writes benchmarks/results/speed_dense.json
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import matmul_gflops, mnist, save_result
from torch import nn

from aekit.nn import build_model
from aekit.training import TrainConfig, fit

SIZES = (784, 512, 16, 512, 784)


def hand_written(X: torch.Tensor, batch_size: int, epochs: int, seed: int) -> float:
    """The minimal loop a PyTorch user writes; returns samples/s."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 16),
        nn.Linear(16, 512),
        nn.ReLU(),
        nn.Linear(512, 784),
        nn.Sigmoid(),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(X)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            xb = X[perm[i : i + batch_size]]
            loss = F.mse_loss(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * n / (time.perf_counter() - t0)


def aekit_fit(X: torch.Tensor, batch_size: int, epochs: int, seed: int) -> float:
    """aekit's generic trainer on the registry's dense model; returns samples/s."""
    torch.manual_seed(seed)
    model = build_model(
        "dense", 784, hidden=(512,), latent_dim=16, activation="relu", output_activation="sigmoid"
    )
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3, seed=seed)
    t0 = time.perf_counter()
    fit(model, X, config=config)
    return epochs * len(X) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="first N images (smoke runs)")
    args = parser.parse_args()

    X = torch.from_numpy(mnist("train")[: args.limit])
    gflops = matmul_gflops()
    weights = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))
    flop_per_sample = 6 * weights  # forward 2W, backward 4W
    print(f"fp32 matmul: {gflops:.1f} GFLOP/s; {flop_per_sample / 1e6:.2f} MFLOP per sample")
    rows = []
    for bs in args.batch_sizes:
        best = {"hand-written": 0.0, "aekit": 0.0}
        for r in range(args.repeats):
            for name, run in (("hand-written", hand_written), ("aekit", aekit_fit)):
                best[name] = max(best[name], run(X, bs, args.epochs, seed=r))
            # the machine's rate, re-measured between runs: the best reading is its capacity
            gflops = max(gflops, matmul_gflops())
        print(f"fp32 matmul, best reading so far: {gflops:.1f} GFLOP/s")
        for name, sps in best.items():
            frac = sps * flop_per_sample / (gflops * 1e9)
            rows.append(
                {"batch_size": bs, "loop": name, "samples_per_s": sps, "fraction_of_matmul": frac}
            )
            print(f"batch {bs:4d}  {name:13s} {sps:9.0f} samples/s  {100 * frac:5.1f}% of matmul")
        ratio = best["aekit"] / best["hand-written"]
        print(f"batch {bs:4d}  aekit / hand-written = {ratio:.3f}")
    path = save_result(
        "speed_dense",
        {"matmul_gflops": gflops, "epochs": args.epochs, "repeats": args.repeats, "rows": rows},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
