"""Image compression with a quantised-latent model: real bitstreams, every byte counted.

:func:`compress` encodes rows X (N, D) in the data's own units (the model's scaler applies;
images (N, H, W) / (N, C, H, W) are taken as rows and come back in their shape)
to the quantised code, then writes each code channel's N integers with constriction's range
coder under that channel's integer table (:meth:`QuantizedLatent.tables`), channel after
channel, behind the header of :mod:`aekit.io.bitstream`. :func:`decompress` checks the
header, decodes the integers with the same tables (built from the model's weights alone, so
both sides agree bit for bit) and decodes them with the model: the result equals
``model.reconstruct_numpy(X)`` exactly on the same machine. With a ``step``, a residual
layer (:mod:`aekit.apps.residual`) follows the code and brings every value to within step/2
of X's (lossless for integer pixels at step 1); :func:`reconstruction` computes what such a
file decodes to without the coder. What a file cost and gave is measured by
:mod:`aekit.apps.compression_report`.
"""

from __future__ import annotations

import struct

import numpy as np

from ..data.shapes import Layout, as_rows
from ..errors import CompressedFileError, ConfigError, DataError
from ..io.bitstream import Header, model_hash, pack, unpack
from . import residual

__all__ = [
    "check_data",
    "check_names",
    "compress",
    "decode_codes",
    "decompress",
    "estimated_bits",
    "file_names",
    "file_step",
    "image_shape",
    "reconstruction",
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


def check_data(model, X) -> tuple[np.ndarray, Layout]:
    """X as rows (N, D) and the layout it came in: rows, or images of the model's shape as
    (N, H, W) or (N, C, H, W) (:func:`aekit.data.shapes.as_rows`)."""
    rows, layout = as_rows(X, width=model.input_dim, image_shape=image_shape(model))
    if len(rows) == 0:
        raise DataError(f"data has shape {np.shape(X)}: there are no images to compress")
    if not np.isfinite(rows).all():
        raise DataError("data contains NaN or infinite values; clean or impute them first")
    return rows, layout


def _codes(symbols: np.ndarray, m: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The quantised codes m + k of symbols k - lo: one function for encoder and decoder, so
    both decode the same float32 codes into the same prediction."""
    return (symbols + lo).astype(np.float32) + m  # as QuantizedLatent.quantise adds them


def _symbols(model, X: np.ndarray, m: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The code's symbols (N, L), channel c's in 0 .. n_c - 1."""
    return np.rint(model.encode_numpy(X) - m).astype(np.int64) - lo


def _residual(model, X: np.ndarray, step: float):
    """(the code's symbols, the decoder's prediction x_hat, residual parameters and symbols)
    for X at ``step``: what the encoder writes and the decoder must find again."""
    m, lo, _ = _coder_models(model)
    symbols = _symbols(model, X, m, lo)
    x_hat = model.decode_numpy(_codes(symbols, m, lo))
    params, k = residual.symbols(X, x_hat, step)
    return symbols, x_hat, params, k


def compress(model, X: np.ndarray, step: float | None = None, names=None) -> bytes:
    """The .aek file's bytes for X in the data's units: rows (N, D), or images of the
    model's shape as (N, H, W) or (N, C, H, W); the file records which, and
    :func:`decompress` gives them back in that shape.

    ``names`` (one per row: the input files' relative names) are stored in the file (format
    version 3), so that decompressing into a folder writes the same names.

    Without ``step`` the file holds the quantised code only; its quality is the model's. With
    ``step`` q (in the data's units) a residual layer follows (:mod:`aekit.apps.residual`):
    every decoded value lies within q/2 of X's, and integer data (8-bit pixels) at q = 1
    decode exactly.

    Raises
    ------
    ConfigError
        The model has no quantised latent.
    DataError
        X is empty, of another width or image shape, or not finite; the step is not positive
        or too small for the data's range.
    """
    import constriction

    _check_model(model)
    X, layout = check_data(model, X)
    if step is not None:
        residual.check_step(step)
    m, lo, coders = _coder_models(model)
    if step is None:
        symbols = _symbols(model, X, m, lo)
    else:
        symbols, x_hat, params, k = _residual(model, X, step)
    encoder = constriction.stream.queue.RangeEncoder()
    for c, coder in enumerate(coders):  # channel by channel: N i.i.d. symbols per call
        encoder.encode(np.ascontiguousarray(symbols[:, c], dtype=np.int32), coder)
    words = encoder.get_compressed().astype("<u4").tobytes()
    header = Header(
        image_shape(model),
        len(X),
        symbols.shape[1],
        model_hash(model),
        step is not None,
        max(len(layout.sample_shape), 1),
        check_names(names, len(X)),
    )
    if step is None:
        return pack(header, words)
    residual_words, _ = residual.encode(k, x_hat, params)
    lengths = struct.pack("<I", len(words) // 4)
    return pack(header, params.pack() + lengths + words + residual_words)


def check_names(names, n: int) -> tuple[str, ...] | None:
    """The images' file names as a tuple of one-line strings, one per image (or None)."""
    if names is None:
        return None
    names = tuple(str(v) for v in names)
    if len(names) != n:
        raise DataError(f"{len(names)} file names for {n} images; give one name per image")
    if any("\n" in v or "\r" in v for v in names):
        raise DataError("a file name holds a line break; rename the file")
    return names


def file_names(data: bytes) -> tuple[str, ...] | None:
    """The file names a .aek file carries (format version 3), or None."""
    return unpack(data)[0].names


def _sections(model, data: bytes):
    """(header, residual parameters or None, the code's words, the residual's words)."""
    _check_model(model)
    header, payload = unpack(data, model_hash(model))
    if header.shape != image_shape(model) or header.width != model.config.latent_dim:
        raise CompressedFileError("the compressed file's shape does not match the model")
    if not header.residual:
        return header, None, payload, b""
    params = residual.ResidualParams.unpack(payload)
    start = residual.ResidualParams.SIZE + 4
    if len(payload) < start:
        raise CompressedFileError("the compressed file's residual section is truncated")
    (n_words,) = struct.unpack("<I", payload[start - 4 : start])
    end = start + 4 * n_words
    if end > len(payload):
        raise CompressedFileError("the compressed file's sections do not fit its length")
    return header, params, payload[start:end], payload[end:]


def _decode_code(model, header: Header, words: bytes) -> np.ndarray:
    import constriction

    m, lo, coders = _coder_models(model)
    if len(words) % 4:
        raise CompressedFileError("the compressed file's code is corrupt: not whole 32-bit words")
    _check_count(model, header, words)
    decoder = constriction.stream.queue.RangeDecoder(
        np.frombuffer(words, dtype="<u4").astype(np.uint32)
    )
    symbols = np.empty((header.count, header.width), dtype=np.int64)
    for c, coder in enumerate(coders):
        symbols[:, c] = residual.decode_or_refuse(decoder, coder, header.count)
    return _codes(symbols, m, lo)


def _check_count(model, header: Header, words: bytes) -> None:
    """Refuse a header announcing more images than its words can hold, before allocating:
    every code symbol costs at least -log2 of its channel's largest probability."""
    least = sum(float(-np.log2(c.max() / c.sum())) for c in model.latent.tables()[2])
    if header.count * least * 0.99 > 8 * len(words) + 64:
        raise CompressedFileError(
            f"the compressed file announces {header.count} images, more than its "
            f"{len(words)} bytes of code can hold: it is corrupt"
        )


def file_step(model, data: bytes) -> float | None:
    """The residual layer's step a file was written at (after every check of its header), or
    None for a file of the code alone."""
    params = _sections(model, data)[1]
    return None if params is None else params.step


def decode_codes(model, data: bytes) -> np.ndarray:
    """The quantised codes (N, L) a file carries, after every check of its header."""
    header, _, words, _ = _sections(model, data)
    return _decode_code(model, header, words)


def decompress(model, data: bytes) -> np.ndarray:
    """The reconstructions, in the data's units and in the shape X had (rows (N, D), or
    images (N, H, W) / (N, C, H, W)), of a file :func:`compress` wrote:
    ``model.reconstruct_numpy(X)`` bit for bit, or with a residual layer
    :func:`reconstruction` ``(model, X, step)`` bit for bit (same machine).

    Raises
    ------
    CompressedFileError
        The file is truncated, corrupt, of another format or written by another model.
    """
    header, params, words, residual_words = _sections(model, data)
    layout = Layout(header.sample_shape if header.sample_ndim > 1 else ())
    x_hat = model.decode_numpy(_decode_code(model, header, words))
    if params is None:
        return layout.unfold(x_hat)
    s = residual.decode(residual_words, x_hat, params)
    return layout.unfold(
        residual.reconstruct(x_hat, s, params).astype(residual.output_dtype(params))
    )


def reconstruction(model, X: np.ndarray, step: float | None = None) -> np.ndarray:
    """What decoding ``compress(model, X, step)`` gives, computed without the coder, in X's
    shape."""
    _check_model(model)
    X, layout = check_data(model, X)
    if step is None:
        return layout.unfold(model.reconstruct_numpy(X))
    _, x_hat, params, k = _residual(model, X, step)
    return layout.unfold(
        residual.reconstruct(x_hat, k, params).astype(residual.output_dtype(params))
    )


def estimated_bits(model, X: np.ndarray, step: float | None = None) -> float:
    """sum over images and channels of -log2 P(y_hat): the entropy model's ideal code length,
    plus, with ``step``, the residual layer's under its adaptive tables."""
    import torch

    from ..functional.rate import bits_from_likelihoods

    X, _ = check_data(model, X)
    codes = torch.as_tensor(model.encode_numpy(X))
    p = next(model.parameters())
    with torch.no_grad():
        lik = model.latent.prior.likelihood(codes.to(dtype=p.dtype, device=p.device))
    bits = float(bits_from_likelihoods(lik, "sum"))
    if step is None:
        return bits
    _, x_hat, params, k = _residual(model, X, step)
    return bits + residual.ideal_bits(k, x_hat, params)
