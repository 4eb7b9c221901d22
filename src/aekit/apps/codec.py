"""Bitstreams of the spatial codec (``--model codec``): images of any size, grey or colour,
at any rate of one model, every byte counted.

:func:`compress_images` takes images in their own units ((N, H, W), (N, C, H, W), or a list
of (H, W) / (C, H, W) arrays of different sizes), scales them as the run's data were, picks
each image's rate knob q (one ``quality`` for all, or per image the q that meets ``bpp`` or
``psnr``: a bisection over q on the entropy model's estimate, or on the decoded PSNR), and
writes one .aek file (format version 4, :mod:`aekit.io.bitstream`). Its payload::

    [names]                       as version 3 (flag bit 3)
    uint8   knob mode             0: one q for every image, 1: one per image
    uint16  q * 65535 / (K - 1)   once, or once per image
    N x (uint32 H, uint32 W)      only when the images' sizes differ (header H = W = 0)
    uint32  words of the side information's stream
    ...     side information: z's integers, channel after channel, image after image, each
            channel under its factorized prior's integer table (constriction's range coder)
    ...     the code: y's integers k of every image in one stream, each under the zero-mean
            Gaussian of the table scale at its position (``SCALE_TABLE``; the scale comes
            from the decoded side information, so the decoder finds the same table)

Decoding needs no pixel loop in Python: z's symbols are decoded per channel, the side
information's transform runs on every image at once, and y's symbols come out of one
vectorised call. The decoded images equal :func:`reconstruction` of the same images and
knobs bit for bit on the same machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from ..data.images import max_memory
from ..errors import CompressedFileError, ConfigError, DataError
from ..io.bitstream import Header, model_hash, pack, unpack
from ..nn.latent.hyperprior import SCALE_TABLE, scale_index

__all__ = [
    "compress_images",
    "decompress_images",
    "estimated_bits",
    "is_spatial",
    "reconstruction",
]

RADIUS = 2**15  # y's symbols are coded within [-RADIUS, RADIUS] (clipped beyond: never seen)
CODER_FLOOR = 2.0**-24  # constriction's least probability of a symbol in range (24-bit)
KNOB_STEPS = 65535  # q is stored as a uint16 step of (K - 1) / 65535


def is_spatial(model) -> bool:
    """Whether ``model`` is a spatial codec (its code a grid priced by a hyperprior)."""
    return bool(getattr(getattr(model, "latent", None), "spatial", False))


@dataclass
class Images:
    """Images scaled as the model computes on them: (C, H, W) float32 each, and the factor
    back to the data's units (the format's maximum: 255 for 8-bit images)."""

    scaled: list[np.ndarray]
    layout_ndim: int  # 2: given as (H, W) images, 3: as (C, H, W)
    top: float


def _scale_factor(model) -> float:
    s = model.scaler
    if s is None:
        return 1.0
    if s.kind != "image" or (s.offset is not None and np.size(s.offset) > 1):
        raise DataError(
            f"the run's {s.kind} scaler was fitted per pixel: a spatial codec takes images of "
            "any size and needs --scale image (pixel / format maximum)"
        )
    return float(np.ravel(s.scale)[0])


def _images(model, images, units: str = "check", max_value=None) -> Images:
    c = model.config.image_shape[0]
    if isinstance(images, np.ndarray) and images.ndim in (3, 4):
        listed = list(images)
    elif isinstance(images, (list, tuple)):
        listed = [np.asarray(v) for v in images]
    else:
        raise DataError(
            f"images have shape {np.shape(images)}: give (N, H, W), (N, C, H, W) or a list of "
            "(H, W) / (C, H, W) images"
        )
    if not listed:
        raise DataError("there are no images to compress")
    ndims = {v.ndim for v in listed}
    if not ndims <= {2, 3} or len(ndims) > 1:
        raise DataError("every image must be (H, W) or (C, H, W), all the same way")
    ndim = ndims.pop()
    factor = _scale_factor(model)
    scaled = []
    for v in listed:
        v3 = v[None] if v.ndim == 2 else v
        if v3.shape[0] != c or min(v3.shape[1:]) < 1:
            raise DataError(
                f"an image of shape {list(v.shape)} does not fit the model's {c} channel(s); "
                f"pass (C={c}, H, W){' or (H, W)' if c == 1 else ''} (--color)"
            )
        if not np.isfinite(v3).all():
            raise DataError("an image holds NaN or infinite values")
        rows = v3.reshape(1, -1)
        if model.units is not None:
            rows = model.units.check(rows, mode=units, max_value=max_value)
        scaled.append((rows.reshape(v3.shape) * factor).astype(np.float32))
    return Images(scaled, ndim, 1.0 / factor)


def _groups(shapes: list[tuple[int, ...]]) -> dict[tuple[int, ...], list[int]]:
    """Image indices by size, in order: images of one size run through the model at once."""
    out: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(shapes):
        out.setdefault(tuple(s), []).append(i)
    return out


def _device(model):
    p = next(model.parameters())
    return p.dtype, p.device


def _analyse(model, scaled: list[np.ndarray], knobs: np.ndarray, batch: int = 64):
    """Per image: z's integers (Z, h', w'), y's symbols k (M, h, w) int64 (clipped to the
    coder's range), the table indices of their scales, and mu. The side information's mean
    and scale come from z as the decoder reads it (:func:`_side_information`, the same
    arrays in the same batches), so both sides compute them bit for bit alike."""
    dtype, device = _device(model)
    gained: list = [None] * len(scaled)
    z_hats: list = [None] * len(scaled)
    model.eval()
    with torch.no_grad():
        for _, idx in _groups([v.shape for v in scaled]).items():
            for s in range(0, len(idx), batch):
                part = idx[s : s + batch]
                x = torch.as_tensor(np.stack([scaled[i] for i in part]))
                q = torch.as_tensor(knobs[part], dtype=dtype, device=device)
                y, z_hat = model.latent.side(model.analysis(x.to(dtype=dtype, device=device)), q)
                for j, i in enumerate(part):
                    gained[i], z_hats[i] = y[j], z_hat[j].cpu().numpy().copy()
        sizes = [v.shape[1:] for v in scaled]
        code_sizes = [tuple(g.shape[-2:]) for g in gained]
        parts = _side_information(model, z_hats, sizes, code_sizes, knobs)
        for p, y, z in zip(parts, gained, z_hats, strict=True):
            k = torch.round(y - p["mu"]).clamp(-RADIUS, RADIUS)
            p.update(z=torch.as_tensor(z), k=k.cpu().numpy().astype(np.int64))
    return parts


def _side_information(model, z_hats, sizes, code_sizes, knobs, batch: int = 64) -> list[dict]:
    """Per image mu and the scales' table indices from the decoded z (and the knobs, which a
    ``gain_prior`` codec's scales follow), in the groups and batches :func:`_analyse` used (so
    that every convolution sees the same batch)."""
    dtype, device = _device(model)
    parts: list[dict | None] = [None] * len(z_hats)
    model.eval()
    with torch.no_grad():
        for _, idx in _groups([tuple(s) for s in sizes]).items():
            for s in range(0, len(idx), batch):
                part = idx[s : s + batch]
                z = torch.as_tensor(np.stack([z_hats[i] for i in part])).to(
                    dtype=dtype, device=device
                )
                q = torch.as_tensor(knobs[part], dtype=dtype, device=device)
                mu, sigma = model.latent.mean_scale(z, code_sizes[part[0]], q)
                index = scale_index(sigma).cpu().numpy()
                for j, i in enumerate(part):
                    parts[i] = {"mu": mu[j], "sigma": sigma[j], "index": index[j]}
    return parts


def _synthesise(model, parts: list[dict], knobs: np.ndarray, sizes, top: float, batch=64):
    """Decoded images in the data's units (C, H, W) float32, clipped to [0, top]."""
    dtype, device = _device(model)
    out: list[np.ndarray | None] = [None] * len(parts)
    with torch.no_grad():
        for size, idx in _groups([tuple(s) for s in sizes]).items():
            for s in range(0, len(idx), batch):
                part = idx[s : s + batch]
                k = torch.as_tensor(np.stack([parts[i]["k"] for i in part])).to(
                    dtype=dtype, device=device
                )
                mu = torch.stack([parts[i]["mu"] for i in part]).to(dtype=dtype, device=device)
                q = torch.as_tensor(knobs[part], dtype=dtype, device=device)
                x = model.synthesis(model.latent.synthesis_input(k, mu, q), size)
                x = x.cpu().numpy() * np.float32(top)
                for j, i in enumerate(part):
                    out[i] = np.clip(x[j], 0.0, top).astype(np.float32)
    return out


