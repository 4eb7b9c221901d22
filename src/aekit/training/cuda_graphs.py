"""The training step captured in a CUDA graph, and the copy of a step's state that lets the
strategy check a graph's first replay against an eager step.

On CUDA, :class:`~aekit.training.strategy.TorchStrategy` captures the step (forward, backward,
optimiser) in a CUDA graph per batch shape after it has run eagerly ``warmup`` times: replaying
the graph costs one launch instead of hundreds, which is what a small model at a small batch is
bound by. The last, smaller batch of an epoch gets its own graph, so the epoch's maths does not
change. A step that cannot be captured falls back to eager execution with a warning, and so
does one whose first replay gives another loss than an eager step on the same batch from the
same state (the replay is checked once per captured shape; the eager result is kept when they
differ).
"""

from __future__ import annotations

from typing import Any

import torch


class StepState:
    """A copy of what one step changes: weights, buffers, optimiser state, the epoch's sums,
    the RNG. :meth:`restore` writes it back in place, into the tensors a graph refers to."""

    def __init__(self, strategy: Any) -> None:
        model, optimizer = strategy.model, strategy.optimizer
        self.tensors = [t.detach().clone() for t in state_tensors(model, optimizer)]
        self.other = {
            (i, k): v
            for i, state in enumerate(optimizer.state.values())
            for k, v in state.items()
            if not torch.is_tensor(v)
        }
        self.total = strategy.total.clone()
        self.cpu_rng = torch.get_rng_state()
        cuda = strategy.device.type == "cuda"
        self.cuda_rng = torch.cuda.get_rng_state(strategy.device) if cuda else None

    def restore(self, strategy: Any) -> None:
        model, optimizer = strategy.model, strategy.optimizer
        with torch.no_grad():
            for live, saved in zip(state_tensors(model, optimizer), self.tensors, strict=True):
                live.copy_(saved)
        for i, state in enumerate(optimizer.state.values()):
            for k in state:
                if (i, k) in self.other:
                    state[k] = self.other[i, k]
        strategy.total.copy_(self.total)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng, strategy.device)


def advance_rng(device: torch.device) -> None:
    torch.rand(1)
    if device.type == "cuda":
        torch.rand(1, device=device)


def state_tensors(model: torch.nn.Module, optimizer) -> list[torch.Tensor]:
    """The tensors a step writes: parameters, buffers and the optimiser's state tensors."""
    tensors = [p.data for p in model.parameters()] + list(model.buffers())
    for state in optimizer.state.values():
        tensors += [v for v in state.values() if torch.is_tensor(v)]
    return tensors


class CapturedStep:
    """One batch shape's step in a CUDA graph: copy the batch in, replay.

    The optimiser's learning rates are baked into the graph; :meth:`valid` tells when a
    callback has changed one (a schedule), and the strategy then captures anew.
    """

    def __init__(self, strategy: Any, example: torch.Tensor) -> None:
        self.strategy = strategy
        self.static_x = example.clone()
        self.checked = False  # the first replay is held against an eager step
        self.hyper = hyper_parameters(strategy.optimizer)
        strategy.optimizer.zero_grad(set_to_none=True)  # the graph allocates its own grads
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            summed = strategy._forward_backward(self.static_x)
            strategy.total += summed

    def valid(self) -> bool:
        return hyper_parameters(self.strategy.optimizer) == self.hyper

    def replay(self, xb: torch.Tensor) -> None:
        self.static_x.copy_(xb, non_blocking=True)
        self.graph.replay()


def hyper_parameters(optimizer) -> list[float]:
    """The learning rate of each param group (what schedules change)."""
    return [float(group["lr"]) for group in optimizer.param_groups]
