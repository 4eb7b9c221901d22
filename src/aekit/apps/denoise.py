"""Denoising as a job: a trained model's clean estimate of noisy data, in the data's units.

A model trained with input noise (``--noise``: it saw noisy inputs and was scored against the
clean ones), with a blind spot (``--model blindspot``: from noisy data alone), by SURE
(``--model dncnn --self-supervised sure --noise ...``: from noisy data alone, their noise
stated) or a fully convolutional denoiser (``--model dncnn``) denoises by reconstructing in
eval mode: no noise is added and no pixel masked. :func:`denoise` does it on arrays (rows or
images, X's shape and units back), :func:`denoise_files` from files to files (what ``aekit
denoise`` calls): image files and folders to PNGs under the same names, .npy to .npy (same
shape), .csv to .csv.
Images come back clipped to their format's range (0-255 for 8-bit). A fully convolutional
model takes images of any size and denoises each at its own size.

Any model is accepted; one trained without noise or blind spot, or trained on another kind of
noise than the data are said to have (``noise``), gets one line of warning.

``shrink=True`` (a blind-spot model, the data's Gaussian or Poisson ``noise`` given) combines
the model's estimate mu with the noisy input y pixel by pixel as the known noise allows: a
blind-spot model cannot use a pixel's own value, which still holds signal; with the noise
variance s2 (sigma^2, or mu / PEAK for Poisson) and v = the local mean (5x5) of (y - mu)^2
less s2, at least 0 (what the model's error adds), the output is mu + v / (v + s2) (y - mu), a
Wiener shrinkage of the residual toward the input (after Laine et al. 2019, who use the known
noise to bring the unseen pixel back; theirs is a learnt Bayesian form).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..data.noise import Noise
from ..errors import ConfigError, DataError
from ..io import checkpoint as ckpt
from ..training.devices import resolve_device

__all__ = ["denoise", "denoise_files", "noise_warning", "shrink_to_input"]

OUTPUTS = (".npy", ".csv")  # or no suffix: a folder of PNGs


def noise_warning(model, noise: str | Noise | None = None) -> str | None:
    """The one line to warn with, or None: the model was not trained to denoise, or on another
    kind (or range of levels) of noise than ``noise``, what the data are said to hold."""
    config = model.config
    said = None if noise is None else noise if isinstance(noise, Noise) else Noise.parse(noise)
    if config.blindspot:
        return None  # trained on the noisy data themselves, whatever their noise
    if not config.data_noise:
        if getattr(model, "fully_convolutional", False):
            return None  # a residual denoiser (dncnn) trained on pairs given to it
        return (
            f"model {model.name!r} was trained without input noise: its output is a plain "
            "reconstruction (train with --noise, or --model blindspot on noisy data alone)"
        )
    trained = Noise.parse(config.data_noise)  # added to clean data, or stated (sure)
    if said is None:
        return None
    if said.kind != trained.kind:
        return (
            f"the data's noise is {said.kind} but model {model.name!r} was trained on "
            f"{trained}: expect a poor denoising (train on {said.kind} noise)"
        )
    lo, hi = trained.level, trained.level if trained.level_max is None else trained.level_max
    top = said.level if said.level_max is None else said.level_max
    if said.level < lo * 0.5 or top > hi * 1.5:
        return (
            f"the data's noise level {said} lies outside the level(s) {trained} the model was "
            "trained on: train on a range (e.g. gaussian:0.02-0.2) to cover it"
        )
    return None


def _model(model_or_run, device="auto"):
    if isinstance(model_or_run, str | os.PathLike):
        return ckpt.load(model_or_run).to(resolve_device(device))
    return model_or_run


def _warn(model, noise) -> None:
    line = noise_warning(model, noise)
    if line:
        warnings.warn(line, stacklevel=3)


def denoise(model_or_run, X, *, noise: str | None = None, units: str = "check",
            device: str = "auto", shrink: bool = False) -> np.ndarray:  # fmt: skip
    """The denoised copy of ``X``, in X's shape and units.

    Parameters
    ----------
    model_or_run : Autoencoder or path
        A model (``aekit.load``) or a run directory.
    X : array
        Rows (N, D) of the model's width, or images (N, H, W) / (N, C, H, W) in the training
        data's units; a fully convolutional model (dncnn, blindspot) takes images of any H, W.
    noise : str, optional
        The noise the data hold (``"gaussian:25/255"``): only checked against the noise the
        model was trained on (one line of warning when they differ), never added.
    units : {"check", "as-is", "convert"}
        As :meth:`aekit.nn.Autoencoder.encode_numpy`.
    shrink : bool
        Combine a blind-spot model's estimate with the noisy input by the known ``noise``
        (Gaussian or Poisson; see the module's docstring); images of a fully convolutional
        model only.

    Returns
    -------
    np.ndarray
        float32, X's shape, the data's units; images clipped to their format's range.
    """
    model = _model(model_or_run, device)
    _warn(model, noise)
    said = _shrink_noise(model, noise, np.ndim(X)) if shrink else None
    return _denoise(model, X, units, said)


def _shrink_noise(model, noise, ndim: int) -> Noise:
    """The noise to shrink by, or one line of error: why shrinking does not apply."""
    if not model.config.blindspot:
        raise ConfigError(
            f"shrink combines a blind-spot model's estimate with the input; model "
            f"{model.name!r} was not trained with a blind spot (--model blindspot)"
        )
    if not getattr(model, "fully_convolutional", False) or ndim not in (3, 4):
        raise ConfigError("shrink takes images (N, H, W) or (N, C, H, W) of a blindspot model")
    said = None if noise is None else noise if isinstance(noise, Noise) else Noise.parse(noise)
    if said is None or said.kind not in ("gaussian", "poisson") or said.level_max is not None:
        raise ConfigError(
            "shrink needs the data's noise, Gaussian or Poisson at one level: "
            "noise='gaussian:25/255' or 'poisson:30'"
        )
    return said


def shrink_to_input(mu: torch.Tensor, y: torch.Tensor, noise: Noise, window: int = 5):
    """mu + v / (v + s2) (y - mu) on images (N, C, H, W), in the model's scaled units: s2 the
    noise variance (sigma^2; mu / PEAK for Poisson), v the local mean of (y - mu)^2 less s2,
    at least 0, over the ``window`` x ``window`` pixels around each (its own included)."""
    import torch.nn.functional as F

    if noise.kind == "gaussian":
        s2 = torch.full_like(mu, noise.level**2)
    else:
        s2 = mu.clamp_min(1.0 / noise.level) / noise.level  # Poisson: variance x / PEAK
    r = y - mu
    pad = window // 2
    mode = "reflect" if min(r.shape[-2:]) > pad else "replicate"
    local = F.avg_pool2d(F.pad(r * r, (pad,) * 4, mode=mode), window, 1)
    v = (local - s2).clamp_min(0.0)
    return mu + v / (v + s2) * r


def _denoise(model, X, units: str, shrink: Noise | None = None) -> np.ndarray:
    arr = np.asarray(X)
    if model.fully_convolutional and arr.ndim in (3, 4):
        return _clip(model, _any_size(model, arr, units, shrink=shrink))
    return _clip(model, model.reconstruct_numpy(arr, units=units))


def _clip(model, X: np.ndarray) -> np.ndarray:
    """Images to [0, their format's maximum] (a denoiser's estimate may overshoot)."""
    u = model.units
    if u is None or not u.image:
        return X
    top = u.max_value if u.max_value is not None else float(u.hi.max())
    return np.clip(X, 0.0, top).astype(np.float32)


def _any_size(model, arr: np.ndarray, units: str, max_value=None, batch_size=64,
              shrink: Noise | None = None) -> np.ndarray:  # fmt: skip
    """Images (N, H, W) / (N, C, H, W) of any size through a fully convolutional model."""
    c = model.config.image_shape[0]
    x4 = arr[:, None] if arr.ndim == 3 else arr
    if x4.shape[1] != c:
        raise DataError(
            f"images of shape {list(arr.shape[1:])} have {x4.shape[1]} channel(s) but the model "
            f"takes {c}; pass (N, {c}, H, W){' or (N, H, W)' if c == 1 else ''} (--color)"
        )
    rows = x4.reshape(len(x4), -1)
    back = 1.0  # converted input (units="convert") goes back to its own units at the end
    if model.units is not None and rows.size:
        checked = model.units.check(rows, mode=units, max_value=max_value)
        if checked is not rows:
            k = int(np.flatnonzero(rows.ravel())[0]) if np.any(rows) else None
            back = 1.0 if k is None else float(rows.ravel()[k] / checked.ravel()[k])
        rows = checked
    scaler = model.scaler
    if scaler is not None and scaler.offset is not None and len(scaler.offset) > 1:
        raise DataError(
            f"the run's {scaler.kind} scaler was fitted per pixel of {model.config.image_shape}: "
            "it cannot scale images of another size (train with --scale image or none)"
        )
    scaled = scaler.transform(rows) if scaler is not None else rows.astype(np.float32)
    p = next(model.parameters())
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(scaled), batch_size):
                t = torch.as_tensor(scaled[i : i + batch_size]).reshape(-1, *x4.shape[1:])
                t = t.to(dtype=p.dtype, device=p.device)
                y = model.reconstruct_images(t)
                if shrink is not None:
                    y = shrink_to_input(y, t, shrink)
                out.append(y.flatten(1).cpu().numpy())
    finally:
        model.train(was_training)
    y = np.concatenate(out) if out else np.zeros_like(scaled)
    y = scaler.inverse_transform(y) if scaler is not None else y
    return (y.reshape(arr.shape) * np.float32(back)).astype(np.float32)


def _check_out(out) -> bool:
    """True for a folder of PNGs; a file must end .npy or .csv."""
    suffix = Path(out).suffix
    if suffix and suffix not in OUTPUTS:
        raise ConfigError(f"cannot write {out}: use a .npy or .csv file, or a folder for images")
    return not suffix


def denoise_files(run, data, out, *, noise: str | None = None, data_dir=None, limit=None,
                  color=None, resize=None, units: str = "check",
                  device: str = "auto", shrink: bool = False) -> tuple[int, str]:  # fmt: skip
    """Denoise the data file or image files ``data`` under a run's model into ``out``.

    ``out`` a folder: PNGs under the input's relative names (image data); ``.npy``: the
    input's shape ((N, H, W) stays (N, H, W)); ``.csv``: rows (named by file for images).
    Image files are read as the run read its own (``color``, ``resize``) unless given; a fully
    convolutional model reads each image at its own size (no resize unless ``resize``).
    ``shrink``: as :func:`denoise` (images of a blindspot run, ``noise`` given).
    Returns (how many samples, what was written).
    """
    from ..data.images import is_image_source

    folder = _check_out(out)
    model = _model(run, device)
    said = None if noise is None else Noise.parse(noise)  # a bad spec fails before any work
    by = _shrink_noise(model, said, 4) if shrink else None
    path = Path(os.fspath(data)) if isinstance(data, str | os.PathLike) else None
    if model.fully_convolutional and path is not None and path.suffix.lower() == ".npy":
        done = _npy_any_size(model, path, out, folder, limit, units, by)
    elif (
        model.fully_convolutional
        and path is not None
        and resize is None
        and (path.exists() and is_image_source(path))
    ):
        done = _images_any_size(model, run, path, out, folder, limit, color, units, by)
    else:
        if by is not None:
            raise ConfigError("--shrink takes image files or a .npy of images, read at any size")
        done = _rows(run, model, data, out, folder, data_dir, limit, color, resize, units)
    _warn(model, said)  # after the work: a refused input gets its one error line alone
    return done


def _rows(run, model, data, out, folder, data_dir, limit, color, resize, units):
    """Data of the model's own width: loaded, checked and scaled as every job on a run."""
    from ..io.files import write_array
    from .evaluate import load_run_data

    device = str(next(model.parameters()).device)
    model, X, ds, _ = load_run_data(run, data, data_dir=data_dir, limit=limit, color=color,
                                    resize=resize, units=units, device=device)  # fmt: skip
    X_hat = model.reconstruct_scaled(X)
    X_hat = _clip(model, model.scaler.inverse_transform(X_hat) if model.scaler else X_hat)
    if folder:
        from ..io.images import write_image_folder

        if ds.image_shape is None:
            raise ConfigError(f"{data} holds rows, not images: write a .npy or .csv file")
        write_image_folder(out, X_hat, ds.image_shape, ds.max_value, ds.files)
        return len(X_hat), f"{len(X_hat)} images to {out}"
    if Path(out).suffix == ".npy" and str(data).lower().endswith(".npy"):
        shape = np.load(data, mmap_mode="r").shape  # (N, H, W) in, (N, H, W) out
        if len(shape) > 2:
            X_hat = X_hat.reshape(len(X_hat), *shape[1:])
    write_array(out, X_hat, ds.files, prefix="x")
    return len(X_hat), f"{len(X_hat)} x {int(np.prod(X_hat.shape[1:]))} to {out}"


def _npy_any_size(model, path: Path, out, folder: bool, limit, units, shrink=None):
    from ..data.sources import load_dataset
    from ..io.files import write_array

    arr = load_dataset(path).X if not path.is_file() else np.load(path, mmap_mode="r")
    if arr.ndim == 2 and arr.shape[1] == model.input_dim:
        arr = arr.reshape(len(arr), *model.config.image_shape)
    if arr.ndim not in (3, 4):
        width = arr.shape[1] if arr.ndim == 2 else "?"
        raise DataError(
            f"{path.name} holds rows of {width} features but the model expects images "
            f"(N, H, W) or (N, C, H, W), or rows of {model.input_dim}"
        )
    arr = np.asarray(arr[:limit] if limit else arr, dtype=np.float32)
    X_hat = _denoise(model, arr, units, shrink)
    if folder:
        from ..io.images import write_images

        top = model.units.max_value if model.units is not None else None
        x4 = X_hat[:, None] if X_hat.ndim == 3 else X_hat
        write_images(out, list(x4), top)
        return len(X_hat), f"{len(X_hat)} images to {out}"
    write_array(out, X_hat if Path(out).suffix == ".npy" else X_hat.reshape(len(X_hat), -1))
    return len(X_hat), f"{len(X_hat)} images of {list(X_hat.shape[1:])} to {out}"


def _images_any_size(model, run, path: Path, out, folder: bool, limit, color, units,
                     shrink=None):  # fmt: skip
    """Each image file read and denoised at its own size (one at a time: sizes may differ)."""
    from ..data.images import list_files, read_images
    from ..io.files import write_array
    from .resume import reading_options

    reading = reading_options(ckpt.read_config(run).get("data", {}))
    color = color or reading.get("color") or "auto"
    files = list_files(path)[:limit] if limit else list_files(path)
    if not files:
        raise DataError(f"{path} holds no images (.png .jpg .webp .tif .bmp)")
    images, names, top = [], [], None
    for file, name in files:
        one = read_images(file, color=color)
        top = one.max_value if top is None else top
        img = _any_size(model, one.X.reshape(1, *one.shape), units, one.max_value,
                        shrink=shrink)  # fmt: skip
        images.append(np.clip(img[0], 0.0, one.max_value) if one.max_value else img[0])
        names.append(name)
    if folder:
        from ..io.images import write_images

        write_images(out, images, top, names)
        return len(images), f"{len(images)} images to {out}"
    if len({img.shape for img in images}) > 1:
        raise DataError(
            f"the images of {path} differ in size: write them to a folder (--out NAME without "
            "a suffix), or pass --resize HxW"
        )
    write_array(out, np.stack([img.reshape(-1) for img in images]), names, prefix="x")
    return len(images), f"{len(images)} images to {out}"