def _quantised_knob(model, q) -> np.ndarray:
    """Knobs on the stored uint16 grid, so that the encoder uses what the decoder reads."""
    levels = model.latent.levels
    q = np.clip(np.asarray(q, dtype=np.float64), 0, levels - 1)
    if levels == 1:
        return np.zeros_like(q, dtype=np.float32)
    steps = np.rint(q / (levels - 1) * KNOB_STEPS)
    return (steps / KNOB_STEPS * (levels - 1)).astype(np.float32)


def _image_bits(model, parts: list[dict]) -> np.ndarray:
    """The entropy models' -log2 P of each image's integers (y and z), in bits."""
    from ..nn.latent.hyperprior import gaussian_likelihood

    bits = np.empty(len(parts))
    with torch.no_grad():
        for i, p in enumerate(parts):
            sigma = torch.as_tensor(SCALE_TABLE[p["index"]])  # the scales the coder uses
            lik_y = gaussian_likelihood(torch.as_tensor(p["k"], dtype=sigma.dtype), sigma)
            lik_y = lik_y.clamp_min(CODER_FLOOR)  # the coder's least probability (leaky)
            lik_z = model.latent.z_likelihood(p["z"][None].to(next(model.parameters()).device))
            bits[i] = float(-torch.log2(lik_y).sum() - torch.log2(lik_z).sum())
    return bits


