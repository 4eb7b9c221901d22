"""What varies around the one loop: callbacks see it at fixed points and may stop it.

A callback overrides any of the hooks; ``loop`` is the running :class:`aekit.training.loop.Loop`
(``loop.model``, ``loop.optimizer``, ``loop.state``, ``loop.config``; set
``loop.stop_training = True`` to stop after the current epoch). A model part whose objective
changes with time (a VAE's KL warm-up) defines ``on_epoch_start(epoch)``, and
:class:`PartSchedules`, which the loop always runs first, calls it; the run directory's writer
and the estimators' best-weights keeper are callbacks too.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class: every hook does nothing."""

    def on_fit_start(self, loop) -> None:
        """Before the first epoch of this call (also when resuming)."""

    def on_epoch_start(self, loop, epoch: int) -> None:
        """Before epoch ``epoch`` (0-based) trains."""

    def on_batch_end(self, loop, samples: int) -> None:
        """After each step; ``samples`` done so far in this epoch. Keep it cheap."""

    def on_epoch_end(self, loop, record: dict[str, float], improved: bool) -> None:
        """After a finished, finite epoch; ``improved``: best monitored loss so far."""

    def on_fit_end(self, loop) -> None:
        """After the last epoch of this call (not after an exception)."""


class PartSchedules(Callback):
    """Calls ``on_epoch_start(epoch)`` of every submodule of the model that defines it."""

    def on_fit_start(self, loop) -> None:
        self.parts = [
            m for m in loop.model.modules() if m is not loop.model and hasattr(m, "on_epoch_start")
        ]

    def on_epoch_start(self, loop, epoch: int) -> None:
        for part in self.parts:
            part.on_epoch_start(epoch)


class BestWeights(Callback):
    """Keeps a copy of the weights of the best epoch, on the CPU; :meth:`restore` puts them back.

    ``only_with_validation``: keep nothing unless the loop has validation data (then the last
    epoch's weights stay, as scikit-learn's estimators without early stopping do).
    """

    def __init__(self, only_with_validation: bool = False) -> None:
        self.only_with_validation = only_with_validation
        self.best: dict[str, Any] | None = None

    def on_epoch_end(self, loop, record, improved) -> None:
        if improved and (loop.has_validation or not self.only_with_validation):
            self.best = {k: v.detach().cpu().clone() for k, v in loop.model.state_dict().items()}

    def restore(self, model) -> bool:
        """Load the best weights into ``model``; False when none were kept."""
        if self.best is None:
            return False
        model.load_state_dict(self.best)
        return True


class Progress(Callback):
    """A tqdm bar per epoch: samples/s and the running loss (read every 50 steps)."""

    def __init__(self) -> None:
        self.bar = None
        self.steps = 0

    def on_epoch_start(self, loop, epoch: int) -> None:
        from tqdm.auto import tqdm

        self.steps = 0
        self.bar = tqdm(
            total=loop.n_train,
            desc=f"epoch {epoch + 1}/{loop.config.epochs}",
            unit="sample",
            unit_scale=True,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
            disable=None,  # no bar when stderr is not a terminal (logs, pipes): it would only
        )  # leave carriage-return debris there; metrics.jsonl has every epoch

    def on_batch_end(self, loop, samples: int) -> None:
        bar = self.bar
        if bar is None or bar.disable:  # no terminal: no bar, and no host sync for its loss
            return
        bar.update(samples - bar.n)
        self.steps += 1
        if samples >= loop.n_train or self.steps % 50 == 0:  # a host sync: not every step
            bar.set_postfix(loss=f"{loop.strategy.running_loss(samples):.5g}", refresh=False)

    def on_epoch_end(self, loop, record, improved) -> None:
        self._close()

    def on_fit_end(self, loop) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
