"""The sections of a run report (:mod:`aekit.views.report`), in page order, and the hook.

Each section is a function ``section(ctx: RunContext) -> Section | None`` (None: nothing to
show for this run). :data:`SECTIONS` holds them in page order; another module adds its own with
:func:`register_section` (the anomaly detector's scores are added this way, see
:mod:`aekit.views.report_anomaly`). Figures are interactive Plotly plots (:func:`plot`) where
hovering, zooming or hiding a class helps, and inline matplotlib PNGs (:func:`png`) for image
grids (:mod:`aekit.views.report_html`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import figures
from .report_html import escape, plot, plotly_go, png, table


@dataclass
class RunContext:
    """What the sections read: the run, its model and the rows the report shows (scaled)."""

    run: Path
    config: dict[str, Any]
    history: list[dict[str, float]]
    model: Any
    X: np.ndarray  # (N, D_in) the rows shown, in the model's scaled space
    labels: np.ndarray | None  # (N,) class labels, where the data has them
    image_shape: tuple[int, int, int] | None
    shown: str  # what the rows are, in words
    extra: dict[str, Any] = field(default_factory=dict)  # hooks' inputs (anomaly_labels)


@dataclass
class Section:
    """A titled part of the page; ``body`` is HTML."""

    title: str
    body: str
    anchor: str = ""


SectionFn = Callable[[RunContext], "Section | None"]
SECTIONS: list[SectionFn] = []


def register_section(fn: SectionFn) -> SectionFn:
    """Add a section to every report (after those already registered); usable as a decorator.

    Parameters
    ----------
    fn : callable
        ``fn(ctx: RunContext) -> Section | None``; None leaves the section out for that run.

    Returns
    -------
    callable
        ``fn`` itself.
    """
    if fn not in SECTIONS:
        SECTIONS.append(fn)
    return fn


def _model_input(ctx: RunContext) -> np.ndarray:
    """What the model reconstructs from: the rows, noised for a denoising model."""
    noisy = figures.noisy_inputs(ctx.model, ctx.X)
    return ctx.X if noisy is None else noisy


def reconstruction(ctx: RunContext) -> np.ndarray:
    """The model's reconstructions of the shown rows (from their noisy version if denoising)."""
    if "x_hat" not in ctx.extra:
        ctx.extra["x_hat"] = ctx.model.reconstruct_scaled(_model_input(ctx))
    return ctx.extra["x_hat"]


# ---- the sections ----------------------------------------------------------------------------


@register_section
def settings(ctx: RunContext) -> Section:
    from ..nn import MODELS

    m = ctx.config.get("model", {})
    spec = MODELS.get(m.get("name", ""))
    n_params = sum(p.numel() for p in ctx.model.parameters())
    best = min(ctx.history, key=lambda r: r.get("val_loss", r["train_loss"]))
    result = {
        "epochs trained": ctx.history[-1]["epoch"],
        "best epoch": best["epoch"],
        "parameters": f"{n_params:,}",
        "rows shown below": ctx.shown,
    }
    body = (
        f"<p><b>{escape(m.get('name'))}</b>: {escape(spec.summary if spec else '')}</p>"
        '<div class="cols">'
        f"<div><h3>Result</h3>{table(result)}<h3>Data</h3>{table(ctx.config.get('data', {}))}"
        f"<h3>Training</h3>{table(ctx.config.get('training', {}))}</div>"
        f"<div><h3>Model</h3>{table(m.get('config', {}))}</div></div>"
    )
    return Section("Settings and data", body, "settings")