def _choose_knobs(model, imgs: Images, quality, bpp, psnr) -> np.ndarray:
    n, levels = len(imgs.scaled), model.latent.levels
    given = [v is not None for v in (quality, bpp, psnr)]
    if sum(given) > 1:
        raise ConfigError("give one of quality, bpp and psnr")
    if quality is not None:
        if not 0 <= quality <= levels - 1:
            raise ConfigError(f"quality {quality} is outside the model's 0 .. {levels - 1}")
        return _quantised_knob(model, np.full(n, float(quality)))
    if bpp is None and psnr is None:
        return _quantised_knob(model, np.full(n, float(levels - 1)))
    if (bpp is not None and not bpp > 0) or (psnr is not None and not psnr > 0):
        raise ConfigError("the bpp or psnr target must be a positive number")
    pixels = np.array([v.shape[1] * v.shape[2] for v in imgs.scaled], dtype=np.float64)
    lo, hi = np.zeros(n), np.full(n, float(levels - 1))

    def measure(q):
        parts = _analyse(model, imgs.scaled, q)
        if bpp is not None:
            return _image_bits(model, parts) / pixels  # rises with q
        sizes = [v.shape[1:] for v in imgs.scaled]
        decoded = _synthesise(model, parts, q, sizes, 1.0)
        mse = np.array([np.mean((d - v) ** 2) for d, v in zip(decoded, imgs.scaled, strict=True)])
        return 10 * np.log10(1.0 / np.maximum(mse, 1e-20))

    target = bpp if bpp is not None else psnr
    for _ in range(14):  # (K - 1) / 2^14: finer than the rate changes between steps
        mid = _quantised_knob(model, (lo + hi) / 2)
        above = measure(mid) > target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    # the bpp target: the largest q at or under it; the psnr target: the least q reaching it
    return _quantised_knob(model, lo if bpp is not None else hi)


