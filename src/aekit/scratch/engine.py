"""The seed-000 autoencoder as whole-batch matrices: forward, loss, backward and training.

Notation is the seed's: ``X`` (N x D_in), ``W_E`` (D_in x D_latent), ``b_E`` (1 x D_latent),
``Z = s_enc(X W_E + b_E)``, ``W_D`` (D_latent x D_in), ``b_D`` (1 x D_in),
``X_hat = s_dec(Z W_D + b_D)``. Weights act from the right (``H @ W``), the transpose of torch's
``nn.Linear`` layout; :mod:`aekit.scratch.interop` converts between the two.

Parameter names
---------------
With ``hidden=()`` the parameters are exactly the seed's ``W_E, b_E, W_D, b_D``. With
``hidden=(h1, ..., h_{L-1})`` the encoder is ``D_in -> h1 -> ... -> D_latent`` (L layers named
``W_E1, b_E1, ..., W_EL, b_EL`` in forward order, ``W_EL`` is the latent layer) and the decoder
mirrors it (``W_D1, b_D1, ..., W_DL, b_DL`` in forward order, ``W_DL`` produces ``X_hat``).
Tied: decoder layer k uses ``W_E(L+1-k)^T`` (seed: ``W_D = W_E^T``) and ``params`` holds no
decoder weights, only the decoder biases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .activations import get_activation
from .interop import TorchLayout
from .losses import LOSSES, bce_with_logits, mse
from .optim import make_optimizer


class Layer(NamedTuple):
    """One affine layer ``A = H W + b`` followed by ``activation``."""

    weight: str  # key of W in params
    transposed: bool  # tied decoder layer: uses params[weight].T
    bias: str  # key of b in params
    activation: str


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Autoencoder(TorchLayout):
    """Dense autoencoder of the seed's derivation, in NumPy only.

    Parameters
    ----------
    d_in, d_latent : int
        Input width ``D_in`` and code width ``D_latent``.
    encoder_activation : str
        ``s_enc``, one of ``relu, sigmoid, tanh, identity``: applied after every encoder layer
        (the latent one included) and after the decoder's hidden layers.
    decoder_activation : str
        ``s_dec``, applied to the output ``X_hat`` only.
    tied : bool
        Decoder weights are the encoder's transposed (``W_D = W_E^T``).
    seed : int
        Seed of ``np.random.default_rng`` for the initialisation: every weight and bias is drawn
        from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``torch.nn.Linear``'s default) in the order
        of ``params`` (weight then bias, encoder layers then decoder layers).
    dtype : np.float32 or np.float64
        Dtype of every parameter, activation, gradient and optimiser state.
    hidden : sequence of int
        Hidden widths between ``D_in`` and ``D_latent``; the decoder mirrors them.

    Attributes
    ----------
    params : dict[str, np.ndarray]
        The parameters by name (see the module docstring), in forward order.
    """

    def __init__(
        self,
        d_in: int,
        d_latent: int,
        encoder_activation: str = "sigmoid",
        decoder_activation: str = "identity",
        tied: bool = False,
        seed: int = 0,
        dtype: type | np.dtype | str = np.float64,
        hidden: Sequence[int] = (),
    ) -> None:
        self.d_in = _positive_int(d_in, "d_in")
        self.d_latent = _positive_int(d_latent, "d_latent")
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
        self.hidden = tuple(_positive_int(h, "each hidden width") for h in hidden)
        get_activation(encoder_activation)
        get_activation(decoder_activation)
        self.encoder_activation = encoder_activation
        self.decoder_activation = decoder_activation
        self.tied = bool(tied)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.layers = self._build_layers()
        self.params = self._init_params(seed)

    def _build_layers(self) -> list[Layer]:
        dims = [self.d_in, *self.hidden, self.d_latent]
        L = len(dims) - 1
        suffix = [""] if L == 1 else [str(k) for k in range(1, L + 1)]
        enc, dec = self.encoder_activation, self.decoder_activation
        layers = [Layer(f"W_E{s}", False, f"b_E{s}", enc) for s in suffix]
        for k, s in enumerate(suffix):
            act = dec if k == L - 1 else enc
            if self.tied:  # decoder layer k mirrors encoder layer L-1-k
                layers.append(Layer(layers[L - 1 - k].weight, True, f"b_D{s}", act))
            else:
                layers.append(Layer(f"W_D{s}", False, f"b_D{s}", act))
        self.dims = dims + dims[-2::-1]  # widths of X, H_1, ..., Z, ..., X_hat
        return layers

    def _init_params(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for l, layer in enumerate(self.layers):
            fan_in, fan_out = self.dims[l], self.dims[l + 1]
            bound = 1.0 / np.sqrt(fan_in)
            if not layer.transposed:
                w = rng.uniform(-bound, bound, size=(fan_in, fan_out))
                params[layer.weight] = w.astype(self.dtype)
            params[layer.bias] = rng.uniform(-bound, bound, size=(1, fan_out)).astype(self.dtype)
        return params

    def __repr__(self) -> str:
        return (
            f"Autoencoder(d_in={self.d_in}, d_latent={self.d_latent}, "
            f"encoder_activation={self.encoder_activation!r}, "
            f"decoder_activation={self.decoder_activation!r}, tied={self.tied}, "
            f"dtype={self.dtype.name}, hidden={self.hidden})"
        )

    # ------------------------------------------------------------------ forward
    def weight(self, layer: Layer) -> np.ndarray:
        """The matrix ``W`` of ``layer`` (a transposed view for a tied decoder layer)."""
        w = self.params[layer.weight]
        return w.T if layer.transposed else w

    def _check_X(self, X: object, width: int | None = None, name: str = "X") -> np.ndarray:
        """``X`` as a finite 2-D array of the model's dtype (no copy when it already is one)."""
        width = self.d_in if width is None else width
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != width or X.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N, {width}) with N >= 1, got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    def _forward(
        self, H: np.ndarray, layers: Sequence[Layer]
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Run ``layers``; return every layer's input ``H``, pre-activation ``A`` and the output."""
        inputs, pre = [], []
        for layer in layers:
            # A = H W + b: (N, d_l-1) @ (d_l-1, d_l) + (1, d_l) -> (N, d_l)
            A = H @ self.weight(layer) + self.params[layer.bias]
            inputs.append(H)
            pre.append(A)
            H = get_activation(layer.activation).fn(A)
        return inputs, pre, H

    def encode(self, X: object) -> np.ndarray:
        """``Z = s_enc(X W_E + b_E)``: (N, D_in) -> (N, D_latent)."""
        L = len(self.layers) // 2
        return self._forward(self._check_X(X), self.layers[:L])[2]

    def decode(self, Z: object) -> np.ndarray:
        """``X_hat = s_dec(Z W_D + b_D)``: (N, D_latent) -> (N, D_in)."""
        L = len(self.layers) // 2
        Z = self._check_X(Z, self.d_latent, "Z")
        return self._forward(Z, self.layers[L:])[2]

    def forward(self, X: object) -> np.ndarray:
        """``X_hat = decode(encode(X))``: (N, D_in) -> (N, D_in)."""
        return self._forward(self._check_X(X), self.layers)[2]

    # --------------------------------------------------------------- objective
    def _check_kind(self, kind: str) -> None:
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
        if kind == "bce" and self.decoder_activation != "sigmoid":
            raise ValueError(
                "loss 'bce' needs decoder_activation='sigmoid' (it is computed from the logits), "
                f"got decoder_activation={self.decoder_activation!r}"
            )

    def _objective(
        self, X: np.ndarray, A_out: np.ndarray, X_hat: np.ndarray, kind: str
    ) -> tuple[float, np.ndarray]:
        """Loss value and ``dL/dA_out``, the error at the output's pre-activation."""
        if kind == "bce":  # sigmoid output: dL/dA_out = (X_hat - X)/N directly
            return bce_with_logits(X, A_out, X_hat)
        value, delta = mse(X, X_hat)  # delta_out = dL/dX_hat = (X_hat - X)/N   (N, D_in)
        if self.decoder_activation != "identity":
            # dL/dA_out = delta_out ⊙ s_dec'(Z W_D + b_D)   (N, D_in)
            delta *= get_activation(self.decoder_activation).grad(A_out, X_hat)
        return value, delta

    def loss(self, X: object, kind: str = "mse") -> float:
        """``1/(2N) ||X - X_hat||_F^2`` (``"mse"``) or the mean-over-samples BCE (``"bce"``)."""
        self._check_kind(kind)
        X = self._check_X(X)
        _, pre, X_hat = self._forward(X, self.layers)
        return self._objective(X, pre[-1], X_hat, kind)[0]

    def _loss_and_gradients(self, X: np.ndarray, kind: str) -> tuple[float, dict[str, np.ndarray]]:
        """Backpropagation; with ``hidden=()`` the loop runs exactly the seed's lines."""
        inputs, pre, X_hat = self._forward(X, self.layers)
        value, delta = self._objective(X, pre[-1], X_hat, kind)  # delta_out   (N, D_in)
        grads: dict[str, np.ndarray] = {}
        for l in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[l]
            # dL/dW_l = H_{l-1}^T delta_l (seed: dL/dW_D = Z^T delta_out, dL/dW_E = X^T delta_E)
            g_W = inputs[l].T @ delta  # (d_l-1, N) @ (N, d_l) -> (d_l-1, d_l)
            # dL/db_l = 1^T delta_l, the column sums   (1, d_l)
            grads[layer.bias] = delta.sum(axis=0, keepdims=True)
            if layer.transposed:  # tied: W_D = W_E^T, so dL/dW_E gains (dL/dW_D)^T
                g_W = g_W.T  # (d_l, d_l-1)
            old = grads.get(layer.weight)  # a tied W_E sums its encoder and decoder paths
            grads[layer.weight] = g_W if old is None else old + g_W
            if l == 0:
                break
            # dL/dH_{l-1} = delta_l W_l^T (seed: delta_latent = delta_out W_D^T)
            delta = delta @ self.weight(layer).T  # (N, d_l) @ (d_l, d_l-1) -> (N, d_l-1)
            below = self.layers[l - 1]
            if below.activation != "identity":
                # delta_{l-1} = dL/dH_{l-1} ⊙ s'(A_{l-1}) (seed: delta_E = delta_latent ⊙
                # s_enc'(X W_E + b_E)); H_{l-1} = s(A_{l-1}) is the input of layer l
                delta *= get_activation(below.activation).grad(pre[l - 1], inputs[l])
        return value, {name: grads[name] for name in self.params}

    def loss_and_gradients(
        self, X: object, kind: str = "mse"
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and ``{name: dL/dparam}`` keyed like :attr:`params`, in one pass."""
        self._check_kind(kind)
        return self._loss_and_gradients(self._check_X(X), kind)

    def gradients(self, X: object, kind: str = "mse") -> dict[str, np.ndarray]:
        """``{name: dL/dparam}`` keyed like :attr:`params` (``W_E, b_E, W_D, b_D`` for the seed)."""
        return self.loss_and_gradients(X, kind)[1]

    # ---------------------------------------------------------------- training
    def fit(
        self,
        X: object,
        epochs: int = 10,
        batch_size: int | str | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        shuffle: bool = True,
        seed: int = 0,
        loss: str = "mse",
    ) -> list[float]:
        """Train in place and return the per-epoch mean training losses.

        Parameters
        ----------
        X : array of shape (N, D_in)
            Training data, converted to the model's dtype once.
        epochs : int
            Passes over ``X``.
        batch_size : int, None or "full"
            Rows per step; ``None``, ``"full"`` or any value ``>= N`` is full-batch, where each
            step uses ``X`` itself in its given order.
        optimizer : {"gd", "sgd", "momentum", "adam"}
            See :mod:`aekit.scratch.optim`; ``"gd"`` is full-batch only.
        lr : float
            Learning rate.
        shuffle : bool
            Minibatches of epoch ``e`` (0-based) are the consecutive slices of
            ``np.random.default_rng(seed + e).permutation(N)`` (the last one may be shorter);
            with ``shuffle=False`` they are consecutive slices of ``X``.
        seed : int
            Base seed of the minibatch order.
        loss : {"mse", "bce"}
            Objective, as in :meth:`loss`.

        Returns
        -------
        list of float
            For each epoch, the batch losses (before each step) averaged with weights equal to
            the batch sizes, i.e. the mean per-sample loss seen during the epoch.
        """
        self._check_kind(loss)
        X = self._check_X(X)
        N = X.shape[0]
        epochs = _positive_int(epochs, "epochs")
        if batch_size is None or batch_size == "full":
            batch_size = N
        batch_size = min(_positive_int(batch_size, "batch_size"), N)
        if optimizer == "gd" and batch_size < N:
            raise ValueError("optimizer 'gd' is full-batch; use 'sgd' for minibatches")
        opt = make_optimizer(optimizer, lr)
        history = []
        for epoch in range(epochs):
            order = None  # full batch or no shuffle: consecutive slices, views of X
            if shuffle and batch_size < N:
                order = np.random.default_rng(seed + epoch).permutation(N)
            total = 0.0
            for start in range(0, N, batch_size):
                stop = start + batch_size
                # index once per step: a view, or one gather of the batch's rows
                Xb = X[start:stop] if order is None else X[order[start:stop]]
                value, grads = self._loss_and_gradients(Xb, loss)
                if not np.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch}; try a smaller lr (now {lr})"
                    )
                opt.step(self.params, grads)
                total += value * Xb.shape[0]
            history.append(total / N)
        return history
