"""Bitstreams of the learned context model (``--model lossless``): lossless, or every pixel
within q/2 at step q, images of any size, grey or colour, every byte counted.

:func:`compress_images` takes integer images ((N, H, W), (N, C, H, W), or a list of (H, W) /
(C, H, W) arrays of different sizes) in 0 .. 2^bits - 1 and writes one .aek file (format
version 5, :mod:`aekit.io.bitstream`). Its payload::

    [names]                       as version 3 (flag bit 3)
    uint16  step q                1 = lossless
    N x (uint32 H, uint32 W)      only when the images' sizes differ (header H = W = 0)
    ...     the symbols k of every pixel in one range coder stream: images grouped by size,
            in batches (:func:`batch_size`), scale after scale (coarsest first), plane
            after plane of the model's order (:mod:`aekit.nn.arch.context`), each
            pixel under its own categorical table (the model's probabilities of the G + 1
            symbols, quantised by constriction's leaky fixed-point categorical)

The decoder runs the model on the same tensors in the same batches as the encoder did (the
planes decoded so far, the others zero), so both compute the same probabilities bit for bit
on the same machine; one network pass per plane, scale and batch, no pixel loop in Python.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

from ..errors import CompressedFileError, ConfigError, DataError
from ..io.bitstream import Header, model_hash, pack, unpack
from ..nn.arch.context import step_symbols

__all__ = [
    "compress_images",
    "decompress_images",
    "encode",
    "estimated_bits",
    "is_context",
    "lossless_report",
]

PIXELS_PER_BATCH = 2**19  # images of one size go through the model this many pixels at once
ROWS_PER_TABLE = 8192  # pixels whose probabilities are computed at once


def is_context(model) -> bool:
    """Whether ``model`` is a learned context model (``--model lossless``)."""
    return hasattr(model, "probabilities") and hasattr(model, "order")


def batch_size(h: int, w: int) -> int:
    """How many (h, w) images run through the model at once (the decoder uses the same)."""
    return max(1, min(1024, PIXELS_PER_BATCH // (h * w)))


def check_step(model, step) -> int:
    top = model.levels - 1
    q = float(1 if step is None else step)
    if not (q == int(q) and 1 <= q <= top):
        raise DataError(f"a context model's step is an integer from 1 (lossless) to {top}")
    return int(q)


def _check_scaler(model) -> None:
    """The model learnt from pixels / (2^bits - 1): a run scaled otherwise would code badly."""
    s, top = model.scaler, model.levels - 1
    if s is None:
        return
    offset = 0.0 if s.offset is None else np.ravel(s.offset)
    one = s.kind == "image" and np.size(s.scale) == 1 and np.all(offset == 0)
    if not (one and np.isclose(float(np.ravel(s.scale)[0]) * top, 1.0)):
        raise DataError(
            f"the run's {s.kind} scaler is not pixel / {top}: a context model trains on "
            "--scale image of integer pixels"
        )


def _images(model, images) -> tuple[list[np.ndarray], int]:
    """(C, H, W) int64 images and the layout they came in (2 or 3 dimensions)."""
    _check_scaler(model)
    c, top = model.config.image_shape[0], model.levels - 1
    listed = list(images) if isinstance(images, (np.ndarray, list, tuple)) else None
    if not listed:
        raise DataError("there are no images to compress")
    listed = [np.asarray(v) for v in listed]
    ndims = {v.ndim for v in listed}
    if len(ndims) > 1 or not ndims <= {2, 3}:
        raise DataError("every image must be (H, W) or (C, H, W), all the same way")
    out = []
    for v in listed:
        v3 = v[None] if v.ndim == 2 else v
        if v3.shape[0] != c or min(v3.shape[1:]) < 1:
            raise DataError(f"an image of shape {list(v.shape)} does not fit the model's {c} "
                            "channel(s)")  # fmt: skip
        f = np.asarray(v3, dtype=np.float64)
        if (
            not (np.isfinite(f).all() and np.array_equal(f, np.rint(f)))
            or f.min() < 0
            or (f.max() > top)
        ):
            raise DataError(f"a context model codes integer pixels 0 .. {top}")
        out.append(f.astype(np.int64))
    return out, ndims.pop()


def _groups(shapes) -> dict:
    out: dict = {}
    for i, s in enumerate(shapes):
        out.setdefault(tuple(s), []).append(i)
    return out


def _walk(model, shape, n: int, step: int, images=None, coder=None):
    """Code n images of ``shape`` (C, H, W) in one batch, scale after scale (coarsest
    first), plane after plane: ``images`` (n, C, H, W) float given: encode them into
    ``coder`` (or None: estimate only); else decode from it. Returns (the decoded images
    (n, C, H, W) float, the symbols' ideal length in bits)."""
    import constriction

    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    family = constriction.stream.model.Categorical(perfect=False)
    c, top, s = shape[0], model.levels - 1, model.config.block
    sizes = [tuple(shape[1:])]
    for _ in range(model.config.scales - 1):
        sizes.append((-(-sizes[-1][0] // s), -(-sizes[-1][1] // s)))
    coarse, bits = None, 0.0
    with torch.no_grad():
        for scale in reversed(range(model.config.scales)):
            inside = model.fold(torch.zeros(1, c, *sizes[scale], dtype=dtype, device=device))[1]
            values = torch.zeros(n, *inside.shape[1:], dtype=dtype, device=device)
            known = torch.zeros_like(values)
            if coarse is not None:  # phase (0, 0) is the coarser scale, decoded
                values[:, :c], known[:, :c] = coarse, 1.0
            truth = None
            if images is not None:
                truth = model.fold(model.subsample(images, scale))[0].cpu().numpy()
                truth = step_symbols(truth.astype(np.int64), step)
            steps = torch.full((n,), step, device=device)
            for r in range(model.first_plane(scale), model.planes):
                mask = inside[0, r].bool().cpu().numpy()
                if not mask.any():
                    continue
                plane = torch.full((n,), r, device=device)
                params = model.params(values, known, inside, steps, plane, scale)
                rows = params.permute(0, 2, 3, 1).cpu()[:, torch.as_tensor(mask)]
                rows = rows.reshape(-1, rows.shape[-1])  # (n * m, 3K)
                k = None if truth is None else truth[:, r][:, mask].reshape(-1)
                got, b = _code_rows(model, rows, step, k, coder, family)
                bits += b
                plane_k = np.zeros((n, *mask.shape), dtype=np.int64)
                plane_k[:, mask] = got.reshape(n, -1)
                values[:, r] = torch.as_tensor(np.minimum(plane_k * step, top), dtype=dtype)
                known[:, r] = 1.0
            coarse = model.unfold(values, sizes[scale])
    return coarse, bits


def _code_rows(model, rows, step: int, k, coder, family):
    """(the symbols, their ideal bits) of pixels with mixture parameters ``rows`` (M, 3K):
    ``k`` given: encode them (``coder`` None: estimate only); else decode them."""
    got = np.empty(len(rows), dtype=np.int64)
    bits = 0.0
    for s in range(0, len(rows), ROWS_PER_TABLE):
        probs = model.probabilities(rows[s : s + ROWS_PER_TABLE], step).numpy()
        if k is None:
            got[s : s + len(probs)] = _decode(coder, family, probs)
            continue
        here = k[s : s + len(probs)]
        if coder is not None:
            coder.encode(here.astype(np.int32), family, probs)
        got[s : s + len(probs)] = here
        picked = probs[np.arange(len(here)), here]
        bits -= float(np.log2(np.maximum(picked, 2.0**-24)).sum())
    return got, bits


def _decode(decoder, family, probs) -> np.ndarray:
    try:
        return np.asarray(decoder.decode(family, probs), dtype=np.int64)
    except (AssertionError, ValueError, RuntimeError) as e:
        raise CompressedFileError(f"the compressed file cannot be decoded: {e}") from None


def _code_all(model, images: list[np.ndarray], step: int, coder):
    """Per image its symbols' planes and ideal bits, coding into ``coder`` (or None)."""
    bits = np.zeros(len(images))
    for shape, idx in _groups([v.shape for v in images]).items():
        b = batch_size(*shape[1:])
        for s in range(0, len(idx), b):
            part = idx[s : s + b]
            x = torch.as_tensor(np.stack([images[i] for i in part]), dtype=torch.float32)
            _, total = _walk(model, shape, len(part), step, x, coder)
            bits[part] += total / len(part)  # a batch's total, shared out (estimates only)
    return bits


def compress_images(model, images, *, step=None, names=None) -> bytes:
    """The .aek file (format version 5) of integer ``images`` at ``step`` q (1: lossless):
    every decoded pixel within q/2 of the original. ``names`` are stored (one per image).
    :func:`encode` gives the model's estimate of the code's length beside it.

    Raises
    ------
    ConfigError
        The model is not a context model.
    DataError
        The images are empty, not integers in the model's range, or of another channel count;
        the step is not an integer in 1 .. 2^bits - 1.
    """
    return encode(model, images, step=step, names=names)[0]


def encode(model, images, *, step=None, names=None) -> tuple[bytes, float]:
    """(:func:`compress_images`'s bytes, the code's ideal length in bits under the model's
    probabilities before the coder quantises them), from one pass of the model."""
    import constriction

    from .compression import check_names

    if not is_context(model):
        raise ConfigError(f"model {model.name!r} is not a context model (train --model lossless)")
    q = check_step(model, step)
    imgs, ndim = _images(model, images)
    model.eval()
    encoder = constriction.stream.queue.RangeEncoder()
    bits = float(_code_all(model, imgs, q, encoder).sum())
    words = encoder.get_compressed().astype("<u4").tobytes()
    sizes = [v.shape[1:] for v in imgs]
    same = len(set(sizes)) == 1
    head = struct.pack("<H", q) + (b"" if same else np.asarray(sizes, dtype="<u4").tobytes())
    c = model.config.image_shape[0]
    header = Header(
        (c, *sizes[0]) if same else (c, 0, 0), len(imgs), model.planes, model_hash(model),
        False, ndim, check_names(names, len(imgs)), learned=True,
    )  # fmt: skip
    return pack(header, head + words), bits


def estimated_bits(model, images, *, step=None) -> float:
    """The ideal code length in bits of all ``images`` under the model's quantised-free
    probabilities (what the coder's file should come close to)."""
    q = check_step(model, step)
    imgs, _ = _images(model, images)
    model.eval()
    return float(_code_all(model, imgs, q, None).sum())


def _read(model, data: bytes):
    from ..data.images import max_memory

    if not is_context(model):
        raise ConfigError(f"model {model.name!r} is not a context model (train --model lossless)")
    header, payload = unpack(data, model_hash(model))
    c = model.config.image_shape[0]
    if not header.learned or header.shape[0] != c or header.width != model.planes:
        raise CompressedFileError("the compressed file was not written by this context model")
    n = header.count
    if len(payload) < 2:
        raise CompressedFileError("the compressed file's step is truncated")
    (q,) = struct.unpack("<H", payload[:2])
    if not 1 <= q <= model.levels - 1:
        raise CompressedFileError("the compressed file's step is corrupt")
    at = 2
    if header.shape[1] and header.shape[2]:
        sizes = [tuple(header.shape[1:])] * n
    else:
        if len(payload) < at + 8 * n:
            raise CompressedFileError("the compressed file's sizes section is truncated")
        raw = np.frombuffer(payload[at : at + 8 * n], dtype="<u4").reshape(n, 2)
        sizes, at = [(int(h), int(w)) for h, w in raw], at + 8 * n
    if any(h < 1 or w < 1 for h, w in sizes) or sum(h * w for h, w in sizes) * c * 8 > (
        max_memory()
    ):
        raise CompressedFileError(
            "the compressed file announces images of no pixels, or more than half this "
            "machine's memory holds: it is corrupt"
        )
    words = payload[at:]
    if len(words) % 4:
        raise CompressedFileError("the compressed file's code is corrupt: not whole 32-bit words")
    return header, q, sizes, words


def decompress_images(model, data: bytes):
    """The decoded images (int64 in 0 .. 2^bits - 1): an array (N, H, W) / (N, C, H, W) when
    they share a size, else a list, as they were given.

    Raises
    ------
    CompressedFileError
        The file is truncated, corrupt, of another format or written by another model.
    """
    import constriction

    header, q, sizes, words = _read(model, data)
    c = model.config.image_shape[0]
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(words, "<u4").astype(np.uint32))
    model.eval()
    out: list = [None] * header.count
    for (h, w), idx in _groups(sizes).items():
        b = batch_size(h, w)
        for s in range(0, len(idx), b):
            part = idx[s : s + b]
            decoded, _ = _walk(model, (c, h, w), len(part), q, None, decoder)
            images = decoded.cpu().numpy().astype(np.int64)
            for j, i in enumerate(part):
                out[i] = images[j]
    shaped = [v[0] if header.sample_ndim == 2 else v for v in out]
    return np.stack(shaped) if len({v.shape for v in shaped}) == 1 else shaped


def lossless_report(model, images, *, data: bytes | None = None, step=None, names=None):
    """(report, file bytes) for integer ``images``: compress at ``step`` (unless ``data`` is
    given), decode, time both, and score the decoded images against them."""
    import time

    from .compression_report import CompressionReport

    encoded = data is None
    t0 = time.perf_counter()
    if encoded:
        data, bits = encode(model, images, step=step, names=names)
    t1 = time.perf_counter()
    decoded = list(decompress_images(model, data))
    t2 = time.perf_counter()
    originals, _ = _images(model, images)
    shown = [v[None] if v.ndim == 2 else v for v in decoded]
    if len(shown) != len(originals) or any(
        a.shape != b.shape for a, b in zip(originals, shown, strict=True)
    ):
        raise DataError("the file holds other images than the data given to score it against")
    q = _read(model, data)[1]
    pairs = list(zip(originals, shown, strict=True))
    sq = sum(float(np.sum((a - b) ** 2.0)) for a, b in zip(originals, shown, strict=True))
    values = sum(v.size for v in originals)
    pixels = sum(v.shape[1] * v.shape[2] for v in originals)
    top, n = float(model.levels - 1), len(originals)
    report = CompressionReport(
        images=n, pixels_per_image=pixels // n, bytes=len(data), bpp=8.0 * len(data) / pixels,
        estimated_bpp=(bits if encoded else estimated_bits(model, images, step=q)) / pixels,
        encode_images_per_s=n / max(t1 - t0, 1e-9) if encoded else None,
        decode_images_per_s=n / max(t2 - t1, 1e-9),
        psnr=float("inf") if sq == 0 else 10 * float(np.log10(top**2 * values / sq)),
        data_range=top, step=float(q),
        max_abs_error=max(float(np.abs(a - b).max()) for a, b in pairs),
    )  # fmt: skip
    return report, data
