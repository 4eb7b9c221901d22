"""The run report: one self-contained HTML page a person opens in the browser.

:func:`build_report` reads a run directory (config.json, metrics.jsonl, model.safetensors),
scores the run's held-out rows and writes ``report.html``: settings and data, the metrics, each
loss term per epoch, reconstructions, errors per feature and class, the codes in 2-D, and
samples and interpolations for a Gaussian latent (the sections are in
:mod:`aekit.views.report_sections`). Everything is inline: plotly.js once, PNGs as base64, the
data in the plots, so the page requests nothing from the network.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..io.rundir import Run
from . import (
    report_anomaly,  # noqa: F401  (registers its section through the hook)
    report_codec,  # noqa: F401  (the same: a spatial codec's rate and distortion)
)
from . import report_sections as rs

REPORT_FILE = Run.REPORT
MAX_ROWS = 2000  # rows the report scores at most (enough for every view, and fast)
MAX_WHOLE_IMAGES = 8  # whole images a run on crops shows (its codec curve codes them all)

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; } header p { margin: 0; color: #c9d1e0; }
nav { padding: 8px 32px; background: #e8ebf0; position: sticky; top: 0; z-index: 10; }
nav a { margin-right: 16px; color: #234; text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { background: #fff; border-radius: 8px; padding: 8px 20px 16px; margin: 16px 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 19px; border-bottom: 1px solid #e3e6ea; padding-bottom: 6px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
th, td { border: 1px solid #e3e6ea; padding: 3px 8px; text-align: left; }
thead th, table.kv th { background: #f1f3f6; font-weight: 600; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
.cols { display: flex; gap: 32px; flex-wrap: wrap; }
figure { margin: 12px 0; } figure img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 13px; }
"""


def load_context(
    run: str | os.PathLike,
    data: Any = None,
    *,
    data_dir: str | os.PathLike | None = None,
    anomaly_labels: np.ndarray | str | os.PathLike | None = None,
    split: str | None = None,
    device: str = "cpu",
) -> rs.RunContext:
    """Read a finished run and pick the rows to show (scaled): see :func:`build_report`."""
    from ..io import checkpoint as ckpt

    run = Path(run)
    if not run.is_dir():
        raise ModelFileError(f"{run} is not a run directory (aekit train --out writes one)")
    config = ckpt.read_config(run)
    if "model" not in config:
        raise ModelFileError(
            f"{run} is not a training run (its config.json names no model); aekit report "
            "takes a folder written by aekit train"
        )
    history = _read_history(run)
    if not history or not Run(run).has_best():
        raise ModelFileError(
            f"{run} has not finished an epoch yet, so there is nothing to report; "
            f"continue it with: aekit train --resume --out {run}"
        )
    X, labels, model, shown, whole = _rows(run, config, data, data_dir, split, device)
    extra: dict[str, Any] = {}
    if whole:  # a run on crops: the whole images its shown tiles were cut from
        extra["whole_images"] = whole
    if anomaly_labels is not None:  # a file's path is read by the section (it knows N)
        path = isinstance(anomaly_labels, str | os.PathLike)
        extra["anomaly_labels"] = str(anomaly_labels) if path else np.asarray(anomaly_labels)
    shape = getattr(model.config, "image_shape", None)
    shape = tuple(shape) if shape else None
    return rs.RunContext(run, config, history, model, X, labels, shape, shown, extra)


def _read_history(run: Path) -> list[dict]:
    return Run(run).read_history()


def _rows(run: Path, config: dict, data, data_dir, split=None, device="cpu"):
    """(X scaled, labels, model, words): the run's held-out rows (the test split of MNIST-like
    sets, else its validation rows; :func:`aekit.apps.evaluate.scored_rows`), the rows
    ``split`` names, or all rows of ``data`` when given; at most MAX_ROWS of them."""
    from ..apps.evaluate import _scaled, scored_rows
    from ..io import checkpoint as ckpt
    from ..training.devices import resolve_device

    model = ckpt.load(run).to(resolve_device(device))
    ds, scored = scored_rows(run, data, split=split, data_dir=data_dir, limit=MAX_ROWS)
    X, ds = _scaled(model, ds)
    return X, ds.labels, model, scored["rows"], _whole_images(model, ds)


def _whole_images(model, ds) -> list[np.ndarray]:
    """Image files read as patches (a run on crops), under one scale for every pixel: the
    whole images (C, H, W) of the rows, scaled, at most MAX_WHOLE_IMAGES; else none."""
    from ..data.crops import whole_images

    scaler = model.scaler
    if ds.sources is None or ds.files is None or scaler is None or scaler.kind != "image":
        return []
    return [scaler.transform(a) for a in whole_images(ds)[:MAX_WHOLE_IMAGES]]


def render(ctx: rs.RunContext) -> str:
    """The page's HTML for a loaded run: every registered section that applies."""
    from plotly.offline import get_plotlyjs

    sections = [s for fn in rs.SECTIONS if (s := fn(ctx)) is not None]
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}" class="section"><h2>{html.escape(s.title)}</h2>{s.body}'
        "</section>"
        for s in sections
    )
    name = ctx.config.get("model", {}).get("name", "?")
    title = f"aekit run {ctx.run.name} ({name})"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(ctx.run.resolve()))} · "
        f"report by aekit {__version__} · {stamp}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>"
    )


def build_report(
    run: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    data: Any = None,
    data_dir: str | os.PathLike | None = None,
    anomaly_labels: np.ndarray | str | os.PathLike | None = None,
    split: str | None = None,
    device: str = "cpu",
) -> Path:
    """Write the run's report: one self-contained HTML file, atomically.

    Parameters
    ----------
    run : path
        A run directory written by ``aekit train`` that has finished at least one epoch.
    out : path, optional
        The HTML file to write (default: ``RUN/report.html``).
    data : str, path or array, optional
        Rows to show instead of the run's own held-out rows (the test split for MNIST and
        Fashion-MNIST, else its validation rows: what ``aekit eval`` scores), at most 2,000 of
        them; scaled with the run's scaler.
    split : {"all", "train", "val", "test"}, optional
        Which rows of the run's own data to show instead of the held-out ones.
    data_dir : path, optional
        Where MNIST-like sets live, when not where training found them.
    anomaly_labels : array of 0/1, or a labels file (.npy, .csv, .npz), optional
        One per row of ``data`` (1 = anomaly): adds the ROC of the anomaly scores
        (:mod:`aekit.views.report_anomaly`).
    device : str
        Where to compute the report's scores and figures (default: the CPU).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ModelFileError
        ``run`` is not a run, or has not finished an epoch.
    DataError
        The run's data cannot be found (pass ``data`` / ``data_dir``).
    FileSystemError
        ``out`` cannot be written (the message names it); nothing is left half-written.
    """
    from ..io.files import atomic_write

    ctx = load_context(
        run, data, data_dir=data_dir, anomaly_labels=anomaly_labels, split=split, device=device
    )
    path = Path(out) if out is not None else Run(run).report_file
    page = render(ctx)
    atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return path
