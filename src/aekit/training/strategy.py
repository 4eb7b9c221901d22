"""How a step runs: the engine's protocol, and the PyTorch engine on one device.

A strategy owns the hot path of the one loop (:mod:`aekit.training.loop`): it moves the model and
the data to the device once, gathers each epoch's seeded order, runs a step, and sums the
objective's terms on the device (no host sync inside the step; the loop reads the sums once per
epoch). :class:`TorchStrategy` is the PyTorch engine; :class:`aekit.backends.numpy.NumpyStrategy`
is the seed's NumPy engine behind the same methods (the :class:`Strategy` protocol);
:mod:`aekit.training.engines` finds them by name. The device is resolved by
:mod:`aekit.training.devices`; on CUDA the step is captured in a graph
(:mod:`aekit.training.cuda_graphs`), its first replay checked against an eager step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ..data.crops import RandomCrops
from ..data.stream import BlockShuffle, BlockView
from ..errors import ConfigError
from .config import PRECISIONS
from .cuda_graphs import CapturedStep, StepState, advance_rng
from .devices import check_device
from .optim import make_optimizer


@runtime_checkable
class Strategy(Protocol):
    """What the loop (:class:`aekit.training.loop.Loop`) and its callbacks call on a strategy:
    every engine (:data:`aekit.training.engines.STRATEGIES`) has these methods.

    Per fit: ``setup`` (returns the optimiser), ``prepare`` (the data as the engine holds
    them), ``session`` (a context for the whole fit), ``end_fit``. Per epoch: ``begin_epoch``,
    ``epoch_data`` (the epoch's seeded order), ``step`` per batch, ``end_epoch`` (the summed
    terms, one host sync), ``weights_finite``, ``evaluate`` (validation). ``running_loss``
    is the progress bar's.
    """

    def setup(self, model, optimizer, config) -> Any: ...

    def prepare(self, X) -> Any: ...

    def session(self) -> contextlib.AbstractContextManager: ...

    def begin_epoch(self, epoch: int) -> None: ...

    def epoch_data(self, X, seed: int, epoch: int, shuffle: bool) -> Any: ...

    def step(self, Xs, start: int, size: int) -> None: ...

    def end_epoch(self) -> dict[str, float]: ...

    def weights_finite(self) -> bool: ...

    def evaluate(self, X) -> float: ...

    def end_fit(self) -> None: ...

    def running_loss(self, samples: int) -> float: ...


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch) so resume repeats it."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, X: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean of the model's ``"loss"`` over X, weighted by batch size, in eval mode."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    try:
        for i in range(0, len(X), batch_size):
            xb = X[i : i + batch_size]
            total += model(xb)["loss"].double() * len(xb)
    finally:
        model.train(was_training)
    return float(total) / len(X)


class TorchStrategy:
    """The PyTorch engine on one device.

    Parameters
    ----------
    device : "auto", "cpu", "cuda", "cuda:N", "mps", a torch.device, or None (the model's).
    precision : "fp32", "tf32" (CUDA only) or "bf16" (autocast).
    cuda_graphs : capture the step in CUDA graphs on a CUDA device (checked against the eager
        step at its first replay; see the module's docstring).
    augment : a function applied to each training batch inside the step (for example
        ``torch.bernoulli``: dynamic binarisation); its randomness comes from torch's RNG.
    warmup : eager steps of a batch shape before it is captured.
    """

    def __init__(
        self,
        device=None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        warmup: int = 3,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        self.device_request, self.precision = device, precision
        self.cuda_graphs, self.augment, self.warmup = bool(cuda_graphs), augment, int(warmup)

    # ---- set-up, once per fit ------------------------------------------------------------

    def setup(self, model: torch.nn.Module, optimizer, config) -> torch.optim.Optimizer:
        """Move the model to the device; return the optimiser (made here when None)."""
        request = self.device_request
        self.device = check_device(
            next(model.parameters()).device if request is None else request, self.precision
        )
        model.to(self.device)
        self.dtype = next(model.parameters()).dtype
        self.model = model
        if optimizer is None:
            optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
        self.optimizer = optimizer
        self.forward_module = model  # what the step calls: the model, or its DDP wrapper
        self.graphs: dict[int, CapturedStep | None] = {}
        self.capture = self.cuda_graphs and self.device.type == "cuda"
        self.seen: dict[int, int] = {}
        self.keys: list[str] | None = None
        self.total: torch.Tensor | None = None
        return self.optimizer

    def prepare(self, X) -> torch.Tensor:
        """The data as one tensor of the model's dtype on the device (moved once); streamed
        data (:class:`aekit.data.stream.BlockView`) stay on disk and move block by block;
        random crops (:class:`aekit.data.crops.RandomCrops`) are drawn each epoch."""
        if isinstance(X, BlockView | RandomCrops):
            return X
        t = X if torch.is_tensor(X) else torch.as_tensor(np.ascontiguousarray(X))
        if t.device.type == "cpu" and self.device.type == "cuda":
            t = t.pin_memory() if t.dtype == self.dtype else t
            return t.to(self.device, dtype=self.dtype, non_blocking=True)
        return t.to(self.device, dtype=self.dtype)

    @contextlib.contextmanager
    def session(self):
        """CUDA's flags for the length of a fit, restored afterwards: TF32 only for tf32, and
        deterministic cuDNN kernels, so that a seeded run repeats bit for bit. The fit runs on
        a side stream, where the eager warm-up before a capture belongs (torch.cuda.graphs)."""
        if self.device.type != "cuda":
            yield
            return
        cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        saved = (cuda.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
        cuda.allow_tf32 = cudnn.allow_tf32 = self.precision == "tf32"
        cudnn.deterministic, cudnn.benchmark = True, False
        main = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(main)  # the data were copied on the main stream
        try:
            with torch.cuda.stream(side):
                yield
        finally:
            main.wait_stream(side)
            cuda.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved

    def autocast(self):
        if self.precision != "bf16":
            return contextlib.nullcontext()
        # the cast cache must be off inside a captured graph (torch.cuda.graphs docs)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False)

    # ---- one epoch -----------------------------------------------------------------------

    def epoch_data(self, X, seed: int, epoch: int, shuffle: bool):
        """X in the epoch's seeded order (one gather per epoch; batches are then slices);
        streamed data in blocks shuffled by (seed, epoch)."""
        if isinstance(X, BlockView):
            return BlockShuffle(X, seed, epoch, self._block_tensor)
        if isinstance(X, RandomCrops):  # new crops each epoch, already in a random order
            return self._block_tensor(X.epoch_rows(seed, epoch))
        if not shuffle:
            return X
        order = epoch_permutation(len(X), seed, epoch)
        return X[order.to(self.device, non_blocking=True)]

    def _block_tensor(self, rows: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(rows)
        if self.device.type == "cuda":
            t = t.pin_memory()
        return t.to(self.device, dtype=self.dtype, non_blocking=True)

    def begin_epoch(self, epoch: int) -> None:
        if self.total is not None:
            self.total.zero_()

    def step(self, Xs: torch.Tensor, start: int, size: int) -> None:
        """One optimisation step on rows [start, start + size) of the epoch's data."""
        xb = Xs[start : start + size]
        graph = self.graphs.get(size)
        if graph is not None and not graph.valid():
            self.graphs.clear()  # the learning rate changed: capture again after a warm-up
            self.seen.clear()
            graph = None
        if graph is not None:
            if graph.checked:
                graph.replay(xb)
            else:
                self._checked_replay(graph, xb)
            return
        self._eager_step(xb)
        if self.capture and size not in self.graphs:
            self.seen[size] = self.seen.get(size, 0) + 1
            if self.seen[size] >= self.warmup:
                self.graphs[size] = self._capture(xb)

    def end_epoch(self) -> dict[str, float]:
        """The epoch's summed terms (one host sync), keyed by term."""
        if self.total is None:
            return {}
        values = self.total.double().cpu().tolist()
        return dict(zip(self.keys or [], values, strict=True))

    def weights_finite(self) -> bool:
        """Whether every parameter is finite (one host sync)."""
        flags = [torch.isfinite(p).all() for p in self.model.parameters()]
        return bool(torch.stack(flags).all()) if flags else True

    def evaluate(self, X) -> float:
        """The mean loss over X in eval mode (validation; streamed data block by block)."""
        with self.autocast():
            if not isinstance(X, BlockView):
                return evaluate_loss(self.model, X)
            total = 0.0
            for rows in X.iter_blocks():
                total += evaluate_loss(self.model, self._block_tensor(rows)) * len(rows)
            return total / len(X)

    def end_fit(self) -> None:
        """After the last epoch (every process reaches it at the same point)."""

    def running_loss(self, samples: int) -> float:
        """The mean loss of the epoch so far (a host sync: for progress bars)."""
        return float(self.total[0]) / max(samples, 1) if self.total is not None else float("nan")

    # ---- the step, eager and captured ----------------------------------------------------

    def _forward_backward(self, xb: torch.Tensor) -> torch.Tensor:
        """Forward, backward and the optimiser step; returns the stacked terms times N."""
        x = self.augment(xb) if self.augment is not None else xb
        with self.autocast():
            record = self.forward_module(x)
        if self.keys is None:  # "loss" first, then the other scalar terms, fixed from now on
            self.keys = ["loss"] + [k for k, v in record.items() if v.ndim == 0 and k != "loss"]
            self.total = torch.zeros(len(self.keys), dtype=torch.float64, device=self.device)
        self._loss_for_backward(record).backward()
        self.optimizer.step()
        return torch.stack([record[k].detach().double() for k in self.keys]) * len(xb)

    def _loss_for_backward(self, record: dict) -> torch.Tensor:
        return record["loss"]

    def _eager_step(self, xb: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        summed = self._forward_backward(xb)
        self.total += summed

    def _capture(self, xb: torch.Tensor) -> CapturedStep | None:
        try:
            return CapturedStep(self, xb)
        except Exception as e:  # noqa: BLE001 - any capture failure: run eagerly instead
            self._fall_back(f"the training step could not be captured in a CUDA graph ({e})")
            return None

    def _checked_replay(self, graph, xb: torch.Tensor) -> None:
        """The first replay of a captured step, held against an eager step on the same batch
        from the same state (weights, buffers, optimiser state, sums, RNG). A stochastic step
        (noise, a sampled code) is allowed the spread of two eager steps with other draws.
        When the replay falls outside, the graphs are dropped, the eager step's result is
        kept, and every later step runs eagerly."""
        before = StepState(self)
        self._eager_step(xb)
        eager = StepState(self)
        want = eager.total - before.total
        before.restore(self)
        advance_rng(self.device)  # other draws, to see how much the step's randomness moves
        self._eager_step(xb)
        spread = (self.total - before.total - want).abs()
        before.restore(self)
        graph.replay(xb)
        graph.checked = True
        got = self.total - before.total
        rtol = 2e-2 if self.precision == "bf16" else 1e-4
        if bool(((got - want).abs() <= 3 * spread + rtol * want.abs() + 1e-6 * len(xb)).all()):
            return
        eager.restore(self)
        self._fall_back(
            f"the CUDA graph of the training step replayed to a loss of "
            f"{float(got[0]) / len(xb):.6g} where the eager step gives "
            f"{float(want[0]) / len(xb):.6g}"
        )

    def _fall_back(self, why: str) -> None:
        """Every step eager from now on, said in one warning line."""
        warnings.warn(
            f"{why}; training continues with eager steps (slower at small batches; "
            "--cuda-graphs off skips the capture)",
            RuntimeWarning,
            stacklevel=3,
        )
        self.capture = False
        self.graphs = {size: None for size in self.graphs}
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
