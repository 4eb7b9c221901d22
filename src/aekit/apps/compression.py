"""Image compression with a quantised-latent model: real bitstreams, every byte counted.

:func:`compress` encodes rows X (N, D) in the data's own units (the model's scaler applies)
to the quantised code, then writes each code channel's N integers with constriction's range
coder under that channel's integer table (:meth:`QuantizedLatent.tables`), channel after
channel, behind the header of :mod:`aekit.io.bitstream`. :func:`decompress` checks the
header, decodes the integers with the same tables (built from the model's weights alone, so
both sides agree bit for bit) and decodes them with the model: the result equals
``model.reconstruct_numpy(X)`` exactly on the same machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import CompressedFileError, ConfigError, DataError
from ..functional.rate import bits_per_pixel, mean_psnr, mean_ssim
from ..io.bitstream import Header, model_hash, pack, unpack

__all__ = [
    "CompressionReport",
    "compress",
    "compression_report",
    "decompress",
    "estimated_bits",
    "image_shape",
    "pixel_max",
]


def _check_model(model) -> None:
    if getattr(model.config, "latent", None) != "quantized":
        raise ConfigError(
            f"model {model.name!r} has a {model.config.latent} latent: compression needs a "
            "quantised one (the compress preset, or latent quantized)"
        )


def image_shape(model) -> tuple[int, int, int]:
    """(C, H, W) of the model's images; (1, 1, D) for a model of plain rows."""
    return tuple(model.config.image_shape or (1, 1, model.config.input_dim))  # type: ignore


def _coder_models(model):
    """One constriction categorical model per code channel, and the channels' offsets lo."""
    import constriction  # its submodules are attributes, not importable modules

    Categorical = constriction.stream.model.Categorical
    m, lo, counts = model.latent.tables()
    # the counts are integers summing to a power of two: exact float64 probabilities, and
    # constriction's fixed-point conversion of them is deterministic
    return m, lo, [Categorical(c / c.sum(), perfect=False) for c in counts]


def compress(model, X: np.ndarray) -> bytes:
    """The .aek file's bytes for rows X (N, D) in the data's units.

    Raises
    ------
    ConfigError
        The model has no quantised latent.
    DataError
        X is empty, not 2-D, of another width, or not finite.
    """
    import constriction

    _check_model(model)
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0 or X.shape[1] != model.input_dim:
        raise DataError(
            f"data has shape {X.shape} but the model compresses (n, {model.input_dim}) with n >= 1"
        )
    if not np.isfinite(X).all():
        raise DataError("data contains NaN or infinite values; clean or impute them first")
    codes = model.encode_numpy(X)  # (N, L): m + k with integers k in [lo, hi]
    m, lo, coders = _coder_models(model)
    symbols = np.rint(codes - m).astype(np.int64) - lo  # (N, L) in 0 .. n_c - 1
    encoder = constriction.stream.queue.RangeEncoder()
    for c, coder in enumerate(coders):  # channel by channel: N i.i.d. symbols per call
        encoder.encode(np.ascontiguousarray(symbols[:, c], dtype=np.int32), coder)
    payload = encoder.get_compressed().astype("<u4").tobytes()
    header = Header(image_shape(model), len(X), codes.shape[1], model_hash(model))
    return pack(header, payload)


def decode_codes(model, data: bytes) -> np.ndarray:
    """The quantised codes (N, L) a file carries, after every check of its header."""
    import constriction

    _check_model(model)
    header, payload = unpack(data, model_hash(model))
    if header.shape != image_shape(model) or header.width != model.config.latent_dim:
        raise CompressedFileError("the compressed file's shape does not match the model")
    m, lo, coders = _coder_models(model)
    decoder = constriction.stream.queue.RangeDecoder(
        np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    )
    codes = np.empty((header.count, header.width), dtype=np.int64)
    for c, coder in enumerate(coders):
        codes[:, c] = decoder.decode(coder, header.count)
    # m + k in the model's float32, as QuantizedLatent.quantise adds them
    return (codes + lo).astype(np.float32) + m


def decompress(model, data: bytes) -> np.ndarray:
    """The reconstructions (N, D), in the data's units, of a file :func:`compress` wrote.

    Raises
    ------
    CompressedFileError
        The file is truncated, corrupt, of another format or written by another model.
    """
    return model.decode_numpy(decode_codes(model, data))


@dataclass
class CompressionReport:
    """What one compression cost and gave; bpp counts every byte of the file."""

    images: int
    pixels_per_image: int
    bytes: int
    bpp: float
    estimated_bpp: float  # the entropy model's -log2 P of the codes, without the header
    encode_images_per_s: float
    decode_images_per_s: float
    psnr: float | None = None  # dB, of the mean squared error over the set
    ssim: float | None = None
    data_range: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        out = [
            f"{self.images} images, {self.bytes} bytes, {self.bpp:.4f} bits per pixel "
            f"(entropy model's estimate {self.estimated_bpp:.4f} without the header)",
            f"encode {self.encode_images_per_s:,.0f} images/s, "
            f"decode {self.decode_images_per_s:,.0f} images/s",
        ]
        if self.psnr is not None:
            out.append(
                f"PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.4f} (data range {self.data_range:g})"
            )
        return out


def compression_report(
    model, X: np.ndarray, data: bytes | None = None, data_range: float | None = None
) -> tuple[CompressionReport, bytes, np.ndarray]:
    """(report, file bytes, decoded X_hat) for X: compress (unless ``data`` is given), decode,
    time both, and score the decoded rows against X.

    ``data_range`` is the PSNR/SSIM peak (default: :func:`pixel_max`).
    """
    t0 = time.perf_counter()
    data = compress(model, X) if data is None else data
    t1 = time.perf_counter()
    X_hat = decompress(model, data)
    t2 = time.perf_counter()
    n = len(X_hat)
    c, h, w = image_shape(model)
    if data_range is None:
        data_range = pixel_max(model, X)
    report = CompressionReport(
        images=n,
        pixels_per_image=h * w,
        bytes=len(data),
        bpp=bits_per_pixel(len(data), n, h * w),
        estimated_bpp=estimated_bits(model, X) / (n * h * w),
        encode_images_per_s=n / max(t1 - t0, 1e-9),
        decode_images_per_s=n / max(t2 - t1, 1e-9),
        psnr=mean_psnr(X_hat, X, data_range),
        ssim=mean_ssim(X_hat, X, (c, h, w), data_range)
        if c * h * w == X.shape[1] and h > 1
        else None,
        data_range=data_range,
    )
    return report, data, X_hat


def pixel_max(model, X: np.ndarray | None = None) -> float:
    """The images' peak value: the pixel maximum of the model's "image" scaler (x / max), else
    1 for data within [0, 1], else the data's range."""
    s = model.scaler
    if s is not None and s.kind == "image":
        return float(1.0 / s.scale[0])
    if X is None or (np.min(X) >= 0 and np.max(X) <= 1):
        return 1.0
    return float(np.max(X) - np.min(X))


def estimated_bits(model, X: np.ndarray) -> float:
    """sum over images and channels of -log2 P(y_hat): the entropy model's ideal code length."""
    import torch

    from ..functional.rate import bits_from_likelihoods

    codes = torch.as_tensor(model.encode_numpy(X))
    p = next(model.parameters())
    with torch.no_grad():
        lik = model.latent.prior.likelihood(codes.to(dtype=p.dtype, device=p.device))
    return float(bits_from_likelihoods(lik, "sum"))
