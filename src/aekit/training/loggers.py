"""Metrics where people look: TensorBoard and MLflow as callbacks of the one loop.

Each logger is a :class:`RunLogger`: a :class:`~aekit.training.Callback` that also hears
about the run it logs (:meth:`RunLogger.begin_run` before the first epoch, with the run's
folder, settings and a few validation rows; :meth:`RunLogger.end_run` once the run directory
is complete, also after a failure). :func:`aekit.train` (``callbacks=[...]``) and
``aekit train --tensorboard DIR`` / ``--mlflow`` drive them. Neither package is a dependency:
each is an optional extra (``pip install aekit[tensorboard]``, ``aekit[mlflow]``) imported
when a logger is made, so a missing one fails in one line before anything is written. Under
torchrun only rank 0 logs. A logging backend that fails in the middle of a run (a server gone,
a full disk) gives one warning and logs nothing more; training goes on.

Both continue on ``--resume``: TensorBoard in the same folder with the epoch as the step (the
curves continue; events of epochs the resumed run repeats are purged; a new run refuses a
folder that holds another run's events), MLflow in the MLflow
run whose tag ``aekit.run_dir`` names the run's folder. A logger added only on resume first
logs the epochs the run already has.
"""

from __future__ import annotations

import importlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .callbacks import Callback
from .distributed import is_writer

N_IMAGES = 8  # validation images shown as reconstructions
RUN_TAG = "aekit.run_dir"  # the MLflow tag that finds a run's MLflow run again on --resume


def require(module: str, flag: str, extra: str) -> Any:
    """Import ``module`` or fail in one line naming the flag and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{flag} needs {extra}: pip install aekit[{extra}]") from None


@dataclass
class RunInfo:
    """What a logger knows of the run beyond the loop: where it is written, its settings
    (config.json's model, training, data, init and budget entries), the image shape (C, H, W)
    of image data, a few scaled validation rows (image data only) and whether it resumes."""

    out: Path
    settings: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int, int] | None = None
    samples: np.ndarray | None = None
    resumed: bool = False


class RunLogger(Callback):
    """A callback that logs a run somewhere outside its folder."""

    flag = ""  # the CLI flag, for messages

    def __init__(self) -> None:
        self.run: RunInfo | None = None
        self.active = False

    def begin_run(self, run: RunInfo) -> None:
        """Before the loop starts (after the run's lock is taken)."""
        self.run = run
        self.active = is_writer()

    def end_run(self, failed: bool) -> None:
        """After the run directory is complete (``failed``: training raised)."""

    def _guard(self, what: str, fn, *args) -> None:
        """Run a backend call; on failure warn once and stop logging (training goes on)."""
        if not self.active:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a logging backend must not stop training
            self.active = False
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            warnings.warn(
                f"{self.flag}: {what} failed ({first}); logging stopped, training goes on",
                RuntimeWarning,
                stacklevel=2,
            )


def scalar_tag(key: str) -> str:
    """metrics.jsonl's key as a TensorBoard tag: train_loss -> train/loss, val_loss ->
    val/loss, train_kl -> train/kl, seconds -> time/seconds."""
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix) :]}"
    return f"time/{key}"


def logged_values(record: dict[str, float]) -> dict[str, float]:
    """An epoch's record without its epoch number and non-finite values."""
    return {k: float(v) for k, v in record.items() if k != "epoch" and math.isfinite(float(v))}