def compress_images(model, images, *, quality=None, bpp=None, psnr=None, names=None,
                    units: str = "check", max_value=None) -> bytes:  # fmt: skip
    """The .aek file (format version 4) of ``images`` in their own units.

    ``quality`` q in [0, K - 1] is the model's rate knob (K = its number of lambdas; default
    the highest); ``bpp`` asks each image for at most that many bits per pixel (its code,
    without the file's header), ``psnr`` for at least that PSNR in dB (peak: the format's
    maximum); give one of the three. ``names`` are stored (one per image).

    Raises
    ------
    ConfigError
        The model is not a spatial codec, or the targets are not valid.
    DataError
        The images are empty, not finite, of another channel count or in other units.
    """
    if not is_spatial(model):
        raise ConfigError(f"model {model.name!r} is not a spatial codec (train --model codec)")
    imgs = _images(model, images, units, max_value)
    knobs = _choose_knobs(model, imgs, quality, bpp, psnr)
    data = _write(model, imgs, knobs, names)
    pixels = sum(v.shape[1] * v.shape[2] for v in imgs.scaled)
    aim = bpp
    for _ in range(3 if bpp is not None else 0):  # the file's own bytes (header, knobs) too
        got = 8.0 * len(data) / pixels
        if 0.97 * bpp <= got <= bpp:
            break
        aim = aim * bpp / got
        knobs = _choose_knobs(model, imgs, None, aim, None)
        data = _write(model, imgs, knobs, names)
    return data


