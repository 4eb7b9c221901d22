"""The run directory: what training writes, as a callback of the loop.

    runs/<name>/
      model.safetensors        best weights (lowest validation loss, else training loss)
      config.json              aekit version, model record, scaler, data and training settings
      metrics.jsonl            one JSON object per epoch
      checkpoint.safetensors   weights + optimiser + RNG state of the last epoch, for --resume
      loss.png, reconstructions.png

Every file is written atomically (:mod:`aekit.io.files`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..training.callbacks import Callback
from . import checkpoint as ckpt
from .files import write_jsonl

METRICS_FILE = "metrics.jsonl"


class RunWriter(Callback):
    """After each epoch: the best weights (when improved), the checkpoint, the metrics."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.history: list[dict] = []  # the run's epochs so far, for the figures

    def on_fit_start(self, loop) -> None:
        self.history = loop.state.history

    def on_epoch_end(self, loop, record, improved) -> None:
        if improved:
            ckpt.save_tensors(self.out / ckpt.MODEL_FILE, loop.model.state_dict())
        ckpt.save_checkpoint(
            self.out / ckpt.CHECKPOINT_FILE, loop.model, loop.optimizer, loop.state
        )
        write_jsonl(self.out / METRICS_FILE, loop.state.history)
        self.history = loop.state.history


def write_figures(out: Path, history, model, X_show, image_shape) -> None:
    """loss.png, and reconstructions.png for image data (when the weights are finite)."""
    from ..views import figures

    figures.save_figure(figures.loss_curve(history), out / "loss.png")
    if image_shape is not None and bool(torch.isfinite(next(model.parameters())).all()):
        X_show = X_show[:10]
        fig = figures.reconstructions(X_show, model.reconstruct_numpy(X_show), image_shape)
        figures.save_figure(fig, out / "reconstructions.png")


def load_best(out: Path, model) -> None:
    """Put the run's best weights (model.safetensors) into ``model`` and set eval mode."""
    best, _ = ckpt.read_tensors(out / ckpt.MODEL_FILE)
    model.load_state_dict(ckpt.upgrade_state_dict(best))
    model.eval()
