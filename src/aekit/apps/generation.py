"""What a model can do besides reconstruct: sample, interpolate, score.

- :func:`sample` decodes z ~ N(0, I), the prior of a Gaussian latent, or z ~ p(z), a code
  density (:class:`aekit.apps.density.CodeDensity`): what a deterministic autoencoder samples
  from, and for a VAE a second stage fitted to its posterior means;
- :func:`interpolate` decodes a path between the codes of two inputs (posterior means for a
  VAE): spherical for a Gaussian latent, whose prior mass lies near the sphere of radius
  sqrt(L) rather than on the chord through the middle, linear otherwise;
- :func:`fit_density` and :func:`sample_run` do the same for a saved run: the density is
  fitted on the codes of the run's training data and stored beside its model;
- :func:`log_likelihood` estimates log p(x) by importance sampling with the encoder as the
  proposal, log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K with
  z_k ~ q(z|x): a lower bound in expectation that tightens as K grows (Burda et al. 2016).
  :func:`nll` is its negative mean, in nats, the number papers report for binarised MNIST.

All take already-scaled data and a fixed ``seed``, so their results repeat exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, ModelFileError
from .density import CodeDensity, density_path
from .likelihood import (  # noqa: F401 - log_likelihood, nll: this module's names too
    _param,
    _require_gaussian,
    is_gaussian,
    log_likelihood,
    nll,
)

NO_DENSITY = (
    "{name!r} is deterministic: it has no prior to sample (a model with a Gaussian latent "
    "has); fit a density on its codes first: {hint}"
)


@torch.no_grad()
def sample(model, n: int, seed: int = 0, density: CodeDensity | None = None) -> np.ndarray:
    """n samples x = g(z) in the model's scaled space: (n, D_in).

    z ~ N(0, I) for a Gaussian latent, or z ~ ``density`` when one is given (any model).
    Returns the decoder's mean (sigmoid probabilities for a Bernoulli model). The same
    ``seed`` gives the same samples.

    Raises
    ------
    ConfigError
        A deterministic model without a density, or a density of another code width.
    """
    if int(n) < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {n}")
    width = model.config.latent_dim
    if density is not None:
        if density.dim != width:
            raise ConfigError(
                f"the density is over {density.dim}-dimensional codes, the model's are {width}"
            )
        return model.decode_scaled(density.sample(int(n), seed).astype(np.float32))
    if not is_gaussian(model):
        hint = "aekit.apps.generation.fit_density(run) or CodeDensity.fit(codes)"
        raise ConfigError(NO_DENSITY.format(name=model.name, hint=hint))
    p = _param(model)
    g = torch.Generator(device=p.device).manual_seed(int(seed))
    z = torch.randn((int(n), width), generator=g, dtype=p.dtype, device=p.device)
    return model.decode_scaled(z.cpu().numpy())


INTERPOLATIONS = ("auto", "linear", "spherical")


def code_path(za: np.ndarray, zb: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """``steps`` codes from za to zb (L,): (steps, L).

    linear: (1 - t) za + t zb. spherical (slerp): sin((1 - t) w) / sin w za + sin(t w) / sin w
    zb, w the angle between za and zb, which keeps the norm between |za| and |zb| where the
    chord would pass close to the origin; nearly parallel codes fall back to the chord.
    """
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    za, zb = np.asarray(za, dtype=np.float64), np.asarray(zb, dtype=np.float64)
    if method == "spherical":
        na, nb = np.linalg.norm(za), np.linalg.norm(zb)
        cos = float(np.clip(za @ zb / (na * nb), -1.0, 1.0)) if na > 0 and nb > 0 else 1.0
        w = math.acos(cos)
        if math.sin(w) > 1e-6:
            return (np.sin((1 - t) * w) * za + np.sin(t * w) * zb) / math.sin(w)
    elif method != "linear":
        raise ConfigError(f"unknown interpolation {method!r}; use linear or spherical")
    return (1 - t) * za + t * zb


def interpolate(model, a: np.ndarray, b: np.ndarray, steps: int = 8, method: str = "auto"):
    """Decodings along the path from f(a) to f(b), ``steps`` points: (steps, D_in).

    ``a`` and ``b`` are single samples (D_in,) or rows (1, D_in) in the model's scaled space.
    ``method`` "auto" is spherical for a Gaussian latent, linear otherwise.
    """
    if int(steps) < 2:
        raise ConfigError("interpolation needs steps >= 2 (both end points)")
    if method not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {method!r}; use {', '.join(INTERPOLATIONS)}")
    if method == "auto":
        method = "spherical" if is_gaussian(model) else "linear"
    ends = np.stack([np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)])
    za, zb = model.encode_scaled(ends)
    path = code_path(za, zb, int(steps), method).astype(za.dtype)
    return model.decode_scaled(path)


# ---- saved runs: what ``aekit fit-density / sample / interpolate`` call ----------------------

SOURCES = ("auto", "prior", "density")


def fit_density(
    run,
    data=None,
    *,
    n_components: int = 10,
    covariance_type: str = "full",
    seed: int = 0,
    data_dir=None,
    limit: int | None = None,
    device: str = "auto",
    **reading,
) -> tuple[CodeDensity, Path]:
    """Fit a Gaussian mixture on the codes of the run's training data; store it with the model.

    ``data`` defaults to the rows the run trained on (its data found again, without the
    validation rows it held out); given data (or ``limit``) are encoded as they are
    (``reading``: load_run_data's color, resize and units).
    The density is written to ``density.safetensors`` in the run folder (beside the model file
    when ``run`` names one), with the digest of the weights it was fitted on. Returns the
    density and its path.
    """
    from .evaluate import load_run_data

    if data is None and limit is None:  # the run's own training rows, without its validation
        from ..io import checkpoint as ckpt
        from ..training import resolve_device
        from .resume import training_rows

        model = ckpt.load(run).to(resolve_device(device))
        X = training_rows(run, data_dir=data_dir)
        scored = {
            "data": ckpt.read_config(run)["data"]["source"],
            "split": "the run's training rows",
        }
    else:
        model, X, _, scored = load_run_data(
            run, data, data_dir=data_dir, split="train", limit=limit, device=device, **reading
        )
    density = CodeDensity.fit(
        model.encode_scaled(X), n_components, covariance_type=covariance_type, seed=seed
    )
    density.info.update(fitted_on=scored, model_digest=_model_digest(model))
    return density, density.save(density_path(run))


def load_density(run, model) -> CodeDensity | None:
    """The run's stored density (None when none was fitted), checked against ``model``."""
    path = density_path(run)
    if not path.is_file():
        return None
    density = CodeDensity.load(path)
    if density.info.get("model_digest", _model_digest(model)) != _model_digest(model):
        raise ModelFileError(
            f"{path} was fitted on other weights than the run's model (it was trained "
            f"further); fit it again: aekit fit-density {run}"
        )
    return density


def sample_run(
    run, n: int, seed: int = 0, source: str = "auto", device: str = "auto"
) -> tuple[np.ndarray, object]:
    """n samples of a saved run's model in its scaled space, and the model.

    ``source``: "prior" (a Gaussian latent's N(0, I)), "density" (the fitted code density),
    or "auto": the density when one was fitted, else the prior.
    """
    from ..io.checkpoint import load
    from ..training.devices import resolve_device

    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; use {', '.join(SOURCES)}")
    model = load(run).to(resolve_device(device))
    density = None if source == "prior" else load_density(run, model)
    if source == "density" and density is None:
        raise ConfigError(f"{run} has no code density yet; fit one: aekit fit-density {run}")
    if density is None and not is_gaussian(model):
        raise ConfigError(NO_DENSITY.format(name=model.name, hint=f"aekit fit-density {run}"))
    return sample(model, n, seed, density), model


def interpolate_run(
    run, data=None, *, pairs: int = 4, steps: int = 8, method: str = "auto", seed: int = 0,
    **data_kwargs,
) -> tuple[np.ndarray, object]:  # fmt: skip
    """Interpolations between ``pairs`` pairs of inputs drawn (seeded) from ``data``:
    (pairs, steps, D_in) in the scaled space, and the model. ``data_kwargs`` are
    :func:`aekit.apps.evaluate.load_run_data`'s (data_dir, split, limit, device)."""
    from .evaluate import load_run_data

    model, X, _, _ = load_run_data(run, data, **data_kwargs)
    if int(pairs) < 1 or len(X) < 2 * int(pairs):
        raise ConfigError(f"{pairs} pairs need at least {2 * int(pairs)} inputs; got {len(X)}")
    rows = np.random.default_rng(int(seed)).choice(len(X), 2 * int(pairs), replace=False)
    paths = [interpolate(model, X[i], X[j], steps, method) for i, j in rows.reshape(-1, 2)]
    return np.stack(paths), model


def image_grid(X: np.ndarray, image_shape, ncols: int, pad: int = 2) -> np.ndarray:
    """Rows X (n, C*H*W) in [0, 1] tiled into one uint8 image (rows, cols[, C]), ``pad``
    pixels of black between tiles; values outside [0, 1] are clipped."""
    c, h, w = (int(v) for v in image_shape)
    n = len(X)
    nrows = -(-n // int(ncols))
    grid = np.zeros((c, nrows * (h + pad) + pad, int(ncols) * (w + pad) + pad), dtype=np.float64)
    for k, row in enumerate(np.asarray(X, dtype=np.float64)):
        r, q = divmod(k, int(ncols))
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, y : y + h, x : x + w] = row.reshape(c, h, w)
    img = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
    return img[0] if c == 1 else img.transpose(1, 2, 0)


def _model_digest(model) -> str:
    from ..io.checkpoint import tensors_digest

    return tensors_digest(model.state_dict())
