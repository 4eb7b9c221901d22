"""Anomaly scoring with autoencoders: the robust recipe and its thresholds.

The recipe (measured on the 16 ADBench sets of issue 10, see benchmarks/anomaly.py): each
column is standardised on the training data; an ensemble of small autoencoders is trained,
each on its own random subsample of rows (``max_samples``), for a short schedule (the early
"inlier memorisation" phase, where normal rows are fitted first); halfway through, each member
stops fitting the ``trim`` share of its rows that it reconstructs worst (a truncated loss, so
contaminating anomalies are not learned); members alternate squared and absolute error
(``loss="mixed"``). A row's score under a member is the sum of its elementwise errors, each
divided by that column's 0.9 quantile of the member's errors on the training rows
(``error_quantile``), standardised by the member's mean and standard deviation on the
training data, and averaged over the members. That score is then blended half and half with a
nearest-neighbour one, each part standardised on the same rows: the mean distance of a row
to its 10 nearest reference rows in the standardised space, the reference rows being the
training rows less the ``KNN_CLEAN`` share (30%) the autoencoders score highest
(:func:`clean_rows`): anomalies among the training rows would otherwise be each other's near
neighbours. On request (``isolation_weight``, off by default), an isolation forest
(:mod:`aekit.apps.isolation`) fitted on the same kept rows is blended in last, the score so
far and its own each standardised on all training rows.
:class:`aekit.sklearn.AutoencoderOutlierDetector` is the estimator around these functions.

With clean training rows (``novelty=True``: ADBench's semi-supervised setting) no row is
trimmed, and the autoencoders' score is blended with a nearest-neighbour one: the mean
distance of a row to its ``n_neighbors`` nearest training rows in the same standardised
space (:func:`knn_distances`) to all training rows, each part standardised on the training
rows and weighted ``KNN_WEIGHT`` (:func:`blend`). On clean rows that distance scored far
above the autoencoders alone; with anomalies among the training rows it did so only once
the reference rows were cleaned by the autoencoders (benchmarks/README.md, anomaly.py).

Images (an image shape) get their own recipe, chosen on MNIST training images and
Fashion-MNIST (benchmarks/README.md, anomaly.py): convolutional members (``resolve_model``),
fewer of them on many more rows for fewer epochs (``IMAGE_ENSEMBLE``), pixel errors summed
raw, and with clean training rows the nearest-neighbour part measured between the members'
codes instead of between pixels (:func:`code_knn_scores`).

How well scores find labelled anomalies is :mod:`aekit.apps.anomaly_metrics`; a fitted
detector's folder is written and read by :mod:`aekit.apps.detector`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..functional.losses import elementwise_loss
from ..training import fit

SCALES = ("auto", "standard", "none")
KNN_SPACES = ("auto", "input", "code")
KNN_MAX_ROWS = 20_000  # reference rows kept for the nearest-neighbour part, at most
KNN_WEIGHT = 0.5  # the nearest-neighbour part's weight in the blended score
# training rows with the highest autoencoder scores left out of the nearest-neighbour
# part's reference rows when the training rows may hold anomalies (chosen on the 16 ADBench
# sets, seeds 0 and 1; benchmarks/README.md, anomaly.py)
KNN_CLEAN = 0.3
_EPS = 1e-12

# "auto" on tables (the robust recipe, chosen on the 16 ADBench sets) and on images (an
# image shape: chosen on MNIST training images and Fashion-MNIST, benchmarks/README.md)
TABLE_ENSEMBLE = {"n_estimators": 5, "max_samples": 256, "max_iter": 50}
IMAGE_ENSEMBLE = {"n_estimators": 1, "max_samples": 10_000, "max_iter": 20}


def resolve_model(model: str, image_shape) -> str:
    """'auto': the convolutional preset for images (an image shape), the dense one for rows."""
    if model != "auto":
        return model
    return "conv" if image_shape is not None else "dense"


def resolve_ensemble(n_estimators, max_samples, max_iter, image_shape) -> tuple:
    """(members, rows per member, epochs): each "auto" from ``TABLE_ENSEMBLE`` for rows or
    ``IMAGE_ENSEMBLE`` for images (an image shape: one conv member on all of a class's
    images, up to 10,000, for 20 epochs: on MNIST training images 20 epochs scored above 10,
    and a second member (at 10 epochs, unblurred) did not lift it; benchmarks/README.md)."""
    recipe = TABLE_ENSEMBLE if image_shape is None else IMAGE_ENSEMBLE
    given = {"n_estimators": n_estimators, "max_samples": max_samples, "max_iter": max_iter}
    out = [recipe[k] if isinstance(v, str) and v == "auto" else v for k, v in given.items()]
    return tuple(out)


def resolve_knn_space(space: str, image_shape) -> str:
    """'auto': the members' codes for images (an image shape), the (scaled) input for rows.

    On pixels the distance between images is a poor measure of how alike two digits are; in
    a member's code it scored far higher (benchmarks/README.md, anomaly.py).
    """
    if space != "auto":
        return space
    return "input" if image_shape is None else "code"


def _preset_loss(model: str, loss: str | None) -> str:
    """The loss a member trains with when ``loss`` is None or "mixed": the preset's own."""
    from ..nn.registry import model_spec

    return model_spec(model).defaults.get("loss", "mse") if loss in (None, "mixed") else loss


