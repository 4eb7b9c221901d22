"""Several processes, one loop: DistributedDataParallel as a strategy (``torchrun``).

Launched by ``torchrun --nproc-per-node N -m aekit train ...`` (or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``), :func:`fit`
picks :class:`DistributedStrategy` by itself. Every rank holds the whole data set and walks the
same seeded permutation; each global batch of the loop is split across the ranks (rank r takes
its contiguous share, so every sample is seen once per epoch), each rank's loss is weighted by
its share so that the averaged gradients are those of the global batch, the summed terms and
the validation loss are reduced across ranks, and only rank 0 writes the run directory. A rank's
randomness (noise, reparameterisation) is a pure function of (seed, epoch, rank), so a resumed
run draws the same numbers. Backend: NCCL on CUDA, gloo on CPUs.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist

from ..errors import ConfigError
from .strategy import TorchStrategy, evaluate_loss

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True inside a torchrun world of more than one process."""
    return all(k in os.environ for k in ENV) and int(os.environ["WORLD_SIZE"]) > 1


def rank() -> int:
    """This process's rank (0 outside a distributed world)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0)) if launched() else 0


def is_writer() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return rank() == 0


def init(device_request=None) -> torch.device:
    """Join the torchrun world (once) and return this rank's device."""
    local = int(os.environ["LOCAL_RANK"])
    from .strategy import resolve_device

    device = resolve_device(device_request)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy)  # a process group left to the interpreter's exit can abort
    return device


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(size: int, world: int, r: int) -> tuple[int, int]:
    """Rank r's part [lo, hi) of a batch of ``size`` rows: contiguous, sizes differing by 1."""
    base, extra = divmod(size, world)
    lo = r * base + min(r, extra)
    return lo, lo + base + (1 if r < extra else 0)


class DistributedStrategy(TorchStrategy):
    """The PyTorch engine on one device per process, gradients all-reduced by DDP."""

    def __init__(self, device=None, precision: str = "fp32", augment=None) -> None:
        # a step captured in a CUDA graph would need DDP's own graph support: eager here
        super().__init__(device, precision, cuda_graphs=False, augment=augment)

    def setup(self, model, optimizer, config):
        self.device_request = init(self.device_request)
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        self.seed = config.seed
        optimizer = super().setup(model, optimizer, config)
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.forward_module = DistributedDataParallel(model, device_ids=ids)  # syncs rank 0's
        return optimizer

    def prepare(self, X) -> torch.Tensor:
        from ..data.stream import BlockView

        if isinstance(X, BlockView):
            raise ConfigError("streamed data train in one process for now; drop torchrun")
        t = super().prepare(X)
        if len(t) < self.world:
            raise ConfigError(
                f"{len(t)} samples cannot be shared by {self.world} processes: each rank needs "
                "data; use fewer processes (--nproc-per-node) or more data"
            )
        return t

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        # each rank's randomness, a pure function of (seed, epoch, rank): resumes draw the same
        torch.manual_seed(self.seed * 1_000_003 + epoch * 1009 + self.rank)

    def step(self, Xs: torch.Tensor, start: int, size: int) -> None:
        lo, hi = shard(size, self.world, self.rank)
        xb = Xs[start + lo : start + hi]
        self.share = (hi - lo) * self.world / size  # loss weight: DDP averages over ranks
        if hi == lo:  # a last batch smaller than the world: take part with a zero-weight row
            xb, self.share = Xs[start : start + 1], 0.0
        self.optimizer.zero_grad(set_to_none=True)
        summed = self._forward_backward(xb)  # (also makes self.total on the first step)
        self.total += summed * (0.0 if hi == lo else 1.0)

    def _loss_for_backward(self, record):
        return record["loss"] * self.share

    def end_epoch(self) -> dict[str, float]:
        if self.total is not None:
            dist.all_reduce(self.total)  # every rank's summed terms -> the global sums
        return super().end_epoch()

    def end_fit(self) -> None:
        # every rank leaves training together: none exits while another still talks to it
        dist.barrier()

    def evaluate(self, X: torch.Tensor) -> float:
        lo, hi = shard(len(X), self.world, self.rank)
        part = torch.zeros(2, dtype=torch.float64, device=self.device)
        if hi > lo:
            with self.autocast():
                part[0] = evaluate_loss(self.model, X[lo:hi]) * (hi - lo)
            part[1] = hi - lo
        dist.all_reduce(part)
        return float(part[0] / part[1])
