"""The anomaly-scoring section of a run report, added through the report's section hook.

:func:`aekit.views.report_sections.register_section` is the hook: this module registers
:func:`anomaly_scores`, which uses :mod:`aekit.apps.anomaly` (the detector's per-row
reconstruction loss and its ROC-AUC) and leaves the report as it is when that module is absent.
It shows the histogram of the rows' scores (by class where the data has labels) and, when the
report is given 0/1 anomaly labels for its rows (``build_report(..., data=X,
anomaly_labels=y)`` or ``aekit report RUN --data X --anomaly-labels y.csv``), their ROC curve.
"""

from __future__ import annotations

import numpy as np

from . import figures
from .report_html import plot
from .report_sections import RunContext, Section, register_section


@register_section
def anomaly_scores(ctx: RunContext) -> Section | None:
    """Anomaly scores (each row's reconstruction loss): histogram, and ROC given labels."""
    try:
        from ..apps import anomaly, anomaly_metrics
    except ImportError:  # the detector is not part of this installation
        return None
    import plotly.graph_objects as go

    scores = anomaly.per_sample_loss(ctx.model, ctx.X)  # (N,), higher = more abnormal
    unit = figures.loss_units(ctx.model.config)["recon"].replace("−log p(x|z)", "−log p(x|ẑ)")
    y = ctx.extra.get("anomaly_labels")
    if y is not None:
        y = anomaly_metrics.read_labels(y, len(scores)) if isinstance(y, str) else y
        y = anomaly_metrics.check_labels(y, len(scores))
        groups = {"normal": y == 0, "anomaly": y == 1}
    elif ctx.labels is not None:
        groups = {f"class {k}": ctx.labels == k for k in np.unique(ctx.labels)}
    else:
        groups = {"rows": np.ones(len(scores), dtype=bool)}
    fig = go.Figure()
    for name, mask in groups.items():
        fig.add_trace(go.Histogram(x=scores[mask], name=name, opacity=0.6, nbinsx=40))
    fig.update_layout(barmode="overlay", title="Anomaly score of each row: its reconstruction loss")
    fig.update_xaxes(title_text=f"score: {unit}")
    fig.update_yaxes(title_text="rows")
    parts = [plot(fig, "Higher scores are more unusual to the model. Click a group to hide it.")]
    if y is not None:
        from sklearn.metrics import roc_curve

        fpr, tpr, _ = roc_curve(y, scores)
        auc = anomaly_metrics.roc_pr_auc(y, scores)
        roc = go.Figure(go.Scatter(x=fpr, y=tpr, name="ROC", line_shape="hv"))
        roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], name="chance", line_dash="dot"))
        roc.update_layout(
            title=f"ROC: ROC-AUC {auc['roc_auc']:.3f}, PR-AUC {auc['pr_auc']:.3f}",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
        )
        parts.append(plot(roc, "Rows flagged as the threshold on the score moves.", height=440))
    return Section("Anomaly scores", "".join(parts), "anomaly")
