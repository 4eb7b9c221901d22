"""The run directory's writer: a callback of the loop that writes a run through its :class:`Run`.

The files, their names and their atomic writes are :class:`aekit.io.rundir.Run`'s; this
callback says when each is written. A new run's config.json and the epoch-0 checkpoint come
before the first step, so a run stopped in its first epoch resumes; after each epoch the best
weights (when improved), the checkpoint and the history.
"""

from __future__ import annotations

import os
from typing import Any

from ..io.checkpoint import write_config
from ..io.provenance import provenance
from ..io.rundir import Run
from .callbacks import Callback


class RunWriter(Callback):
    """Writes the run: at the start config.json (a new run) and the epoch-0 checkpoint; after
    each epoch the best weights (when improved), the checkpoint and the metrics.

    ``config`` is a new run's config.json entries beside the model's record, scaler and units
    (written with them); None when resuming: the start is recorded in ``resumes``.
    """

    def __init__(self, out: str | os.PathLike | Run, config: dict[str, Any] | None = None):
        self.run = out if isinstance(out, Run) else Run(out)
        self.config = config
        self.history: list[dict] = []  # the loop's history list (grows in place): figures

    def on_fit_start(self, loop) -> None:
        self.history = loop.state.history
        made = provenance(getattr(loop.strategy, "device", "cpu"), loop.config.precision)
        if self.config is not None:
            write_config(loop.model, self.run.path, {**self.config, "provenance": made})
        else:  # resumed (checked by check_resume in every process): recorded beside the start
            cfg = self.run.read_config()
            cfg["resumes"] = [*cfg.get("resumes", []), made]
            self.run.write_config(cfg)
        if loop.state.epoch == 0:  # resumable from the very first step
            self.run.write_checkpoint(loop.model, loop.optimizer, loop.state)
        elif loop.state.history:  # resumed: the checkpoint's history is the truth (a failed
            self.run.write_history(loop.state.history)  # write may have lagged)

    def on_epoch_end(self, loop, record, improved) -> None:
        if improved:
            self.run.write_best(loop.model.state_dict())
        self.run.write_checkpoint(loop.model, loop.optimizer, loop.state)
        self.run.write_history(loop.state.history)


class RestoreCheckpoint(Callback):
    """Loads the run's checkpoint once the loop has put the model and its optimiser on the
    device (a resume)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_fit_start(self, loop) -> None:
        loop.state = self.run.load_checkpoint(loop.model, loop.optimizer, lr=loop.config.lr)
