"""Issue 3: the NumPy engine's training throughput against aekit's PyTorch engine.

The seed's one-hidden-layer model on MNIST train (60,000 images in [0, 1]): 784-256-784,
sigmoid code, sigmoid output, loss 1/(2N) ||X - X_hat||_F^2, float32, Adam lr 1e-3, batch 256.
Both engines train the same DenseAutoencoder (same initial weights, same per-epoch sample
order) in this process, alternating, ``--repeats`` times each; the best throughput of each is
reported with their ratio (target: NumPy / PyTorch >= 2/3). ``--profile`` adds the NumPy
engine's time per step by phase.

    python benchmarks/speed_scratch.py              # writes benchmarks/results/speed_scratch.json
    python benchmarks/speed_scratch.py --limit 5000 --repeats 1     # smoke run, not saved
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

import numpy as np
import torch
from _common import matmul_gflops, mnist, save_result

from aekit.backends.numpy import NumpyOptimizer, to_scratch
from aekit.nn import build_model
from aekit.scratch.activations import ACTIVATIONS
from aekit.training import TrainConfig, fit, make_optimizer

D_IN, D_LATENT = 784, 256


def seed_model(seed: int):
    """The seed's model as aekit's DenseAutoencoder: Z = s(X W_E + b_E), X_hat = s(Z W_D + b_D)."""
    torch.manual_seed(seed)
    return build_model(
        "dense",
        D_IN,
        hidden=(),
        latent_dim=D_LATENT,
        latent_activation="sigmoid",
        output_activation="sigmoid",
        loss="mse",
    )


def run(engine: str, model, X: np.ndarray, config: TrainConfig) -> tuple[float, float]:
    """Train with ``engine``; (samples/s over the whole call, last epoch's training loss)."""
    if engine == "numpy":  # the seed's engine is a strategy of the one loop
        config = dataclasses.replace(config, engine="numpy")
    t0 = time.perf_counter()
    state = fit(model, X, config=config)
    seconds = time.perf_counter() - t0
    return config.epochs * len(X) / seconds, state.history[-1]["train_loss"]


def best_ms(f, repeats: int = 20) -> float:
    """Best time of one call of ``f`` in milliseconds."""
    f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def profile_step(X: np.ndarray, batch_size: int) -> dict[str, float]:
    """The NumPy engine's step by phase (ms): where its time goes."""
    model = seed_model(0)
    sm = to_scratch(model)
    opt = NumpyOptimizer("adam", model, 1e-3)
    xb = np.ascontiguousarray(X[:batch_size])
    _, grads = sm._loss_and_gradients(xb, "mse")
    A = xb @ sm.params["W_E"]  # (N, D_in) @ (D_in, D_latent)
    A_out = sm.encode(xb) @ sm.params["W_D"]  # (N, D_latent) @ (D_latent, D_in)
    sig = ACTIVATIONS["sigmoid"].fn
    phases = {
        "loss_and_gradients": best_ms(lambda: sm._loss_and_gradients(xb, "mse")),
        "adam_step": best_ms(lambda: opt.step(sm.params, grads)),
        "matmul_X_W_E": best_ms(lambda: xb @ sm.params["W_E"]),
        "matmul_Z_W_D": best_ms(lambda: A @ sm.params["W_D"]),
        "sigmoid_output": best_ms(lambda: sig(A_out)),
        "sigmoid_output_without_where": best_ms(lambda: 1 / (1 + np.exp(-A_out))),
    }
    for name, ms in phases.items():
        print(f"  numpy step phase {name:30s} {ms:7.3f} ms")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="first N images (smoke runs)")
    parser.add_argument("--profile", action="store_true", help="time the NumPy step by phase")
    args = parser.parse_args()

    X = np.ascontiguousarray(mnist("train")[: args.limit], dtype=np.float32)
    gflops = matmul_gflops()
    flop_per_sample = 6 * 2 * D_IN * D_LATENT  # forward 2W, backward 4W per weight matrix
    print(
        f"{len(X)} images; fp32 matmul {gflops:.1f} GFLOP/s; torch threads "
        f"{torch.get_num_threads()}; {flop_per_sample / 1e6:.2f} MFLOP per sample"
    )
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer="adam", lr=1e-3, seed=0
    )
    # the first torch optimiser imports torch._dynamo (about a second): not part of either engine
    make_optimizer("adam", [torch.zeros(1)], 1e-3)
    best = {"numpy": 0.0, "torch": 0.0}
    losses: dict[str, float] = {}
    for r in range(args.repeats):
        start = seed_model(r)
        for engine in ("numpy", "torch"):  # alternate, so both see the same machine load
            sps, loss = run(engine, copy.deepcopy(start), X, config)
            print(f"repeat {r + 1}: {engine:5s} {sps:9.0f} samples/s  (train loss {loss:.5f})")
            best[engine] = max(best[engine], sps)
            losses[engine] = loss
    ratio = best["numpy"] / best["torch"]
    rows = []
    for engine, sps in best.items():
        frac = sps * flop_per_sample / (gflops * 1e9)
        rows.append(
            {
                "engine": engine,
                "samples_per_s": sps,
                "fraction_of_matmul": frac,
                "last_train_loss": losses[engine],
            }
        )
        print(f"best  {engine:5s} {sps:9.0f} samples/s  {100 * frac:5.1f}% of matmul")
    print(
        f"numpy / torch = {ratio:.3f}  (target >= 0.667: {'met' if ratio >= 2 / 3 else 'MISSED'})"
    )
    phases = profile_step(X, args.batch_size) if args.profile else None
    result = {
        "model": f"{D_IN}-{D_LATENT}-{D_IN} sigmoid/sigmoid mse float32",
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": args.batch_size,
        "n_samples": len(X),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "matmul_gflops": gflops,
        "rows": rows,
        "ratio_numpy_over_torch": ratio,
    }
    if phases:
        result["numpy_step_ms"] = phases
    if args.limit is not None:
        print("smoke run (--limit): results not saved")
        return
    path = save_result("speed_scratch", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
