"""The run directory: the :class:`Run` that alone names its files and reads and writes them,
and its lock.

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
      density.safetensors      the mixture on the codes that ``aekit sample`` draws from
      loss.png, reconstructions.png, report.html
      .lock                    held (flock) by the one process writing the run

A run is resumable from the moment training starts: the writer
(:class:`aekit.training.writer.RunWriter`, a callback of the loop) writes config.json and an
epoch-0 checkpoint before the first step, so a run killed, interrupted or out of disk in its
first epoch continues with ``--resume``; ``model.safetensors`` appears once an epoch has
finished, so a run that never trained is never scored. Every file is written atomically
(:mod:`aekit.io.files`). This module imports nothing of ``training/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelFileError, RunLockedError, file_error
from .files import make_folder, remove_stale, write_json, write_jsonl
from .state import TrainState, load_checkpoint, save_checkpoint
from .tensors import read_tensors, save_tensors, upgrade_state_dict


class Run:
    """A run directory ``path``: every file name of a run, and the reads and writes of them.

    ``Run(out).config_file`` is ``out/config.json`` and so on; the readers refuse a missing or
    damaged file in one :class:`~aekit.errors.ModelFileError` line, and every writer writes
    atomically (a temporary name renamed into place), so a run killed at any instant holds
    the old file or the new one. Model folders (:func:`aekit.io.checkpoint.save`) and
    detector folders use the same names for their config.json and weights.
    """

    CONFIG = "config.json"
    BEST = "model.safetensors"
    START = "start.safetensors"
    CHECKPOINT = "checkpoint.safetensors"
    HISTORY = "metrics.jsonl"
    SUMMARY = "summary.json"
    DENSITY = "density.safetensors"
    LOSS_FIGURE = "loss.png"
    RECONSTRUCTIONS_FIGURE = "reconstructions.png"
    REPORT = "report.html"
    LOCK = ".lock"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # ---- the names --------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def best_file(self) -> Path:
        return self.path / self.BEST

    @property
    def start_file(self) -> Path:
        return self.path / self.START

    @property
    def checkpoint_file(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def history_file(self) -> Path:
        return self.path / self.HISTORY

    @property
    def summary_file(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def density_file(self) -> Path:
        return self.path / self.DENSITY

    @property
    def loss_figure(self) -> Path:
        return self.path / self.LOSS_FIGURE

    @property
    def reconstructions_figure(self) -> Path:
        return self.path / self.RECONSTRUCTIONS_FIGURE

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    @property
    def lock_file(self) -> Path:
        return self.path / self.LOCK

    # ---- what the folder holds ------------------------------------------------------------

    def has_best(self) -> bool:
        return self.best_file.is_file()

    def has_start(self) -> bool:
        return self.start_file.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint_file.is_file()

    def holds_run(self) -> bool:
        """True when the folder holds (part of) a run that --resume could continue or replace."""
        return self.checkpoint_file.exists() or self.best_file.exists()

    def started_files(self) -> list[str]:
        """The files a run stopped before its first epoch leaves (nothing to resume)."""
        return [n for n in (self.CONFIG, self.START, self.HISTORY) if (self.path / n).exists()]

    # ---- config.json ----------------------------------------------------------------------

    def read_config(self, *, named: str | os.PathLike | None = None) -> dict[str, Any]:
        """config.json as a dict, with one clear line for a missing or broken file (``named``:
        the path the user gave, for that line)."""
        cfg_path = self.config_file
        if not cfg_path.is_file():
            shown = self.path if named is None else named
            raise ModelFileError(f"{shown} is not an aekit run: no {self.CONFIG} in it")
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{cfg_path} is not valid JSON: {e}") from None
        if not isinstance(config, dict):
            raise ModelFileError(f"{cfg_path} is not an aekit config: it holds no JSON object")
        _check_records(config, cfg_path)
        return config

    def write_config(self, config: dict[str, Any]) -> Path:
        write_json(self.config_file, config)
        return self.config_file

    # ---- metrics.jsonl --------------------------------------------------------------------

    def read_history(self) -> list[dict[str, Any]]:
        """One record per finished epoch ([] before the first)."""
        path = self.history_file
        try:
            lines = path.read_text().splitlines() if path.is_file() else []
            return [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as e:
            raise ModelFileError(f"cannot read {path}: {e}") from None

    def write_history(self, history: list[dict[str, Any]]) -> None:
        write_jsonl(self.history_file, history)

    # ---- weights: the best epoch's, the warm start's, the checkpoint ----------------------

    def write_best(self, tensors: dict[str, torch.Tensor]) -> None:
        save_tensors(self.best_file, tensors)

    def read_best(self) -> dict[str, torch.Tensor]:
        return upgrade_state_dict(read_tensors(self.best_file)[0])

    def load_best(self, model) -> bool:
        """Put the best weights into ``model`` (eval mode); False before the first epoch."""
        model.eval()
        if not self.has_best():
            return False
        model.load_state_dict(self.read_best())
        return True

    def write_start(self, tensors: dict[str, torch.Tensor]) -> None:
        save_tensors(self.start_file, tensors)

    def read_start(self) -> dict[str, torch.Tensor]:
        return read_tensors(self.start_file)[0]

    def write_checkpoint(self, model, optimizer, state: TrainState) -> None:
        save_checkpoint(self.checkpoint_file, model, optimizer, state)

    def load_checkpoint(self, model, optimizer, lr: float | None = None) -> TrainState:
        return load_checkpoint(self.checkpoint_file, model, optimizer, lr=lr)

    # ---- summary.json ---------------------------------------------------------------------

    def write_summary(self, record: dict[str, Any]) -> Path:
        """Write summary.json: errors labelled with their ``units``."""
        write_json(self.summary_file, record)
        return self.summary_file

    def read_summary(self) -> dict[str, Any] | None:
        """summary.json, or None when training wrote none (no validation data)."""
        if not self.summary_file.is_file():
            return None
        return json.loads(self.summary_file.read_text())

    # ---- the lock -------------------------------------------------------------------------

    def lock(self) -> RunLock:
        return RunLock(self.path)


class RunLock:
    """An exclusive lock on a run directory for one writing process (``with RunLock(out):``).

    It is an ``flock`` on ``out/.lock``, which the kernel drops when the process dies, so the
    lock of a killed run never blocks the next one; taking it removes the temporary files a
    killed writer left (:func:`aekit.io.files.remove_stale`). A folder this lock created is
    removed again when nothing else was written into it.
    """

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> RunLock:
        import fcntl

        self.created = not self.out.exists()
        make_folder(self.out)
        path = Run(self.out).lock_file
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
        remove_stale(self.out)  # what a writer killed mid-write left (it no longer runs)
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
            if {p.name for p in self.out.iterdir()} <= {Run.LOCK}:
                Run(self.out).lock_file.unlink(missing_ok=True)
                self.out.rmdir()
        except OSError:
            pass


_RECORDS = ("model", "scaler", "units", "data", "training", "init", "budget", "provenance")


def _check_records(config: dict[str, Any], cfg_path: Path) -> None:
    """The records jobs read without further checks have their types (a hand-edited or
    damaged file is refused here, in one line, not deep inside a job)."""
    bad = next((k for k in _RECORDS if k in config and not isinstance(config[k], dict)), None)
    data = config.get("data", {}) if bad is None else {}

    def ints(v, n: int) -> bool:
        return isinstance(v, list) and len(v) == n and all(_positive_int(x) for x in v)

    checks = {
        "source": lambda v: isinstance(v, str),
        "data_dir": lambda v: v is None or isinstance(v, str),
        "image_shape": lambda v: v is None or ints(v, 3),
        "color": lambda v: v is None or v in ("auto", "gray", "rgb"),
        "resize": lambda v: v is None or ints(v, 2),
    }
    field = next((k for k, ok in checks.items() if k in data and not ok(data[k])), None)
    if bad is not None or field is not None:
        what = f"'{bad}' record" if bad is not None else f"data record's '{field}'"
        raise ModelFileError(f"{cfg_path} is damaged: its {what} is malformed")


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31


def check_resume(out: str | os.PathLike, device, precision: str) -> None:
    """Hold a resume against how the run was made (:func:`resume_check`): refused in one line
    when it cannot give the run's result, one warning line when it differs but can."""
    import warnings

    from .provenance import provenance, resume_check

    cfg = Run(out).read_config()
    streamed = bool(cfg.get("data", {}).get("stream"))
    said = resume_check(cfg.get("provenance"), provenance(device, precision), streamed)
    if said:
        warnings.warn(
            f"resuming {out} with another {'; '.join(said)}; the run continues",
            RuntimeWarning,
            stacklevel=2,
        )


def holds_run(out: str | os.PathLike) -> bool:
    """True when ``out`` holds (part of) a run that --resume could continue or replace."""
    return Run(out).holds_run()


def load_best(out: str | os.PathLike, model) -> bool:
    """Put the run's best weights into ``model`` (eval mode); False before the first epoch."""
    return Run(out).load_best(model)


def write_summary(out: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write the run's summary.json (atomically): errors labelled with their ``units``."""
    return Run(out).write_summary(record)


def read_summary(out: str | os.PathLike) -> dict[str, Any] | None:
    """The run's summary.json, or None when training wrote none (no validation data)."""
    return Run(out).read_summary()
