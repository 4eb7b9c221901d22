"""Seed 002, runnable: a classifier's weights, transposed, against a tied autoencoder's.

The seed's notation: an image x in R^D (D = 784), a hidden layer W in R^{K x D} whose i-th row
w_i is a template, h = sigma(W x + b) with sigma the logistic sigmoid, and the synthesis

    x_hat = W^T h = sum_i h_i w_i.

Two models with the same hidden width K are trained on the same images through aekit's one
loop (:func:`aekit.training.fit`): a softmax classifier (h, then logits V h + c, cross-entropy;
:class:`SoftmaxClassifier`) and the tied autoencoder (aekit's ``tied`` preset with one sigmoid
layer: x_hat = W^T h + b', squared error). Each W then synthesises test images by W^T h, and
both syntheses get the same scaling treatment: one scalar alpha and one offset image beta
fitted by least squares on the training images, x_hat = alpha W^T h + beta (:func:`fit_scale`).
Measured: the reconstruction MSE; the share of each image's energy inside the span of the
templates, ||P_W x||^2 / ||x||^2 with P_W the orthogonal projection onto the row space of W
(:func:`row_space_basis`, :func:`energy_share`); and the accuracy of a fresh classifier (same
architecture, another seed, trained on clean images) on each kind of reconstruction.
docs/classifier-transpose.md explains the result.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError

__all__ = [
    "SoftmaxClassifier",
    "energy_share",
    "fit_scale",
    "row_space_basis",
    "synthesize",
]


class SoftmaxClassifier(nn.Module):
    """h = sigma(W x + b) (K sigmoid units), logits = V h + c, trained on cross-entropy.

    aekit's loop carries one tensor per batch, so ``forward`` takes the images with their
    label as the last column, (N, D + 1), and returns ``{"loss": mean cross-entropy,
    "error": share misclassified}``. ``encoder.weight`` is the seed's W (K, D).
    """

    def __init__(self, input_dim: int, hidden: int, n_classes: int = 10) -> None:
        super().__init__()
        self.encoder = nn.Linear(input_dim, hidden)  # W (K, D), b (K,)
        self.head = nn.Linear(hidden, n_classes)  # V (C, K), c (C,)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, K)
        return torch.sigmoid(self.encoder(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        return self.head(self.hidden(x))

    def forward(self, xy: torch.Tensor) -> dict[str, torch.Tensor]:
        x, y = xy[:, :-1], xy[:, -1].round().long()
        logits = self.logits(x)
        return {
            "loss": F.cross_entropy(logits, y),
            "error": (logits.argmax(1) != y).float().mean(),
        }

    @torch.no_grad()
    def predict(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Class of each row of X (N, D), in eval mode."""
        p = next(self.parameters())
        out = [
            self.logits(torch.as_tensor(X[i : i + batch_size], dtype=p.dtype, device=p.device))
            .argmax(1)
            .cpu()
            .numpy()
            for i in range(0, len(X), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def with_labels(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[X | y] (N, D + 1) float32: what :meth:`SoftmaxClassifier.forward` reads."""
    return np.concatenate([X, np.asarray(y, dtype=np.float32)[:, None]], axis=1)


def synthesize(W: np.ndarray, H: np.ndarray) -> np.ndarray:
    """x_hat = W^T h for every row h of H: (N, K) @ (K, D) -> (N, D)."""
    W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
    if W.ndim != 2 or H.ndim != 2 or H.shape[1] != W.shape[0]:
        raise DataError(f"synthesize: W {W.shape} and codes {H.shape} do not fit: W is (K, D)")
    return H @ W


def fit_scale(S: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """Least squares alpha (scalar), beta (D,) of X ~ alpha S + beta over all rows and pixels.

    With S~ and X~ the column-centred S and X: alpha = <S~, X~> / <S~, S~>, and
    beta = mean(X) - alpha mean(S) (column means). alpha = 0 when S is constant per column.
    """
    S, X = np.asarray(S, dtype=np.float64), np.asarray(X, dtype=np.float64)
    if S.shape != X.shape or S.ndim != 2 or len(S) == 0:
        raise DataError(f"fit_scale: syntheses {S.shape} and images {X.shape} must match")
    s_mean, x_mean = S.mean(0), X.mean(0)
    Sc = S - s_mean
    denom = float(np.sum(Sc * Sc))
    alpha = float(np.sum(Sc * (X - x_mean)) / denom) if denom > 0 else 0.0
    return alpha, x_mean - alpha * s_mean


def row_space_basis(W: np.ndarray, rtol: float | None = None) -> np.ndarray:
    """An orthonormal basis Q (D, r) of span{w_1, ..., w_K}, the row space of W (K, D).

    Pivoted QR of W^T = Q R P^T; the rank r counts the |R_ii| above ``rtol`` |R_11|
    (default max(K, D) * machine epsilon, as numpy's ``lstsq`` and ``matrix_rank``).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or not np.all(np.isfinite(W)):
        raise DataError(f"row_space_basis: W must be a finite (K, D) matrix, got {W.shape}")
    Q, R, _ = scipy.linalg.qr(W.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    if diag.size == 0 or diag[0] == 0:
        return np.zeros((W.shape[1], 0))
    tol = (max(W.shape) * np.finfo(np.float64).eps) if rtol is None else rtol
    return Q[:, : int(np.sum(diag > tol * diag[0]))]


def energy_share(X: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """||P x||^2 / ||x||^2 per row x of X, with P = Q Q^T (Q orthonormal columns): in [0, 1].

    A zero row has no energy to share and gets NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    inside = np.sum((X @ Q) ** 2, axis=1)  # ||Q^T x||^2 = ||Q Q^T x||^2
    total = np.sum(X * X, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def project(X: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """P x = Q Q^T x for every row: the closest point to x that W^T h can reach for any h."""
    X = np.asarray(X, dtype=np.float64)
    return (X @ Q) @ Q.T


# ---- the experiment ------------------------------------------------------------------------

FIT_ROWS = 10_000  # training images alpha and beta are fitted on (785 numbers: plenty)


def load_split(data: str, data_dir=None, limit: int | None = None, seed: int = 0):
    """Images in [0, 1] with labels: (X, y, X_test, y_test, image_shape).

    MNIST and Fashion-MNIST bring their test split; any other labelled source (digits, an
    .npz with "y") is split 5:1 by a seeded permutation. ``limit`` caps the training images.
    """
    from ..data import load_dataset

    ds = load_dataset(data, data_dir=data_dir, split="train", limit=limit)
    if ds.labels is None or ds.image_shape is None:
        raise DataError(
            f"the probe needs labelled images; {ds.name} has "
            f"{'no labels' if ds.labels is None else 'no image shape'}"
        )
    scale = np.float32(ds.max_value or 1.0)
    if ds.name in ("mnist", "fashion-mnist"):
        test = load_dataset(data, data_dir=data_dir, split="test")
        X, y, X_t, y_t = ds.X / scale, ds.labels, test.X / scale, test.labels
    else:
        order = np.random.default_rng(seed).permutation(ds.n_samples)
        cut = ds.n_samples - ds.n_samples // 6
        tr, te = order[:cut], order[cut:]
        X, y, X_t, y_t = ds.X[tr] / scale, ds.labels[tr], ds.X[te] / scale, ds.labels[te]
    if len(np.unique(y)) < 2:
        raise DataError("the probe needs at least two classes in the training labels")
    return X, y, X_t, y_t, ds.image_shape


def train_models(X, y, hidden: int, config, device=None, progress: bool = False):
    """(classifier, tied autoencoder, fresh classifier), all through :func:`fit`.

    The classifier and the autoencoder are built after the same ``torch.manual_seed``, so both
    start from the same W; the fresh classifier starts from another seed.
    """
    from ..nn import build_model
    from ..training import fit

    n_classes, D = int(y.max()) + 1, X.shape[1]
    torch.manual_seed(config.seed)
    classifier = SoftmaxClassifier(D, hidden, n_classes)
    torch.manual_seed(config.seed)  # the same initial W: only the objective differs
    autoencoder = build_model(
        "tied", D, hidden=(), latent_dim=hidden,
        latent_activation="sigmoid", output_activation="identity",
    )  # fmt: skip
    torch.manual_seed(config.seed + 1)
    fresh = SoftmaxClassifier(D, hidden, n_classes)
    XY = with_labels(X, y)
    for model, data in ((classifier, XY), (autoencoder, X), (fresh, XY)):
        fit(model, data, config=config, device=device, progress=progress)
        model.cpu().eval()
    return classifier, autoencoder, fresh


def weight_of(model) -> np.ndarray:
    """The seed's W (K, D): the first (only) encoder layer of either model."""
    layer = model.encoder if isinstance(model, SoftmaxClassifier) else model.encoder[0]
    return layer.weight.detach().double().cpu().numpy()


@torch.no_grad()
def hidden_of(model, X: np.ndarray) -> np.ndarray:
    """h = sigma(W x + b) of either model, (N, K)."""
    t = torch.as_tensor(X, dtype=torch.float32)
    h = model.hidden(t) if isinstance(model, SoftmaxClassifier) else model.encode(t)
    return h.double().numpy()


def measure(model, X, X_test, y_test, fresh: SoftmaxClassifier):
    """One model's W^T h reconstructions of X_test and their numbers: (record, X_hat, P_W x)."""
    W = weight_of(model)
    fit_X = X[:FIT_ROWS]
    alpha, beta = fit_scale(synthesize(W, hidden_of(model, fit_X)), fit_X)
    X_hat = alpha * synthesize(W, hidden_of(model, X_test)) + beta
    Q = row_space_basis(W)
    P = project(X_test, Q)
    x_bar = fit_X.mean(0)
    blank = np.max(X, axis=0) == 0
    record = {
        "alpha": alpha,
        "mse": float(np.mean((X_hat - X_test) ** 2)),
        "rank_W": int(Q.shape[1]),
        "energy_share": float(np.nanmean(energy_share(X_test, Q))),
        "energy_share_centred": float(np.nanmean(energy_share(X_test - x_bar, Q))),
        # pixels that are 0 in every training image: d loss / d W = delta x^T never reaches
        # their weights through the encoder, so only a decoder's error can move them
        "weight_share_on_blank_pixels": float(np.sum(W[:, blank] ** 2) / np.sum(W**2)),
        "projection_mse": float(np.mean((P - X_test) ** 2)),
        "fresh_accuracy": float(np.mean(fresh.predict(X_hat.astype(np.float32)) == y_test)),
        "fresh_accuracy_projection": float(np.mean(fresh.predict(P.astype(np.float32)) == y_test)),
    }
    return record, X_hat, P


def best_subspace_share(X, X_test, k: int) -> dict:
    """The most energy any k templates can hold: the top-k right singular vectors of X."""
    fit_X = np.asarray(X[:FIT_ROWS], dtype=np.float64)
    x_bar = fit_X.mean(0)
    out = {}
    for key, A, T in (
        ("energy_share", fit_X, X_test),
        ("energy_share_centred", fit_X - x_bar, X_test - x_bar),
    ):
        V = np.linalg.svd(A, full_matrices=False)[2][:k].T  # (D, k), orthonormal
        out[key] = float(np.nanmean(energy_share(T, V)))
    return out


def run_probe(
    data: str = "mnist",
    *,
    out,
    hidden: int = 64,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    data_dir=None,
    limit: int | None = None,
    device=None,
    progress: bool = False,
) -> dict:
    """Train both models, measure both W^T h reconstructions, write ``out``; the numbers.

    ``out`` receives probe.json (the returned dict), templates.png (the first rows w_i of
    each W) and reconstructions.png (test images, both W^T h, both projections P_W x).

    Raises
    ------
    DataError
        For data without labels or image shape; ConfigError for bad training settings.
    """
    from pathlib import Path

    from ..io.files import make_folder, write_json
    from ..training import TrainConfig
    from ..views.probe import write_probe_figures

    if int(hidden) < 1:
        raise ConfigError(f"hidden must be a positive number of units, got {hidden}")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    X, y, X_test, y_test, image_shape = load_split(data, data_dir, limit, seed)
    out = make_folder(out)
    classifier, autoencoder, fresh = train_models(X, y, int(hidden), config, device, progress)
    result: dict = {"data": str(data), "hidden": int(hidden), "n_train": len(X)}
    result.update({"n_test": len(X_test), "training": {"epochs": epochs, "lr": lr}})
    result["training"].update({"batch_size": batch_size, "seed": seed, "optimizer": "adam"})
    result["classifier_test_accuracy"] = float(np.mean(classifier.predict(X_test) == y_test))
    result["fresh_classifier_test_accuracy"] = float(np.mean(fresh.predict(X_test) == y_test))
    own = autoencoder.reconstruct_scaled(X_test)
    result["autoencoder_own_decoder_mse"] = float(np.mean((own - X_test) ** 2))
    result["mean_image_mse"] = float(np.mean((X[:FIT_ROWS].mean(0) - X_test) ** 2))
    result["blank_pixels"] = int(np.sum(np.max(X, axis=0) == 0))
    shown, rows = {}, {}
    for name, model in (("classifier", classifier), ("autoencoder", autoencoder)):
        rows[name], X_hat, P = measure(model, X, X_test, y_test, fresh)
        shown[name] = (weight_of(model), X_hat, P)
    result["reconstruction"] = rows
    result["best_k_subspace"] = best_subspace_share(X, X_test, int(hidden))
    write_probe_figures(Path(out), shown, X_test, image_shape)
    write_json(Path(out) / "probe.json", result)
    return result