def resolve_scale(scale: str, model: str, loss: str | None, image_shape) -> str:
    """'auto': standardise unless the model needs inputs in [0, 1] (bce, ssim, images)."""
    if scale != "auto":
        return scale
    loss = _preset_loss(model, loss)
    return "none" if loss in ("bce", "ssim") or image_shape is not None else "standard"


def resolve_error_quantile(error_quantile, model: str, loss: str | None, image_shape):
    """'auto': 0.9 for tables, None (raw sums) for image models (an image shape, bce or ssim).

    Pixels are alike: dividing each by its own training errors amplifies the rarely inked
    ones, and it lowered the MNIST one-class ROC-AUC (benchmarks/README.md, anomaly.py).
    """
    if not (isinstance(error_quantile, str) and error_quantile == "auto"):
        return None if error_quantile is None else float(error_quantile)
    return None if resolve_scale("auto", model, loss, image_shape) == "none" else 0.9


def member_losses(model: str, loss: str | None, image_shape, n: int) -> list[str]:
    """Each member's loss: for "mixed" on a squared-error preset without an image shape,
    squared and absolute error in turn (the absolute error catches anomalies spread thinly
    over many columns, the squared error gross errors in one column; with per-column error
    divisors their average beat either alone on the ADBench sets and still ranks gross
    single-column errors first: benchmarks/README.md, anomaly.py); else one loss."""
    base = _preset_loss(model, loss)
    if loss == "mixed" and base == "mse" and image_shape is None:
        return [("mse", "mae")[i % 2] for i in range(n)]
    return [base] * n


