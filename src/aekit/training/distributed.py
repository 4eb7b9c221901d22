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

Streamed data (:class:`aekit.data.stream.BlockView`) are not read whole by every rank: the
epoch's seeded order of blocks (what one process would walk) is cut into one contiguous stretch
per rank, as long as that rank's shares of the epoch's batches add up to, so each rank reads
its own blocks (and at most one block beside them) and every sample is used once per epoch;
validation blocks are dealt round-robin. The batches then mix other rows than one process's
would (the result is not one process's within float tolerance, as it is for data in memory),
and it is a pure function of (seed, epoch, number of processes): resume with the same number.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from ..data.stream import BlockShuffle, BlockView
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
    from .devices import resolve_device

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


LEAVE_TIMEOUT = timedelta(minutes=10)


def leave_together(timeout: timedelta = LEAVE_TIMEOUT) -> None:
    """End a job that succeeded on this rank: wait for every rank (at most ``timeout``), then
    leave the world while the interpreter is whole.

    Without it a rank with nothing left to do (every rank but 0, which writes the run's files
    and reports) exits seconds before the others, and the gloo backend, whose threads a
    DistributedDataParallel keeps alive past ``destroy_process_group``, is torn down by that
    process's exit while its peers still hold their connections to it: the likely source of
    an intermittent ``std::terminate`` (SIGABRT) in that rank, after which torchrun kills the
    rank still writing (seen in CI, not reproduced on demand). Only the success path waits:
    a rank that fails leaves at once (the atexit handler of :func:`init`), and a rank that
    never comes (it failed; torchrun says so) does not keep this one waiting past
    ``timeout``."""
    if not (launched() and dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timeout)
        else:  # NCCL: its watchdog bounds the wait
            dist.barrier()
    except RuntimeError:  # another rank failed or is gone: this one's work is done, leave
        pass
    finally:
        dist.destroy_process_group()


def all_reduce_moments(lo, hi, total, total_sq, count):
    """Column minima, maxima and sums (NumPy float64 arrays) merged over the ranks."""
    import numpy as np

    lo_t, hi_t = torch.from_numpy(lo.copy()), torch.from_numpy(hi.copy())
    sums = torch.from_numpy(np.concatenate([total, total_sq, count]))
    dist.all_reduce(lo_t, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi_t, op=dist.ReduceOp.MAX)
    dist.all_reduce(sums)
    w = len(total)
    sums = sums.numpy()
    return lo_t.numpy(), hi_t.numpy(), sums[:w], sums[w : 2 * w], sums[2 * w :]


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

    def epoch_data(self, X, seed: int, epoch: int, shuffle: bool):
        if isinstance(X, BlockView):
            return RankStretch(X, seed, epoch, self._block_tensor, self.world, self.rank)
        return super().epoch_data(X, seed, epoch, shuffle)

    def step(self, Xs, start: int, size: int) -> None:
        lo, hi = shard(size, self.world, self.rank)
        streamed = isinstance(Xs, RankStretch)
        xb = Xs.take(size, hi - lo) if streamed else Xs[start + lo : start + hi]
        self.share = (hi - lo) * self.world / size  # loss weight: DDP averages over ranks
        if hi == lo:  # a last batch smaller than the world: take part with a zero-weight row
            xb, self.share = (Xs.dummy() if streamed else Xs[start : start + 1]), 0.0
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

    def evaluate(self, X) -> float:
        part = torch.zeros(2, dtype=torch.float64, device=self.device)
        if isinstance(X, BlockView):  # each rank its own validation blocks
            for b in X.blocks[self.rank :: self.world]:
                rows = self._block_tensor(X.read(int(b)))
                with self.autocast():
                    part[0] += evaluate_loss(self.model, rows) * len(rows)
                part[1] += len(rows)
            dist.all_reduce(part)
            return float(part[0] / part[1])
        lo, hi = shard(len(X), self.world, self.rank)
        if hi > lo:
            with self.autocast():
                part[0] = evaluate_loss(self.model, X[lo:hi]) * (hi - lo)
            part[1] = hi - lo
        dist.all_reduce(part)
        return float(part[0] / part[1])


class RankStretch:
    """Rank ``rank``'s stretch of a streamed epoch: rows [start, start + its share) of the
    epoch's order (:class:`~aekit.data.stream.BlockShuffle`), taken batch by batch; the ranks'
    stretches, in rank order, are the whole epoch. Blocks before the stretch are not read."""

    def __init__(self, view: BlockView, seed: int, epoch: int, to_tensor, world: int, r: int):
        self.epoch, self.to_tensor = BlockShuffle(view, seed, epoch, to_tensor), to_tensor
        self.n, self.width, self.world, self.rank = len(view), view.data.width, world, r
        self.pos: int | None = None

    def take(self, size: int, k: int):
        """This rank's next ``k`` rows, for a global batch of ``size`` rows."""
        if self.pos is None:  # the epoch's first batch has the epoch's batch size
            self.pos = sum(stretch(self.n, size, self.world, q) for q in range(self.rank))
        if k == 0:
            return None
        rows = self.epoch[self.pos : self.pos + k]
        self.pos += k
        return rows

    def dummy(self):
        """A row of zeros (for a zero-weight step), on the device."""
        import numpy as np

        return self.to_tensor(np.zeros((1, self.width), np.float32))


def stretch(n: int, batch: int, world: int, r: int) -> int:
    """How many of an epoch's ``n`` rows rank r uses at global batch ``batch``."""
    full, last = divmod(n, batch)
    (lo, hi), (a, b) = shard(batch, world, r), shard(last, world, r)
    return full * (hi - lo) + (b - a)