class TensorBoardLogger(RunLogger):
    """Per epoch (step = epoch, 1-based): every value of metrics.jsonl as a scalar
    (:func:`scalar_tag`), and for image data a grid of validation images over their
    reconstructions (tag ``reconstructions``; a denoising model's noisy inputs between)."""

    flag = "--tensorboard"

    def __init__(self, log_dir: str | Path, images: int = N_IMAGES) -> None:
        super().__init__()
        require("tensorboard", self.flag, "tensorboard")
        self.log_dir = Path(log_dir)
        self.images = int(images)
        self.writer = None

    def begin_run(self, run: RunInfo) -> None:
        super().begin_run(run)
        if self.active and not run.resumed and self._has_events():
            raise ConfigError(
                f"--tensorboard {self.log_dir} already holds the events of another run; give "
                "each run its own folder (tensorboard --logdir on their parent shows them side "
                "by side), or pass --resume to continue that run"
            )

    def _has_events(self) -> bool:
        return any(self.log_dir.glob("events.out.tfevents.*"))

    def on_fit_start(self, loop) -> None:
        if not self.active:
            return
        fresh = not self._has_events()
        self._guard("opening the log folder", self._open, loop.state.epoch + 1)
        if fresh and loop.state.history:  # added on resume: the epochs the run already has
            for record in loop.state.history:
                self._guard("writing scalars", self._scalars, record)

    def _open(self, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events at or after the first step of this call (written by a run that
        # was stopped after them but before its checkpoint) are dropped, so the curve is one
        self.writer = SummaryWriter(str(self.log_dir), purge_step=first_step)
        if first_step == 1 and self.run is not None:
            settings = json.dumps(self.run.settings, indent=1, default=str)
            self.writer.add_text("settings", f"```\n{settings}\n```", 0)

    def on_epoch_end(self, loop, record, improved) -> None:
        self._guard("writing scalars", self._scalars, record)
        run = self.run
        if run is not None and run.samples is not None and run.image_shape is not None:
            self._guard("writing images", self._images, loop.model, record["epoch"])
        self._guard("flushing", self._flush)

    def _scalars(self, record: dict) -> None:
        step = int(record["epoch"])
        for key, value in logged_values(record).items():
            self.writer.add_scalar(scalar_tag(key), value, step)

    def _images(self, model, step: int) -> None:
        grid = reconstruction_grid(model, self.run.samples[: self.images], self.run.image_shape)
        self.writer.add_image("reconstructions", grid, step, dataformats="CHW")

    def _flush(self) -> None:
        self.writer.flush()

    def end_run(self, failed: bool) -> None:
        if self.writer is not None:
            self._guard("closing", self.writer.close)
            self.writer = None


def reconstruction_grid(model, X: np.ndarray, image_shape) -> np.ndarray:
    """(C, rows*H, n*W) in [0, 1]: inputs over (noisy inputs and) reconstructions."""
    noise = getattr(getattr(model, "config", None), "noise", None)
    rows = [X]
    if noise:
        from ..data.noise import corrupt

        rows.append(corrupt(X, noise, 0))
    rows.append(model.reconstruct_scaled(rows[-1]))  # deterministic code: draws no randomness
    c, h, w = image_shape
    n = len(X)
    grid = np.ones((c, len(rows) * (h + 1) - 1, n * (w + 1) - 1), np.float32)
    for r, block in enumerate(rows):
        images = np.clip(np.asarray(block, np.float32).reshape(n, c, h, w), 0, 1)
        for i in range(n):
            grid[:, r * (h + 1) : r * (h + 1) + h, i * (w + 1) : i * (w + 1) + w] = images[i]
    return grid


class MLflowLogger(RunLogger):
    """One MLflow run per aekit run: params = the run's settings (flattened, ``training.lr``),
    metrics per epoch under metrics.jsonl's names (step = epoch), the run directory's files as
    artifacts at the end, status FINISHED or FAILED. ``tracking_uri`` None: MLflow's default
    (``MLFLOW_TRACKING_URI``); ``experiment`` None: ``MLFLOW_EXPERIMENT_NAME`` or "Default".
    On resume, settings that changed (epochs, lr, ...) are tags ``resumed.<name>``: MLflow's
    params cannot change."""

    flag = "--mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None) -> None:
        super().__init__()
        require("mlflow", self.flag, "mlflow")
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.client = None
        self.run_id: str | None = None
        self.logged_before = False  # the MLflow run already has metrics (a resumed run)

    def begin_run(self, run: RunInfo) -> None:
        super().begin_run(run)
        if not self.active:
            return
        try:
            self._start(run)
        except Exception as e:  # noqa: BLE001 - one line for a bad URI, an unreachable server
            self.active = False
            where = self.tracking_uri or "the default tracking URI"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"{self.flag}: cannot log to {where}: {first}") from None

    def _start(self, run: RunInfo) -> None:
        import os

        from mlflow.tracking import MlflowClient

        self.client = client = MlflowClient(tracking_uri=self.tracking_uri)
        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        found = client.get_experiment_by_name(name)
        exp_id = found.experiment_id if found is not None else client.create_experiment(name)
        where = str(run.out.resolve())
        previous = None
        if run.resumed:
            hits = client.search_runs(
                [exp_id],
                filter_string=f"tags.`{RUN_TAG}` = '{_quoted(where)}'",
                max_results=1,
                order_by=["attributes.start_time DESC"],  # the latest run of this folder
            )
            previous = hits[0] if hits else None
        params = flat_params(run.settings)
        if previous is None:
            made = client.create_run(exp_id, tags={RUN_TAG: where}, run_name=run.out.name)
            self.run_id = made.info.run_id
            self._params(params)
            return
        self.run_id = previous.info.run_id
        self.logged_before = bool(previous.data.metrics)
        client.update_run(self.run_id, status="RUNNING")
        have = previous.data.params
        self._params({k: v for k, v in params.items() if k not in have})
        for key, value in params.items():
            if key in have and have[key] != value:
                client.set_tag(self.run_id, f"resumed.{key}", value)

    def _params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def on_fit_start(self, loop) -> None:
        if self.active and not self.logged_before and loop.state.history:
            for record in loop.state.history:  # added on resume: the epochs the run has
                self._guard("logging metrics", self._metrics, record)

    def on_epoch_end(self, loop, record, improved) -> None:
        self._guard("logging metrics", self._metrics, record)

    def _metrics(self, record: dict) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(record["epoch"])
        values = logged_values(record)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()]
        )

    def end_run(self, failed: bool) -> None:
        if self.run_id is None:
            return
        self._guard("logging the run directory", self._artifacts)
        status = "FAILED" if failed else "FINISHED"
        self._guard("ending the MLflow run", self.client.set_terminated, self.run_id, status)

    def _artifacts(self) -> None:
        out = self.run.out
        for path in sorted(out.rglob("*")):
            rel = path.relative_to(out)
            if not path.is_file() or any(p.startswith(".") for p in rel.parts):
                continue  # the lock, and temporary files of atomic writes
            parent = rel.parent.as_posix()
            self.client.log_artifact(self.run_id, str(path), None if parent == "." else parent)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def flat_params(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: ``{"training": {"lr": 0.001}}`` -> ``training.lr``;
    lists as JSON; values cut to MLflow's 6,000 characters."""
    params: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            params.update(flat_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[name] = text[:6000]
    return params
