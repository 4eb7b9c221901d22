"""The HTML pieces of the run report: figures inline (a matplotlib PNG as base64, a Plotly
figure as a <div> whose plotly.js the page inlines once), tables, escaped text."""

from __future__ import annotations

import base64
import html
import io
from typing import Any


def png(fig, caption: str = "") -> str:
    """A matplotlib figure as an inline base64 PNG inside a <figure>; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    img = f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
    return _figure(img, caption, "png")


def plot(fig, caption: str = "", height: int = 380) -> str:
    """A Plotly figure as a <div> (plotly.js is inlined once by the page) inside a <figure>."""
    fig.update_layout(height=height, margin=dict(l=70, r=20, t=50, b=60), template="plotly_white")
    div = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return _figure(div, caption, "plotly")


def _figure(inner: str, caption: str, kind: str) -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="fig" data-kind="{kind}">{inner}{cap}</figure>'


def table(rows: list[dict[str, Any]] | dict[str, Any], cls: str = "") -> str:
    """An HTML table: a dict gives two columns (name, value), a list of dicts one row each."""
    if isinstance(rows, dict):
        body = "".join(
            f"<tr><th>{escape(k)}</th><td>{format_value(v)}</td></tr>" for k, v in rows.items()
        )
        return f'<table class="kv {cls}">{body}</table>'
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{format_value(r.get(c, ''))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def escape(text: Any) -> str:
    """``text`` as HTML text (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape(str(text))


def format_value(v: Any) -> str:
    """A table cell: floats to 5 significant digits, sequences joined, None as a dash."""
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, list | tuple):
        return escape(", ".join(str(x) for x in v) or "()")
    return escape("—" if v is None else v)


def plotly_go():
    """``plotly.graph_objects``, imported when a figure is made."""
    import plotly.graph_objects as go

    return go
