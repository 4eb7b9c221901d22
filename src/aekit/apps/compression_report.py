"""What a compression cost and gave: every byte of the file in bits per pixel, the entropy
model's estimate, the encode and decode speeds, and the decoded rows' PSNR, SSIM and largest
error. :class:`CompressionReport` is the record of both codecs (the quantised-latent rows of
:mod:`aekit.apps.compression` and the spatial codec of :mod:`aekit.apps.codec`);
:func:`compression_report` measures one for the rows' codec.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..functional.rate import bits_per_pixel, mean_psnr, mean_ssim
from .compression import check_data, compress, decompress, estimated_bits, file_step, image_shape

__all__ = ["CompressionReport", "compression_report", "pixel_max"]


@dataclass
class CompressionReport:
    """What one compression cost and gave; bpp counts every byte of the file."""

    images: int
    pixels_per_image: int
    bytes: int
    bpp: float
    estimated_bpp: float  # the entropy models' -log2 P of what the file codes, without header
    encode_images_per_s: float | None  # None: not measured (the file was given, not encoded)
    decode_images_per_s: float
    psnr: float | None = None  # dB, of the mean squared error over the set
    ssim: float | None = None
    data_range: float | None = None
    step: float | None = None  # the residual layer's step; None: the code alone
    max_abs_error: float | None = None  # largest |x - x_tilde| over every value

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["psnr"] is not None and not np.isfinite(d["psnr"]):
            d["psnr"] = None  # lossless (JSON has no infinity); max_abs_error says 0
        return d

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        out = [
            f"{self.images} images, {self.bytes} bytes, {self.bpp:.4f} bits per pixel "
            f"(entropy model's estimate {self.estimated_bpp:.4f} without the header)",
            ", ".join(
                f"{what} {speed:,.0f} images/s"
                for what, speed in (
                    ("encode", self.encode_images_per_s),
                    ("decode", self.decode_images_per_s),
                )
                if speed is not None  # only what was timed here
            ),
        ]
        if self.step is not None:
            exact = " (lossless)" if self.max_abs_error == 0 else ""
            out.append(
                f"residual step {self.step:g}: every value within {self.step / 2:g} of the "
                f"original, largest error {self.max_abs_error:g}{exact}"
            )
        if self.psnr is not None:
            ssim = "" if self.ssim is None else f", SSIM {self.ssim:.4f}"
            out.append(f"PSNR {self.psnr:.2f} dB{ssim} (data range {self.data_range:g})")
        return out


def compression_report(
    model,
    X: np.ndarray,
    data: bytes | None = None,
    data_range: float | None = None,
    step: float | None = None,
    names=None,
) -> tuple[CompressionReport, bytes, np.ndarray]:
    """(report, file bytes, decoded X_hat) for X: compress at ``step`` (unless ``data`` is
    given: then the file's own step counts), decode, time both, and score the decoded rows.
    Only what ran here is timed: given ``data``, the report has no encode speed (None).

    ``data_range`` is the PSNR/SSIM peak (default: :func:`pixel_max`). X_hat has X's shape.
    ``names`` are the images' file names, stored in the file.
    """
    encoded = data is None
    t0 = time.perf_counter()
    data = compress(model, X, step, names) if encoded else data
    t1 = time.perf_counter()
    step = file_step(model, data)
    X_hat = decompress(model, data)
    t2 = time.perf_counter()
    X, layout = check_data(model, X)
    X_hat = X_hat.reshape(len(X_hat), -1)  # rows, whatever shape the file gives back
    n = len(X_hat)
    c, h, w = image_shape(model)
    if data_range is None:
        data_range = pixel_max(model, X)
    report = CompressionReport(
        images=n,
        pixels_per_image=h * w,
        bytes=len(data),
        bpp=bits_per_pixel(len(data), n, h * w),
        estimated_bpp=estimated_bits(model, X, step) / (n * h * w),
        encode_images_per_s=n / max(t1 - t0, 1e-9) if encoded else None,
        decode_images_per_s=n / max(t2 - t1, 1e-9),
        psnr=mean_psnr(X_hat, X, data_range),
        ssim=mean_ssim(X_hat, X, (c, h, w), data_range)
        if c * h * w == X.shape[1] and h > 1
        else None,
        data_range=data_range,
        step=step,
        max_abs_error=float(np.max(np.abs(X_hat.astype(np.float64) - X))) if n else None,
    )
    return report, data, layout.unfold(X_hat)


def pixel_max(model, X: np.ndarray | None = None) -> float:
    """The images' peak value: the pixel maximum of the model's "image" scaler (x / max), else
    1 for data within [0, 1], else the data's range."""
    s = model.scaler
    if s is not None and s.kind == "image":
        return float(1.0 / s.scale[0])
    if X is None or (np.min(X) >= 0 and np.max(X) <= 1):
        return 1.0
    return float(np.max(X) - np.min(X))