def _write(model, imgs: Images, knobs: np.ndarray, names) -> bytes:
    """The file's bytes for scaled images at their knobs."""
    import constriction

    parts = _analyse(model, imgs.scaled, knobs)
    n = len(parts)
    sizes = [v.shape[1:] for v in imgs.scaled]
    same = len(set(sizes)) == 1
    levels = model.latent.levels
    steps = np.rint(knobs / max(levels - 1, 1) * KNOB_STEPS).astype("<u2")
    one_knob = len(set(steps.tolist())) == 1
    head = struct.pack("<B", 0 if one_knob else 1)
    head += steps[:1].tobytes() if one_knob else steps.tobytes()
    if not same:
        head += np.asarray(sizes, dtype="<u4").tobytes()
    m, lo, coders = _z_coders(model)
    z_enc = constriction.stream.queue.RangeEncoder()
    z_symbols = _z_symbols(parts, m, lo)
    for c, coder in enumerate(coders):
        z_enc.encode(np.ascontiguousarray(z_symbols[c], dtype=np.int32), coder)
    z_words = z_enc.get_compressed().astype("<u4").tobytes()
    y_enc = constriction.stream.queue.RangeEncoder()
    k = np.concatenate([p["k"].ravel() for p in parts]).astype(np.int32)
    stds = SCALE_TABLE[np.concatenate([p["index"].ravel() for p in parts])]
    family = constriction.stream.model.QuantizedGaussian(-RADIUS, RADIUS)
    if len(k):
        y_enc.encode(k, family, np.zeros(len(k)), stds)
    y_words = y_enc.get_compressed().astype("<u4").tobytes()
    c = model.config.image_shape[0]
    shape = (c, *sizes[0]) if same else (c, 0, 0)
    header = Header(
        shape, n, model.config.latent_dim, model_hash(model), False, imgs.layout_ndim,
        _names(names, n), spatial=True,
    )  # fmt: skip
    return pack(header, head + struct.pack("<I", len(z_words) // 4) + z_words + y_words)


def _names(names, n: int):
    from .compression import check_names

    return check_names(names, n)


def _z_coders(model):
    import constriction

    m, lo, counts = model.latent.prior.tables()
    Categorical = constriction.stream.model.Categorical
    return m, lo, [Categorical(c / c.sum(), perfect=False) for c in counts]


def _z_symbols(parts: list[dict], m: np.ndarray, lo: np.ndarray) -> list[np.ndarray]:
    """Per channel c, z's symbols of every image (image after image), in 0 .. n_c - 1."""
    rows = [p["z"].numpy().reshape(len(m), -1) for p in parts]
    return [
        np.concatenate([np.rint(r[c] - m[c]).astype(np.int64) - lo[c] for r in rows])
        for c in range(len(m))
    ]


def _read_payload(model, data: bytes):
    """(header, knobs (N,), sizes [(H, W)], z words, y words) after every check."""
    if not is_spatial(model):
        raise ConfigError(f"model {model.name!r} is not a spatial codec (train --model codec)")
    header, payload = unpack(data, model_hash(model))
    if not header.spatial:
        raise CompressedFileError("the compressed file was not written by a spatial codec")
    c = model.config.image_shape[0]
    if header.shape[0] != c or header.width != model.config.latent_dim:
        raise CompressedFileError("the compressed file's shape does not match the model")
    n, at = header.count, 0

    def take(size: int, what: str) -> bytes:
        nonlocal at
        if at + size > len(payload):
            raise CompressedFileError(f"the compressed file's {what} is truncated")
        at += size
        return payload[at - size : at]

    (mode,) = struct.unpack("<B", take(1, "knob section"))
    if mode not in (0, 1):
        raise CompressedFileError("the compressed file's knob section is corrupt")
    steps = np.frombuffer(take(2 * (1 if mode == 0 else n), "knob section"), dtype="<u2")
    levels = model.latent.levels
    knobs = (np.resize(steps, n).astype(np.float64) / KNOB_STEPS * max(levels - 1, 0)).astype(
        np.float32
    )
    if header.shape[1] and header.shape[2]:
        sizes = [tuple(header.shape[1:])] * n
    else:
        raw = np.frombuffer(take(8 * n, "sizes section"), dtype="<u4").reshape(n, 2)
        sizes = [(int(h), int(w)) for h, w in raw]
    total = sum(h * w for h, w in sizes) * c * 4
    if any(h < 1 or w < 1 for h, w in sizes) or total > max_memory():
        raise CompressedFileError(
            "the compressed file announces images of no pixels, or more pixels than half this "
            "machine's memory holds (or AEKIT_MAX_MEMORY): it is corrupt"
        )
    (n_words,) = struct.unpack("<I", take(4, "side information"))
    z_words = take(4 * n_words, "side information")
    y_words = payload[at:]
    if len(y_words) % 4:
        raise CompressedFileError("the compressed file's code is corrupt: not whole 32-bit words")
    return header, knobs, sizes, z_words, y_words


def decompress_images(model, data: bytes) -> list[np.ndarray] | np.ndarray:
    """The decoded images in the data's units: an array (N, H, W) / (N, C, H, W) when they
    share a size, else a list of (H, W) / (C, H, W) arrays (as they were given).

    Raises
    ------
    CompressedFileError
        The file is truncated, corrupt, of another format or written by another model.
    """
    import constriction

    from .residual import decode_or_refuse

    header, knobs, sizes, z_words, y_words = _read_payload(model, data)
    n = header.count
    zc = model.config.hyper_channels
    f = 2**model.config.stages
    code_sizes = [(-(-h // f), -(-w // f)) for h, w in sizes]
    z_sizes = [(-(-a // 4), -(-b // 4)) for a, b in code_sizes]
    m, lo, coders = _z_coders(model)
    z_dec = constriction.stream.queue.RangeDecoder(np.frombuffer(z_words, "<u4").astype(np.uint32))
    per_image = np.array([a * b for a, b in z_sizes], dtype=np.int64)
    z_all = np.empty((zc, int(per_image.sum())), dtype=np.float32)
    for c, coder in enumerate(coders):
        symbols = decode_or_refuse(z_dec, coder, int(per_image.sum()))
        z_all[c] = (symbols + lo[c]).astype(np.float32) + m[c]
    bounds = np.concatenate([[0], np.cumsum(per_image)])
    z_hats = [z_all[:, bounds[i] : bounds[i + 1]].reshape(zc, *z_sizes[i]) for i in range(n)]
    parts = _side_information(model, z_hats, sizes, code_sizes, knobs)
    stds = SCALE_TABLE[np.concatenate([p["index"].ravel() for p in parts])] if parts else []
    family = constriction.stream.model.QuantizedGaussian(-RADIUS, RADIUS)
    y_dec = constriction.stream.queue.RangeDecoder(np.frombuffer(y_words, "<u4").astype(np.uint32))
    try:
        k = y_dec.decode(family, np.zeros(len(stds)), stds) if len(stds) else np.zeros(0)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise CompressedFileError(f"the compressed file's code is corrupt ({e})") from None
    at = 0
    for p in parts:
        size = p["index"].size
        p["k"] = np.asarray(k[at : at + size], dtype=np.int64).reshape(p["index"].shape)
        at += size
    top = 1.0 / _scale_factor(model)
    decoded = _synthesise(model, parts, knobs, sizes, top)
    return _as_given(decoded, header.sample_ndim)


def _as_given(decoded: list[np.ndarray], ndim: int):
    out = [d[0] if ndim == 2 else d for d in decoded]
    if len({d.shape for d in out}) == 1:
        return np.stack(out)
    return out


def reconstruction(model, images, *, quality=None, bpp=None, psnr=None, units="check",
                   max_value=None):  # fmt: skip
    """What :func:`decompress_images` gives for :func:`compress_images` of the same images
    and targets, computed without the coder."""
    imgs = _images(model, images, units, max_value)
    knobs = _choose_knobs(model, imgs, quality, bpp, psnr)
    parts = _analyse(model, imgs.scaled, knobs)
    decoded = _synthesise(model, parts, knobs, [v.shape[1:] for v in imgs.scaled], imgs.top)
    return _as_given(decoded, imgs.layout_ndim)


def estimated_bits(model, images, *, quality=None, bpp=None, psnr=None, units="check",
                   max_value=None) -> np.ndarray:  # fmt: skip
    """Each image's ideal code length in bits under the entropy models (y and z), at the
    knobs :func:`compress_images` would choose."""
    imgs = _images(model, images, units, max_value)
    knobs = _choose_knobs(model, imgs, quality, bpp, psnr)
    return _image_bits(model, _analyse(model, imgs.scaled, knobs))


def codec_report(model, images, *, data: bytes | None = None, names=None, max_value=None,
                 quality=None, bpp=None, psnr=None, units: str = "check"):  # fmt: skip
    """(report, file bytes) for ``images``: compress (unless ``data`` is given), decode, time
    both, and score the decoded images as a PNG holds them (rounded, for integer formats)
    against the originals. bpp counts every byte of the file over every pixel."""
    import time

    from .compression_report import CompressionReport

    encoded = data is None
    t0 = time.perf_counter()
    if encoded:
        data = compress_images(
            model, images, quality=quality, bpp=bpp, psnr=psnr, names=names, units=units,
            max_value=max_value,
        )  # fmt: skip
    t1 = time.perf_counter()
    decoded = decompress_images(model, data)
    t2 = time.perf_counter()
    originals = [np.asarray(v, np.float64) for v in (list(images))]
    shown = [np.asarray(v, np.float64) for v in list(decoded)]
    if len(originals) != len(shown) or any(
        a.shape != b.shape for a, b in zip(originals, shown, strict=True)
    ):
        raise DataError("the file holds other images than the data given to score it against")
    integer = model.units is not None and str(model.units.dtype).startswith(("uint", "int"))
    if integer:
        shown = [np.rint(v) for v in shown]
    top = float(max_value) if max_value else 1.0 / _scale_factor(model)
    pixels = sum(v.shape[-1] * v.shape[-2] for v in originals)
    sq = sum(float(np.sum((a - b) ** 2)) for a, b in zip(originals, shown, strict=True))
    values = sum(v.size for v in originals)
    mse = sq / values
    header = unpack(data)[0]
    est = float(
        _image_bits(model, _analyse(model, _images(model, images, units, max_value).scaled,
                                    _read_payload(model, data)[1])).sum()
    )  # fmt: skip
    n = len(originals)
    report = CompressionReport(
        images=n,
        pixels_per_image=pixels // n,
        bytes=len(data),
        bpp=8.0 * len(data) / pixels,
        estimated_bpp=est / pixels,
        encode_images_per_s=n / max(t1 - t0, 1e-9) if encoded else None,
        decode_images_per_s=n / max(t2 - t1, 1e-9),
        psnr=float("inf") if mse == 0 else 10 * float(np.log10(top**2 / mse)),
        ssim=None,
        data_range=top,
        max_abs_error=max(
            float(np.max(np.abs(a - b))) for a, b in zip(originals, shown, strict=True)
        ),
    )
    del header
    return report, data
