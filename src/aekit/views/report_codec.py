"""The rate-distortion section of a spatial codec's report, added through the section hook.

For a run of ``--model codec`` (:mod:`aekit.apps.codec`), the report's own rows (its
validation images, at most 64) are compressed at every rate knob of the one model, each
setting as one real .aek file, and beside them JPEG and WebP per image (Pillow), and JPEG XL
and AVIF where ``imagecodecs`` / Pillow's AVIF are installed: bits per pixel counting every
byte, PSNR of the 8-bit decoded images (peak 255). The curves are measured when the report is
built; nothing is taken from a benchmark.
"""

from __future__ import annotations

import io

import numpy as np

from .report_html import plot, table
from .report_sections import RunContext, Section, register_section

MAX_IMAGES = 64


def _pixels(ctx: RunContext) -> list[np.ndarray]:
    """The shown rows as 8-bit images (H, W) or (H, W, 3); for a run on crops, the whole
    images they were cut from (its held-out images, by default)."""
    c, h, w = ctx.image_shape
    whole = ctx.extra.get("whole_images")
    x = whole if whole else ctx.X[:MAX_IMAGES].reshape(-1, c, h, w)
    x = [np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8) for v in x]
    return [v[0] if c == 1 else v.transpose(1, 2, 0) for v in x]


def _psnr(decoded, originals) -> float | None:
    sq = sum(
        float(np.sum((d.astype(np.float64) - o) ** 2))
        for d, o in zip(decoded, originals, strict=True)
    )
    mse = sq / sum(o.size for o in originals)
    return None if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def _pillow(images, fmt: str, **options) -> tuple[int, list[np.ndarray]]:
    from PIL import Image

    mode = "L" if images[0].ndim == 2 else "RGB"
    blobs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format=fmt, **options)
        blobs.append(buf.getvalue())
    decoded = [np.asarray(Image.open(io.BytesIO(b)).convert(mode)) for b in blobs]
    return sum(map(len, blobs)), decoded


def _peers(images) -> dict[str, list[tuple[float, float]]]:
    """(bpp, PSNR) points of the classical codecs that are installed here."""
    from PIL import features

    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    runs = {
        "JPEG": [("JPEG", dict(quality=q, optimize=True)) for q in (10, 30, 50, 70, 90)],
        "WebP": [("WEBP", dict(quality=q, method=4)) for q in (5, 30, 50, 70, 90)],
    }
    if features.check("avif"):
        runs["AVIF"] = [("AVIF", dict(quality=q, speed=6)) for q in (10, 30, 50, 70, 90)]
    out: dict[str, list[tuple[float, float]]] = {}
    for name, settings in runs.items():
        pts = []
        for fmt, options in settings:
            n, decoded = _pillow(images, fmt, **options)
            psnr = _psnr(decoded, images)
            if psnr is not None:
                pts.append((8.0 * n / pixels, psnr))
        out[name] = sorted(pts)
    try:
        import imagecodecs as ic
    except ImportError:
        return out
    pts = []
    for d in (8.0, 4.0, 2.0, 1.0, 0.5):
        blobs = [ic.jpegxl_encode(im, distance=d, effort=5) for im in images]
        psnr = _psnr([ic.jpegxl_decode(b) for b in blobs], images)
        if psnr is not None:
            pts.append((8.0 * sum(map(len, blobs)) / pixels, psnr))
    out["JPEG XL"] = sorted(pts)
    return out


def _what(ctx: RunContext, n: int) -> str:
    if ctx.extra.get("whole_images"):
        return f"the {n} whole image(s) that {ctx.shown} are tiles of"
    return f"{n} of {ctx.shown}"


@register_section
def rate_distortion(ctx: RunContext) -> Section | None:
    """The codec's rate-distortion curve over its knob, beside the classical codecs."""
    from ..apps import codec

    if not codec.is_spatial(ctx.model) or ctx.image_shape is None or len(ctx.X) == 0:
        return None
    import plotly.graph_objects as go

    images = _pixels(ctx)
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    chw = [
        (im[None] if im.ndim == 2 else im.transpose(2, 0, 1)).astype(np.float32) for im in images
    ]
    levels = ctx.model.latent.levels
    rows, ours = [], []
    for q in np.linspace(0, levels - 1, max(2 * levels - 1, 1)):
        data = codec.compress_images(ctx.model, chw, quality=float(q), units="as-is")
        out = [np.rint(v).astype(np.uint8) for v in list(codec.decompress_images(ctx.model, data))]
        out = [
            v[0] if im.ndim == 2 else v.transpose(1, 2, 0)
            for v, im in zip(out, images, strict=True)
        ]
        bpp, psnr = 8.0 * len(data) / pixels, _psnr(out, images)
        ours.append((bpp, psnr if psnr is not None else float("nan")))
        rows.append(
            {
                "knob q": f"{q:g}",
                "bytes": len(data),
                "bpp": f"{bpp:.4f}",
                "PSNR dB": f"{psnr:.2f}" if psnr else "lossless",
            }
        )
    fig = go.Figure(
        go.Scatter(
            x=[p[0] for p in ours],
            y=[p[1] for p in ours],
            name="aekit (one model)",
            mode="lines+markers",
        )
    )
    for name, pts in _peers(images).items():
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts], y=[p[1] for p in pts], name=name, mode="lines+markers"
            )
        )
    fig.update_layout(
        title=f"Rate and distortion on {_what(ctx, len(images))}",
        xaxis_title="bits per pixel (every byte of the file)",
        yaxis_title="PSNR (dB, 8-bit output)",
    )
    body = plot(
        fig,
        "Each point of aekit is one .aek file of these images at one rate knob of the same "
        "model; the others code each image on its own.",
    ) + table(rows)
    return Section("Rate and distortion", body, "rate")
