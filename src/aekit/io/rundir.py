"""The run directory: what training writes, as a callback of the loop, under a lock.

    runs/<name>/
      model.safetensors        best weights (lowest validation loss, else training loss)
      config.json              aekit version, model record, scaler, data and training settings
      metrics.jsonl            one JSON object per epoch: the training objective (train_loss,
                               val_loss and their terms) in the scaled space the model sees
      start.safetensors        the PCA warm start's weights (aekit.nn.init), when used: the
                               start competes with the epochs, also after --resume
      summary.json             after training: the best model's held-out MSE in the data's
                               units beside PCA's at the same code size ("units": "data"; the
                               scaled-space MSE labelled scaled_mse)
      checkpoint.safetensors   weights + optimiser + RNG state of the last epoch, for --resume
      loss.png, reconstructions.png
      .lock                    held (flock) by the one process writing the run

A run is resumable from the moment training starts: :class:`RunWriter` writes config.json and
an epoch-0 checkpoint before the first step, so a run killed, interrupted or out of disk in its
first epoch continues with ``--resume``; ``model.safetensors`` appears once an epoch has
finished, so a run that never trained is never scored. Every file is written atomically.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import RunLockedError, file_error
from ..training.callbacks import Callback
from . import checkpoint as ckpt
from .files import make_folder, write_json, write_jsonl
from .provenance import provenance, resume_check

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"


class RunLock:
    """An exclusive lock on a run directory for one writing process (``with RunLock(out):``).

    It is an ``flock`` on ``out/.lock``, which the kernel drops when the process dies, so the
    lock of a killed run never blocks the next one. A folder this lock created is removed again
    when nothing else was written into it.
    """

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> RunLock:
        import fcntl

        self.created = not self.out.exists()
        make_folder(self.out)
        path = self.out / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            self._cleanup()
            raise file_error(e, path, "lock") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.out} is being written by another aekit process (pid {holder}); wait "
                "for it to finish, or pick another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
        self._cleanup()

    def _cleanup(self) -> None:
        """Remove a folder this lock made when nothing but the lock file went into it."""
        if not self.created:
            return
        try:
            if {p.name for p in self.out.iterdir()} <= {LOCK_FILE}:
                (self.out / LOCK_FILE).unlink(missing_ok=True)
                self.out.rmdir()
        except OSError:
            pass


class RunWriter(Callback):
    """Writes the run: at the start config.json (a new run) and the epoch-0 checkpoint; after
    each epoch the best weights (when improved), the checkpoint and the metrics."""

    def __init__(self, out: str | Path, config: dict[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.config = config  # config.json's extra entries for a new run; None when resuming
        self.history: list[dict] = []  # the loop's history list (grows in place): figures

    def on_fit_start(self, loop) -> None:
        self.history = loop.state.history
        made = provenance(getattr(loop.strategy, "device", "cpu"), loop.config.precision)
        if self.config is not None:
            ckpt.write_config(loop.model, self.out, {**self.config, "provenance": made})
        else:  # resumed (checked by check_resume in every process): recorded beside the start
            cfg = ckpt.read_config(self.out)
            cfg["resumes"] = [*cfg.get("resumes", []), made]
            ckpt.write_json(self.out / ckpt.CONFIG_FILE, cfg)
        if loop.state.epoch == 0:  # resumable from the very first step
            self._checkpoint(loop)
        elif loop.state.history:  # resumed: the checkpoint's history is the truth (a failed
            write_jsonl(self.out / METRICS_FILE, loop.state.history)  # write may have lagged)

    def on_epoch_end(self, loop, record, improved) -> None:
        if improved:
            ckpt.save_tensors(self.out / ckpt.MODEL_FILE, loop.model.state_dict())
        self._checkpoint(loop)
        write_jsonl(self.out / METRICS_FILE, loop.state.history)

    def _checkpoint(self, loop) -> None:
        path = self.out / ckpt.CHECKPOINT_FILE
        ckpt.save_checkpoint(path, loop.model, loop.optimizer, loop.state)


def check_resume(out: Path, device, precision: str) -> None:
    """Hold a resume against how the run was made (:func:`resume_check`): refused in one line
    when it cannot give the run's result, one warning line when it differs but can."""
    cfg = ckpt.read_config(out)
    streamed = bool(cfg.get("data", {}).get("stream"))
    said = resume_check(cfg.get("provenance"), provenance(device, precision), streamed)
    if said:
        warnings.warn(
            f"resuming {out} with another {'; '.join(said)}; the run continues",
            RuntimeWarning,
            stacklevel=2,
        )


def holds_run(out: Path) -> bool:
    """True when ``out`` holds (part of) a run that --resume could continue or replace."""
    return (out / ckpt.CHECKPOINT_FILE).exists() or (out / ckpt.MODEL_FILE).exists()


def load_best(out: Path, model) -> bool:
    """Put the run's best weights into ``model`` (eval mode); False before the first epoch."""
    model.eval()
    if not (out / ckpt.MODEL_FILE).is_file():
        return False
    best, _ = ckpt.read_tensors(out / ckpt.MODEL_FILE)
    model.load_state_dict(ckpt.upgrade_state_dict(best))
    return True


def write_summary(out: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write the run's summary.json (atomically): errors labelled with their ``units``."""
    path = Path(out) / SUMMARY_FILE
    write_json(path, record)
    return path


def read_summary(out: str | os.PathLike) -> dict[str, Any] | None:
    """The run's summary.json, or None when training wrote none (no validation data)."""
    import json

    path = Path(out) / SUMMARY_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())
