"""PCA warm start: a dense autoencoder that begins where principal component analysis ends.

The best rank-k linear reconstruction of centred data is PCA's, x_hat = mu + V V^T (x - mu)
with V the top k principal directions (D, k); scikit-learn computes it in milliseconds. A
linear autoencoder (encoder weight V^T, bias -V^T mu; decoder weight V, bias mu) *is* that
solution, so it starts at its own optimum.

A dense model with ReLU hidden layers can start there exactly too, because
relu(s) - relu(-s) = s: the first encoder layer computes the pairs relu(+-v_j^T (x - mu)) for
as many directions j as half its width holds, each further hidden layer passes the pairs on, the
code layer takes z_j = relu(s_j) - relu(-s_j) = s_j for j < k, and the decoder mirrors it (its
first layer makes the pairs relu(+-z_j), its last layer sums +-v_j over them and adds mu). The
units the pairs leave free keep their random initialisation and start with zero weight into
the exact path, so they change nothing at the start and still receive gradients. Directions
beyond the k-th in the first layer are features the code layer may learn to use.

Exact only through an identity output: sigmoid(mu + V z) is not PCA's reconstruction, so
:func:`warm_start_exact` says no for a sigmoid output (the training job resolves "auto" to
identity where the warm start applies). PCA is computed on the data the model sees, the scaled
training rows, so the start is PCA's solution in the scaled space (for the image scaler and a
single scale factor that is PCA in the data's units). Given the run's ``scaler`` with one scale
per column (minmax, standard), PCA is computed in the data's units instead and carried into the
scaled space, s = (x - o) * c: the encoder reads directions V / c and the decoder writes c * V
(each times a common factor g, the geometric mean of c, so that the code keeps the scaled
space's size), which reconstructs exactly PCA's x_hat of the data (a user's PCA; in the scaled
space's own metric the scaled PCA would be better). Tied weights need one set of directions,
so a tied model keeps the scaled space's PCA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["WarmStart", "fit_pca", "pca_warm_start", "warm_start_blocker"]

# hidden activation -> c with c * (act(s) - act(-s)) = s: the pairs trick
_PAIR_GAIN = {"relu": 1.0, "identity": 0.5}


@dataclass
class WarmStart:
    """What :func:`pca_warm_start` did: ``components`` directions in the first layer, of which
    ``code_components`` reach the code; ``reason`` says why nothing was done (else None)."""

    applied: bool
    components: int = 0
    code_components: int = 0
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"kind": "pca" if self.applied else "random", **self.__dict__}


def warm_start_blocker(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot start exactly at PCA's solution, or None when it can."""
    from .arch.dense import DenseAutoencoder

    c = model.config
    if not isinstance(model, DenseAutoencoder):
        return "only dense architectures have a PCA warm start"
    checks = (
        (c.latent == "deterministic", "a Gaussian latent (VAE) is not a PCA"),
        (c.is_plain, "a penalty or an input corruption changes the objective PCA solves"),
        (c.latent_activation == "identity", "the code layer is not linear"),
        (c.output_activation == "identity", "a sigmoid output cannot reproduce PCA exactly"),
        (c.loss == "mse", f"PCA minimises the squared error, not {c.loss}"),
        (not c.hidden or c.activation in _PAIR_GAIN, f"hidden activation {c.activation}"),
    )
    for ok, why in checks:
        if not ok:
            return why
    widths = (*c.hidden, *c.decoder_sizes)
    if widths and min(widths) < 2:
        return "a hidden layer narrower than 2 cannot carry a +/- pair"
    if c.tied and len(c.hidden) > 1:
        return "tied weights with more than one hidden layer"
    return None


def fit_pca(X: np.ndarray, n_components: int, seed: int = 0):
    """(mean (D,), directions V (D, m)) of the rows of X, m = min(n_components, N, D)."""
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    m = int(min(n_components, X.shape[0], X.shape[1]))
    # one BLAS thread: the last bits of an SVD depend on the thread count, and a seeded run
    # must start from the same weights in any process (a resumed run is checked against that)
    with threadpool_limits(limits=1):
        pca = PCA(n_components=m, random_state=seed).fit(np.asarray(X, dtype=np.float64))
    return pca.mean_, pca.components_.T  # (D,), (D, m)


def _per_column_scale(scaler, tied: bool):
    """The scale vector c (D,) of a per-column scaler that the data-unit start applies to."""
    scale = None if scaler is None else getattr(scaler, "scale", None)
    if tied or scale is None or np.size(scale) < 2 or np.ptp(np.asarray(scale)) == 0:
        return None  # one scale factor (or none): PCA of the scaled rows is the data's PCA
    return np.asarray(scale, dtype=np.float64)


def _directions(X, n: int, seed: int, scaler, tied: bool):
    """(scaled mean (D,), encoder directions E (D, m), decoder directions W (D, m))."""
    c = _per_column_scale(scaler, tied)
    if c is None:
        mu, V = fit_pca(X, n, seed)
        return mu, V, V
    raw = scaler.inverse_transform(X).astype(np.float64)
    mu, V = fit_pca(raw, n, seed)
    g = float(np.exp(np.mean(np.log(c))))  # the code keeps the scaled space's size
    offset = np.broadcast_to(np.asarray(scaler.offset, dtype=np.float64), c.shape)
    return (mu - offset) * c, V * (g / c)[:, None], V * (c / g)[:, None]