@register_section
def metrics(ctx: RunContext) -> Section:
    import torch

    from ..functional.losses import reconstruction_metrics

    X_hat, X = reconstruction(ctx), ctx.X
    scaler = ctx.model.scaler
    kind = scaler.kind if scaler is not None else "none"
    names = {"mse": "MSE per element", "mae": "MAE per element", "psnr": "PSNR (dB)"}
    names["bce"] = "BCE per element (nats)"
    held: dict[str, Any] = {}
    if scaler is not None:  # as aekit eval: the data's units first, the scaled space labelled
        X_data = scaler.inverse_transform(X)
        span = float(X_data.max() - X_data.min()) or 1.0
        data = reconstruction_metrics(
            torch.from_numpy(scaler.inverse_transform(X_hat)), torch.from_numpy(X_data), span
        )
        held.update({f"{names[k]}, data units": v for k, v in data.items() if k != "bce"})
    scaled = reconstruction_metrics(torch.from_numpy(X_hat), torch.from_numpy(X))
    held.update({f"{names.get(k, k)}, scaled ({kind})": v for k, v in scaled.items()})
    units = figures.loss_units(ctx.model.config)
    keys = [k for k in ctx.history[-1] if k.startswith(("train_", "val_"))]
    legend = {k: units.get(k.split("_", 1)[1], "") for k in keys}
    body = (
        f"<h3>On the rows shown ({escape(ctx.shown)})</h3>{table(held)}"
        "<h3>Per epoch</h3>"
        + table(ctx.history, "metrics")
        + "<p class=note>"
        + "; ".join(f"<b>{escape(k)}</b>: {escape(v)}" for k, v in legend.items())
        + "; seconds per epoch and samples per second of training.</p>"
    )
    return Section("Metrics", body, "metrics")


@register_section
def losses(ctx: RunContext) -> Section:
    from plotly.subplots import make_subplots

    go = plotly_go()
    units = figures.loss_units(ctx.model.config)
    terms = [k[6:] for k in ctx.history[0] if k.startswith("train_")]
    titles = [f"{t} (total)" if t == "loss" else t for t in terms]
    fig = make_subplots(rows=1, cols=len(terms), subplot_titles=titles, horizontal_spacing=0.08)
    epochs = [r["epoch"] for r in ctx.history]
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2"]
    for i, term in enumerate(terms, 1):
        for split, dash in (("train", "solid"), ("val", "dash")):
            key = f"{split}_{term}"
            if key in ctx.history[0]:
                name = f"{'training' if split == 'train' else 'validation'} {term}"
                line = dict(dash=dash, color=palette[(i - 1) % len(palette)])
                ys = [r[key] for r in ctx.history]
                fig.add_trace(go.Scatter(x=epochs, y=ys, name=name, line=line), 1, i)
        fig.update_yaxes(title_text=units.get(term, term), row=1, col=i)
        fig.update_xaxes(title_text="epoch", row=1, col=i)
    caption = "Validation is scored with the full objective (no warm-up); hover for values."
    return Section("Loss curves", plot(fig, caption, height=420), "losses")


@register_section
def reconstructions(ctx: RunContext) -> Section:
    X, X_hat, n = ctx.X, reconstruction(ctx), 10
    noisy = figures.noisy_inputs(ctx.model, X[:n])
    if ctx.image_shape is not None:
        fig = figures.reconstructions(X[:n], X_hat[:n], ctx.image_shape, n, X_noisy=noisy)
        rows = (
            "input, noisy input, reconstruction" if noisy is not None else "input, reconstruction"
        )
        cap = f"The first rows shown; rows: {rows}." + _noise_note(ctx, noisy)
        return Section("Reconstructions", png(fig, cap), "recon")
    go = plotly_go()
    fig = go.Figure()
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for i, color in zip(range(min(4, len(X))), colors, strict=False):
        line = dict(color=color)
        fig.add_trace(go.Scatter(y=X[i], name=f"row {i}: input", mode="lines+markers", line=line))
        line = dict(color=color, dash="dot")
        fig.add_trace(go.Scatter(y=X_hat[i], name=f"row {i}: reconstruction", line=line))
    fig.update_layout(title="Inputs and reconstructions", xaxis_title="feature")
    fig.update_yaxes(title_text="value (scaled units)")
    cap = "Click a legend entry to hide it." + _noise_note(ctx, noisy)
    return Section("Reconstructions", plot(fig, cap), "recon")


def _noise_note(ctx: RunContext, noisy) -> str:
    if noisy is None:
        return ""
    return f" A denoising model: it reconstructs from the noisy input ({ctx.model.config.noise})."