def auto_sizes(model: str, d: int, latent_dim, hidden) -> tuple[int, Any]:
    """The recipe's sizes for "auto": latent max(1, d // 4), one hidden layer of
    max(2 latent, d // 2), for the dense presets with hidden layers; other presets (conv,
    linear, contractive) keep their own sizes. Returns (latent_dim, hidden or None)."""
    from dataclasses import fields

    from ..nn.registry import model_spec

    spec = model_spec(model)
    defaults = {f.name: f.default for f in fields(spec.cls.config_class)}
    recipe = "channels" not in defaults and spec.defaults.get("hidden") != ()
    if latent_dim == "auto":
        latent_dim = max(1, d // 4) if recipe else defaults["latent_dim"]
    if hidden == "auto":
        hidden = (max(2 * int(latent_dim), d // 2),) if recipe else None
    return int(latent_dim), hidden


def fit_scaling(X: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) with X_scaled = (X - offset) * scale; constant columns get scale 1."""
    d = X.shape[1]
    if kind == "none":
        return np.zeros(d), np.ones(d)
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.astype(np.float64).std(axis=0)
    return mean, np.where(std > _EPS, 1.0 / np.where(std > _EPS, std, 1.0), 1.0)


def subsample(n: int, max_samples: int | float, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of one member: ``max_samples`` rows (a share when a float < 1)."""
    k = int(np.ceil(max_samples * n)) if isinstance(max_samples, float) else int(max_samples)
    k = max(1, min(n, k))
    return np.arange(n) if k == n else np.sort(rng.choice(n, k, replace=False))


def trimmed_fit(net, X, X_val, config, callbacks, device, trim: float):
    """Train through the one loop; halfway, drop the ``trim`` share of worst-fitted rows.

    The first half of ``config.epochs`` fits every row; the second fits only the rows whose
    reconstruction loss is at most the (1 - trim) quantile: a truncated loss. Returns the
    second phase's :class:`~aekit.training.TrainState` (the whole one when trim is 0).
    """
    first = config.epochs // 2
    if trim <= 0 or first == 0 or len(X) < 2:
        return fit(net, X, X_val, config, callbacks=callbacks, device=device)
    config_1 = type(config)(**{**vars(config), "epochs": first})
    fit(net, X, X_val, config_1, callbacks=callbacks, device=device)
    losses = per_sample_loss(net, X)
    keep = X[losses <= np.quantile(losses, 1.0 - trim)]
    config_2 = type(config)(**{**vars(config), "epochs": config.epochs - first})
    config_2.seed = config.seed + 1
    return fit(net, keep, X_val, config_2, callbacks=callbacks, device=device)


def resolve_error_blur(error_blur, model: str, loss: str | None, image_shape) -> float | None:
    """'auto': a Gaussian of sigma 1 pixel for images (an image shape) whose members score a
    squared or absolute error, None (no blur) otherwise."""
    if not (isinstance(error_blur, str) and error_blur == "auto"):
        return None if error_blur is None else float(error_blur)
    blurrable = _preset_loss(model, loss) in ("mse", "mae", "ssim")
    return 1.0 if image_shape is not None and blurrable else None


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 2-D Gaussian of ``sigma`` pixels, (2r + 1, 2r + 1) with r = ceil(3 sigma), summing
    to 1 (scipy.ndimage.gaussian_filter's kernel with truncate=3)."""
    r = int(np.ceil(3.0 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def blur_residuals(r: torch.Tensor, image_shape, sigma: float) -> torch.Tensor:
    """Residual rows (N, C*H*W) smoothed channel by channel by :func:`gaussian_kernel`, zero
    outside the image; (N, C*H*W) again."""
    c, h, w = image_shape
    k = torch.as_tensor(gaussian_kernel(sigma), dtype=r.dtype, device=r.device)
    k = k.expand(c, 1, *k.shape)  # one kernel per channel: (C, 1, 2r+1, 2r+1)
    pad = (k.shape[-1] - 1) // 2
    out = torch.nn.functional.conv2d(r.reshape(-1, c, h, w), k, padding=pad, groups=c)
    return out.reshape(len(r), -1)


@torch.no_grad()
def elementwise_errors(
    net, X: np.ndarray, batch_size: int = 4096, blur: float | None = None
) -> np.ndarray:
    """Each element's reconstruction loss (N, D) under ``net``'s own loss, in X's dtype.

    Deterministic: the code is the encoder's (a Gaussian latent's posterior mean), no noise.
    ``blur`` (images, a squared or absolute error): the residual x_hat - x is first smoothed
    by a Gaussian of that many pixels (:func:`blur_residuals`), so that a stroke drawn a pixel
    off counts for less than a stroke missing (benchmarks/README.md, anomaly.py).
    """
    if blur is not None and net.config.loss not in ("mse", "mae", "ssim"):
        raise ConfigError(f"error_blur needs a squared or absolute error, not {net.config.loss}")
    if blur is not None and net.config.image_shape is None:
        raise ConfigError("error_blur needs images: give image_shape")

    def errors(x: torch.Tensor) -> torch.Tensor:
        if net.has_code:
            logits = net.decode_logits(net.encode(x))
            x_hat = net.output(logits)
        else:  # a fully convolutional denoiser: identity output, no code
            x_hat = logits = net.reconstruct(x)
        if blur is None:
            return elementwise_loss(net.config.loss, x_hat, logits, x)
        r = blur_residuals(x_hat - x, net.config.image_shape, blur)
        return r.abs() if net.config.loss == "mae" else 0.5 * r.pow(2)

    out = _in_batches(net, X, errors, batch_size)
    return torch.cat(out).numpy() if out else np.zeros((0, X.shape[1]), X.dtype)


def _in_batches(net, X: np.ndarray, fn, batch_size: int) -> list[torch.Tensor]:
    """``fn`` of each batch of X on ``net``'s device and dtype, in eval mode (its training mode
    restored after), as CPU tensors."""
    p = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        return [
            fn(torch.as_tensor(X[i : i + batch_size]).to(device=p.device, dtype=p.dtype)).cpu()
            for i in range(0, len(X), batch_size)
        ]
    finally:
        net.train(was_training)


def per_sample_loss(net, X) -> np.ndarray:
    """The reconstruction loss of each row (N,): its elementwise losses summed."""
    X = X.cpu().numpy() if torch.is_tensor(X) else X
    return elementwise_errors(net, X).astype(np.float64).sum(axis=1)


def error_scales(errors: np.ndarray, quantile: float | None) -> np.ndarray:
    """Per-column divisors (D,) of one member's elementwise errors on the training rows (N, D).

    The ``quantile`` of each column's errors, floored at 1e-3 of the mean error (a column the
    member fits perfectly still gets a finite weight); None: ones (errors summed as they are).
    A column whose errors are naturally large (a heavy-tailed or hard-to-predict feature)
    then counts no more than the others, and an error far beyond its own column's usual
    range counts for more (benchmarks/README.md, anomaly.py).
    """
    errors = np.asarray(errors, dtype=np.float64)
    if quantile is None or len(errors) == 0:
        return np.ones(errors.shape[1])
    floor = 1e-3 * float(errors.mean()) + _EPS
    return np.quantile(errors, quantile, axis=0) + floor


def member_stats(
    nets, X: np.ndarray, quantile: float | None = None, blur: float | None = None
) -> tuple[list[tuple[float, float]], list[np.ndarray], np.ndarray]:
    """Each member's (mean, sd) of its per-row scores on the training data X, its column
    divisors (:func:`error_scales`), and the anomaly scores of X (what
    :func:`anomaly_scores` gives, from the same pass); ``blur`` as in
    :func:`elementwise_errors`."""
    stats, scales, total = [], [], np.zeros(len(X))
    for net in nets:
        errors = elementwise_errors(net, X, blur=blur).astype(np.float64)
        scale = error_scales(errors, quantile)
        losses = (errors / scale).sum(axis=1)
        mu, sd = float(losses.mean()), float(max(losses.std(), _EPS))
        stats.append((mu, sd))
        scales.append(scale)
        total += (losses - mu) / sd
    return stats, scales, _finite(total / len(nets))


def feature_errors(nets, stats, X: np.ndarray, scales=None, blur=None) -> np.ndarray:
    """(N, D) per-feature errors: each member's divided by its column divisors and its
    training sd, averaged over the members (``scales`` None: no column divisors).

    Row sums equal the anomaly score up to a constant: -score_samples(X) = sum_j F_ij - c.
    """
    total = np.zeros(X.shape, dtype=np.float64)
    scales = [None] * len(nets) if scales is None else scales
    for net, (_, sd), scale in zip(nets, stats, scales, strict=True):
        errors = elementwise_errors(net, X, blur=blur).astype(np.float64)
        total += (errors if scale is None else errors / scale) / sd
    return total / len(nets)


def anomaly_scores(nets, stats, X: np.ndarray, scales=None, blur=None) -> np.ndarray:
    """Mean over members of the standardised per-row score (N,); higher = more abnormal."""
    shift = np.mean([mu / sd for mu, sd in stats])
    return _finite(feature_errors(nets, stats, X, scales, blur).sum(axis=1) - shift)


def resolve_neighbors(n_neighbors, novelty: bool, image_shape=None) -> int | None:
    """'auto': 5 neighbours with clean training rows (``novelty``); 10 on tables whose
    training rows may hold anomalies (their reference rows cleaned: :func:`resolve_knn_clean`);
    none (off) for images without ``novelty``."""
    if isinstance(n_neighbors, str) and n_neighbors == "auto":
        if novelty:
            return 5
        return None if image_shape is not None else 10
    return None if n_neighbors is None else int(n_neighbors)


def resolve_knn_clean(knn_clean, novelty: bool) -> float:
    """'auto': 0 with clean training rows (``novelty``), else ``KNN_CLEAN``: the share of
    training rows the autoencoders score highest that the nearest-neighbour part leaves
    out of its reference rows (anomalies among the training rows are each other's near
    neighbours; the autoencoders, fitted first, find most of them)."""
    if isinstance(knn_clean, str) and knn_clean == "auto":
        return 0.0 if novelty else KNN_CLEAN
    return float(knn_clean)


def resolve_isolation(weight) -> float | None:
    """The isolation part's weight, or None (no such part) for None or 0."""
    return None if weight is None or float(weight) == 0 else float(weight)


def clean_rows(scores: np.ndarray, share: float) -> np.ndarray:
    """Sorted indices of the rows kept when the ``share`` with the highest ``scores`` is left
    out: the rows whose score is at most the (1 - share) quantile (all rows when share is 0;
    ties at the quantile are kept, so at least one row is)."""
    scores = np.asarray(scores, dtype=np.float64)
    if share <= 0 or len(scores) == 0:
        return np.arange(len(scores))
    return np.flatnonzero(scores <= np.quantile(scores, 1.0 - share))


def knn_reference(n: int, rng: np.random.Generator, kept: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of the nearest-neighbour part's reference rows among n training rows:
    all of them (or of the ``kept`` rows, sorted indices from :func:`clean_rows`), or
    ``KNN_MAX_ROWS`` of them drawn at random when there are more."""
    kept = np.arange(n) if kept is None else np.asarray(kept)
    return kept[subsample(len(kept), min(len(kept), KNN_MAX_ROWS), rng)]


def knn_training_distances(X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """:func:`knn_distances` of the training rows X (N,) to the reference rows X[rows],
    a reference row not being its own neighbour (a leave-one-out estimate)."""
    reference = np.asarray(X[rows], dtype=np.float64)
    if len(rows) == len(X):
        return knn_distances(reference, reference, k, self_excluded=True)
    dist, _ = _neighbours(reference, X, k + 1, self_excluded=False)
    own = np.zeros(len(X), dtype=bool)
    own[rows] = True  # the nearest of these is the row itself, at distance 0
    return np.where(own, dist[:, 1:].mean(axis=1), dist[:, :k].mean(axis=1))


def _neighbours(reference: np.ndarray, X: np.ndarray, k: int, self_excluded: bool):
    """(distances, indices) of each row's k nearest reference rows, nearest first; with
    ``self_excluded`` X is the reference itself and no row is its own neighbour."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k).fit(reference)
    X = np.asarray(reference if self_excluded else X, dtype=np.float64)
    # scikit-learn leaves each reference row out of its own neighbours when given no rows
    _, idx = nn.kneighbors() if self_excluded else nn.kneighbors(X)
    # the distances again, each from its own pair of rows: with many columns scikit-learn
    # computes them through matrix products, whose last bits depend on how many rows are
    # scored at once; these do not (a file streamed in blocks scores as loaded whole)
    reference = np.asarray(reference, dtype=np.float64)
    dist = np.empty(idx.shape)
    for i in range(0, len(X), 4096):  # (rows, k, D) at a time
        part = X[i : i + 4096, None, :] - reference[idx[i : i + 4096]]
        dist[i : i + 4096] = np.sqrt((part**2).sum(axis=2))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


def knn_distances(
    reference: np.ndarray, X: np.ndarray, k: int, self_excluded: bool = False
) -> np.ndarray:
    """Each row's mean Euclidean distance (N,) to its ``k`` nearest reference rows (with
    ``self_excluded``, X is the reference and a row is not its own neighbour)."""
    return _neighbours(reference, X, k, self_excluded)[0].mean(axis=1)


def knn_feature_shares(
    reference: np.ndarray, X: np.ndarray, k: int, self_excluded: bool = False
) -> np.ndarray:
    """(N, D) column shares of :func:`knn_distances`: for each neighbour n of row x, column
    j gets (x_j - n_j)^2 / ||x - n|| (nothing when x = n), averaged over the k neighbours;
    each row sums to its mean distance."""
    _, idx = _neighbours(reference, X, k, self_excluded)
    X = np.asarray(X, dtype=np.float64)
    total = np.zeros(X.shape)
    for j in range(k):
        sq = (X - reference[idx[:, j]]) ** 2
        norm = np.sqrt(sq.sum(axis=1, keepdims=True))
        total += np.divide(sq, norm, out=np.zeros_like(sq), where=norm > 0)
    return total / k


DEAD_TRIES = 3  # trainings of an image member, at most, until its output is alive


@torch.no_grad()
def is_dead(net, X: np.ndarray, rows: int = 256, ratio: float = 1e-3) -> bool:
    """Whether ``net``'s reconstruction no longer depends on its input: over the first
    ``rows`` rows of X, its outputs' standard deviation across rows, averaged over the
    outputs, is below ``ratio`` times that of the inputs.

    A conv member with a sigmoid output and squared error can saturate in its first steps on
    sparse images (every logit far below zero, no gradient left): on MNIST ones it gave the
    same blank image for every input (output spread 1e-8 against the inputs' 0.2) and a
    ROC-AUC of 0.95 where PCA had 0.999.
    """
    if len(X) < 2 or not net.has_code:
        return False
    p = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        x = torch.as_tensor(X[:rows]).to(device=p.device, dtype=p.dtype)
        spread = net.reconstruct(x).std(dim=0).mean()
    finally:
        net.train(was_training)
    return bool(spread < ratio * x.std(dim=0).mean())


@torch.no_grad()
def member_codes(net, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The member's codes of X (N, latent) in float64: the encoder's (a Gaussian latent's
    posterior mean), no noise."""
    out = _in_batches(net, X, lambda x: net.encode(x).double(), batch_size)
    return torch.cat(out).numpy() if out else np.zeros((0, net.config.latent_dim))


def code_knn_fit(nets, reference: np.ndarray, k: int) -> tuple[list, list]:
    """The code-space nearest-neighbour part of each member, fitted on the reference rows.

    For member m: its codes C of the reference rows divided by s_m, the mean over the code's
    coordinates of their standard deviation (so that codes of any spread compare alike), and
    (s_m, mu_m, sd_m): the mean and standard deviation of the reference rows' leave-one-out
    distances (each row's mean distance to its k nearest others). Returns (the scaled
    reference codes per member, the (s, mu, sd) per member); :func:`code_knn_scores` uses
    both.
    """
    codes, stats = [], []
    for net in nets:
        C = member_codes(net, reference)
        s = float(max(C.std(axis=0).mean(), _EPS))
        loo = knn_distances(C / s, C / s, k, self_excluded=True)
        codes.append(C / s)
        stats.append((s, float(loo.mean()), float(max(loo.std(), _EPS))))
    return codes, stats


def code_knn_scores(nets, codes, stats, X: np.ndarray, k: int) -> np.ndarray:
    """Each row's code-space neighbour score (N,): over the members, the mean of
    (d_m(x) - mu_m) / sd_m, d_m(x) the mean distance of x's scaled code (its code / s_m) to
    its k nearest scaled reference codes (``codes``, ``stats`` from :func:`code_knn_fit`)."""
    total = np.zeros(len(X))
    for net, C, (s, mu, sd) in zip(nets, codes, stats, strict=True):
        total += (knn_distances(C, member_codes(net, X) / s, k) - mu) / sd
    return _finite(total / len(nets))


def code_knn_training_scores(codes, stats, k: int) -> np.ndarray:
    """:func:`code_knn_scores` of the reference rows themselves, each row left out of its
    own neighbours (what the blend standardises the part by)."""
    total = np.zeros(len(codes[0]))
    for C, (_, mu, sd) in zip(codes, stats, strict=True):
        total += (knn_distances(C, C, k, self_excluded=True) - mu) / sd
    return _finite(total / len(codes))


def blend_stats(ae_train: np.ndarray, knn_train: np.ndarray) -> tuple[float, ...]:
    """(mean, sd) of the autoencoders' and of the nearest-neighbour scores on the training
    rows: what :func:`blend` standardises each part by."""
    return (
        float(ae_train.mean()),
        float(max(ae_train.std(), _EPS)),
        float(knn_train.mean()),
        float(max(knn_train.std(), _EPS)),
    )


def blend(ae: np.ndarray, knn: np.ndarray, stats, weight: float = KNN_WEIGHT) -> np.ndarray:
    """(1 - weight) (ae - mean) / sd + weight (knn - mean) / sd, each part standardised by
    its training rows (``stats`` from :func:`blend_stats`); the nearest-neighbour part with
    ``KNN_WEIGHT``, an isolation forest with ``isolation_weight`` (its second part)."""
    mu_a, sd_a, mu_k, sd_k = stats
    w = float(weight)
    return _finite((1 - w) * (ae - mu_a) / sd_a + w * (knn - mu_k) / sd_k)


def _finite(scores: np.ndarray) -> np.ndarray:
    """Overflowing rows (inf, or NaN from inf - inf) score as the largest float: most abnormal."""
    big = np.finfo(np.float64).max
    return np.nan_to_num(scores, nan=big, posinf=big, neginf=-big)


def contamination_offset(scores: np.ndarray, contamination: float) -> float:
    """The ``contamination`` quantile of score_samples on the training data (IsolationForest)."""
    return float(np.percentile(scores, 100.0 * contamination))


def fpr_offset(scores: np.ndarray, fpr: float) -> tuple[float, float]:
    """(offset, achieved rate): the conformal threshold of :func:`conformal_threshold`, and
    the share of ``scores`` themselves flagged by it."""
    t = conformal_threshold(scores, fpr)
    return t["offset"], t["achieved_fpr"]


def conformal_threshold(scores: np.ndarray, fpr: float, level: float = 0.95) -> dict:
    """The threshold that flags a new normal row with probability at most ``fpr``.

    ``scores`` are score_samples of n held-out normal rows (lower = more abnormal); a row is
    flagged when its score is strictly below ``offset``. With k = floor(fpr * (n + 1)) the
    offset is the k-th smallest score: for a new row exchangeable with the n (a split
    conformal bound, Vovk et al. 2005; Angelopoulos & Bates 2021) its score lies below the
    k-th smallest of them with probability at most k / (n + 1) <= fpr, whatever the model.
    That probability is over the calibration draw too; the false-positive rate of this one
    threshold on future rows is distributed Beta(k, n + 1 - k) (continuous scores), whose
    central ``level`` interval is returned as ``fpr_interval``.

    Returns {"offset", "k", "expected_fpr" (k / (n + 1)), "fpr_interval" [lo, hi],
    "achieved_fpr" (the share of ``scores`` flagged), "n_samples"}.

    Raises
    ------
    ConfigError
        Fewer normal rows than the guarantee needs (k = 0: at least 1 / fpr - 1 rows).
    """
    from scipy.stats import beta

    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(ordered)
    k = int(np.floor(fpr * (n + 1) + 1e-9))
    if k < 1:
        need = int(np.ceil(1.0 / fpr - 1.0))
        raise ConfigError(
            f"a false-positive rate of {fpr:g} needs at least {need} normal rows to "
            f"calibrate on (got {n}); give more normal rows or a larger rate"
        )
    offset = float(ordered[k - 1])
    tail = (1.0 - level) / 2
    interval = [float(beta.ppf(tail, k, n + 1 - k)), float(beta.ppf(1 - tail, k, n + 1 - k))]
    return {
        "offset": offset,
        "k": k,
        "expected_fpr": k / (n + 1),
        "fpr_interval": interval,
        "interval_level": level,
        "achieved_fpr": float(np.mean(ordered < offset)),
        "n_samples": n,
    }