@torch.no_grad()
def pca_warm_start(model: torch.nn.Module, X: np.ndarray, seed: int = 0, scaler=None) -> WarmStart:
    """Set ``model``'s weights so that its reconstruction equals PCA's on the rows of X.

    X is the (scaled) training data. A dense model with linear code and output and ReLU or
    identity hidden layers (see :func:`warm_start_blocker`) afterwards reconstructs any x as
    mu + V V^T (x - mu) with V the top ``latent_dim`` principal directions of X; other models
    are left as they are and the result says why. With ``scaler`` (the run's, one scale per
    column) the reconstruction is that of PCA of the rows in the data's units, carried into
    the scaled space (see the module's note).
    """
    why = warm_start_blocker(model)
    if why is not None:
        return WarmStart(False, reason=why)
    c = model.config
    hidden = tuple(c.hidden)
    first = hidden[0] // 2 if hidden else c.latent_dim
    mu, E, W = _directions(X, max(first, c.latent_dim), seed, scaler, bool(c.tied))
    E, W = torch.as_tensor(E, dtype=torch.float32), torch.as_tensor(W, dtype=torch.float32)
    mu = torch.as_tensor(mu, dtype=torch.float32)
    k = min(c.latent_dim, E.shape[1])
    if not hidden:
        _linear(model, E[:, :k], W[:, :k], mu)
        return WarmStart(True, k, k)
    gain = _PAIR_GAIN[c.activation]
    m = _encoder_pairs(model, E[:, :first], mu, gain)
    k = min(k, m, *(w // 2 for w in c.decoder_sizes))
    _code_layer(model.encoder[-1], k, m, gain)
    _decoder(model, W[:, :k], mu, k, gain)
    return WarmStart(True, int(E[:, :first].shape[1]), k)


def _linear(model, E: torch.Tensor, W: torch.Tensor, mu: torch.Tensor) -> None:
    """No hidden layer: encoder E^T, bias -E^T mu; decoder W, bias mu (tied: E = W = V)."""
    enc, dec = model.encoder[0], model.decoder[0]
    k = E.shape[1]
    enc.weight.zero_()
    enc.bias.zero_()
    enc.weight[:k] = E.T
    enc.bias[:k] = -(E.T @ mu)
    if not model.config.tied:
        dec.weight.zero_()
        dec.weight[:, :k] = W
    dec.bias.copy_(mu)


def _encoder_pairs(model, V: torch.Tensor, mu: torch.Tensor, gain: float) -> int:
    """First layer: pairs +-(v_j^T (x - mu)); further hidden layers pass pairs on. Returns the
    number of pairs that reach the code layer."""
    m = V.shape[1]
    layer = model.encoder[0]
    layer.weight[:m] = V.T
    layer.weight[m : 2 * m] = -V.T
    layer.bias[:m] = -(V.T @ mu)
    layer.bias[m : 2 * m] = V.T @ mu
    for layer in model.encoder[1:-1]:
        m_in, m = m, min(m, layer.weight.shape[0] // 2)
        _pass_pairs(layer, m_in, m, gain)
    return m


def _pass_pairs(layer, m_in: int, m: int, gain: float) -> None:
    """Rows j and m + j compute act(+-s_j) from the previous layer's pairs at j and m_in + j."""
    j = torch.arange(m)
    layer.weight[: 2 * m] = 0.0
    layer.bias[: 2 * m] = 0.0
    layer.weight[j, j], layer.weight[j, m_in + j] = gain, -gain
    layer.weight[m + j, j], layer.weight[m + j, m_in + j] = -gain, gain


def _code_layer(layer, k: int, m: int, gain: float) -> None:
    """z_j = gain * (h_j - h_{m+j}) = s_j for j < k; the other code units start at zero."""
    j = torch.arange(k)
    layer.weight.zero_()
    layer.bias.zero_()
    layer.weight[j, j], layer.weight[j, m + j] = gain, -gain


def _decoder(model, V: torch.Tensor, mu: torch.Tensor, k: int, gain: float) -> None:
    """Pairs act(+-z_j), passed on, summed by the last layer into mu + V z."""
    j = torch.arange(k)
    layers = list(model.decoder)
    if model.config.tied:  # one hidden layer: the encoder's weights, transposed, are the path
        layers[0].bias.zero_()
        layers[1].bias.copy_(mu)
        return
    first = layers[0]
    first.weight[: 2 * k] = 0.0
    first.bias[: 2 * k] = 0.0
    first.weight[j, j], first.weight[k + j, j] = 1.0, -1.0
    for layer in layers[1:-1]:
        _pass_pairs(layer, k, k, gain)
    last = layers[-1]
    last.weight.zero_()  # units outside the path start with no say in the output
    last.weight[:, :k] = gain * V
    last.weight[:, k : 2 * k] = -gain * V
    last.bias.copy_(mu)