@register_section
def errors(ctx: RunContext) -> Section:
    go = plotly_go()
    sq = (reconstruction(ctx) - ctx.X) ** 2  # (N, D) squared error per element
    parts = []
    if ctx.image_shape is not None:
        c, h, w = ctx.image_shape
        grid = sq.mean(axis=0).reshape(c, h, w).mean(axis=0)[::-1]
        fig = go.Figure(go.Heatmap(z=grid, colorscale="Viridis", colorbar_title="MSE"))
        fig.update_layout(title="Mean squared error per pixel (scaled units²)")
        fig.update_xaxes(title_text="column", scaleanchor="y", constrain="domain")
        fig.update_yaxes(title_text="row (from the bottom)", constrain="domain")
        fig.update_layout(width=620)
        parts.append(plot(fig, "Where the model reconstructs worst.", height=420))
    else:
        fig = go.Figure(go.Bar(y=sq.mean(axis=0)))
        fig.update_layout(title="Mean squared error per feature", xaxis_title="feature")
        fig.update_yaxes(title_text="MSE (scaled units²)")
        parts.append(plot(fig))
    if ctx.labels is not None:
        per_row = sq.mean(axis=1)
        classes = np.unique(ctx.labels)
        means = [per_row[ctx.labels == k].mean() for k in classes]
        sems = [per_row[ctx.labels == k].std() / np.sqrt((ctx.labels == k).sum()) for k in classes]
        bar = go.Bar(x=[str(k) for k in classes], y=means, error_y=dict(array=sems))
        fig = go.Figure(bar)
        fig.update_layout(title="Mean squared error per element, by class", xaxis_title="class")
        fig.update_yaxes(title_text="MSE (scaled units²)")
        parts.append(plot(fig, "Error bars: one standard error of the mean."))
    return Section("Errors per feature and class", "".join(parts), "errors")


@register_section
def codes(ctx: RunContext) -> Section:
    if not ctx.model.has_code:
        why = f"Model '{ctx.model.name}' is fully convolutional: it has no code to show."
        return Section("Codes", f"<p>{why}</p>", "codes")
    go = plotly_go()
    n = min(len(ctx.X), 2000)
    Z = ctx.model.encode_scaled(ctx.X[:n])
    labels = ctx.labels[:n] if ctx.labels is not None else np.zeros(n, dtype=int)
    if Z.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(2).fit(Z)
        Z2, ev = pca.transform(Z), pca.explained_variance_ratio_ * 100
        axes = [f"principal component {i + 1} ({ev[i]:.0f}% of variance)" for i in range(2)]
        how = f"The {Z.shape[1]}-D codes projected on their first two principal components."
    elif Z.shape[1] == 2:
        Z2, axes, how = Z, ["code 1", "code 2"], "The 2-D codes as they are."
    else:
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, n)
        Z2 = np.column_stack([Z[:, 0], labels + jitter])
        axes, how = ["code", "class (jittered)"], "The 1-D code of each row, by class."
    fig = go.Figure()
    for k in np.unique(labels):
        mask = labels == k
        name = f"class {k}" if ctx.labels is not None else "rows"
        fig.add_trace(go.Scatter(x=Z2[mask, 0], y=Z2[mask, 1], mode="markers", name=name,
                                   marker=dict(size=5, opacity=0.7)))  # fmt: skip
    fig.update_layout(title="Codes of the rows shown", xaxis_title=axes[0], yaxis_title=axes[1])
    caption = how + (" Click a class in the legend to hide it." if ctx.labels is not None else "")
    return Section("Codes", plot(fig, caption, height=520), "codes")


@register_section
def generation(ctx: RunContext) -> Section | None:
    if getattr(ctx.model.config, "latent", "") != "gaussian" or ctx.image_shape is None:
        return None
    from ..apps.generation import interpolate, sample

    samples = sample(ctx.model, 20, seed=0)
    grid = figures.image_rows(
        [("", samples[:10]), ("", samples[10:])], ctx.image_shape, "Samples x = g(z), z ~ N(0, I)"
    )
    pairs = [(0, 1), (2, 3), (4, 5)] if len(ctx.X) >= 6 else [(0, len(ctx.X) - 1)]
    rows = [(f"{a} → {b}", interpolate(ctx.model, ctx.X[a], ctx.X[b], 10)) for a, b in pairs]
    line = figures.image_rows(rows, ctx.image_shape, "Decoded straight lines between two codes")
    body = png(grid, "Decoder means of 20 draws from the prior (seed 0).") + png(
        line, "Rows a → b: from the code of shown row a to that of row b, in 10 steps."
    )
    return Section("Samples and interpolations", body, "generation")
