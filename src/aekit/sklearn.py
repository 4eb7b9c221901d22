"""scikit-learn estimators: an autoencoder as a transformer (fit / transform / inverse).

Parameters are named as in :class:`sklearn.neural_network.MLPRegressor` where they mean the
same thing. ``__init__`` only stores them; everything is checked in ``fit``.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import train_val_split
from .errors import ConfigError, DataError
from .losses import LOSSES
from .models import MODELS, build_model
from .models.base import ACTIVATIONS
from .runs import resolve_output_activation
from .training import OPTIMIZERS, TrainConfig, fit

_ACTIVATION_ALIASES = {"logistic": "sigmoid"}


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn an autoencoder on X; ``transform`` gives its codes, ``inverse_transform`` decodes.

    Training runs in float32. ``transform``, ``inverse_transform`` and ``score`` compute in
    the dtype of their input (float32 or float64), so float64 data give float64 results that
    do not depend on how the rows are batched.

    Parameters
    ----------
    model : str, default="dense"
        A name from :data:`aekit.MODELS` ("dense", "linear", "tied", ...).
    latent_dim : int, default=2
        Size of the code, i.e. the number of output features of ``transform``.
    hidden_layer_sizes : int, tuple of int or None, default=None
        Encoder hidden sizes (the decoder mirrors them); ``()`` means no hidden layer, None
        keeps the model's preset.
    activation : {"relu", "logistic", "sigmoid", "tanh", "identity"} or None, default=None
        Hidden-layer activation ("logistic" is "sigmoid"); None keeps the model's preset.
    solver : {"adam", "sgd", "momentum", "gd"}, default="adam"
        "sgd" is plain minibatch SGD, "momentum" SGD with momentum 0.9, "gd" full-batch
        gradient descent (``batch_size`` is then unused).
    learning_rate_init : float, default=1e-3
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples), as in MLPRegressor.
    max_iter : int, default=200
        Number of epochs.
    loss : {"mse", "mae", "bce", "ssim"} or None, default=None
        The reconstruction loss (for a Gaussian latent, the likelihood: "bce" Bernoulli,
        "mse" Gaussian, "mae" Laplace); None keeps the model's preset ("bce" for "vae" and
        "conv-vae", "mse" otherwise). "bce" and "ssim" need X in [0, 1].
    image_shape : tuple (C, H, W) or None, default=None
        How each row folds into an image: needed by "conv" and "conv-vae" and by the "ssim"
        loss, ignored by the others when None. C * H * W must equal n_features.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of X and stop after ``n_iter_no_change`` epochs
        without improvement of the validation loss; the best epoch's weights are kept.
        Without it, all ``max_iter`` epochs run and the last epoch's weights are kept.
    validation_fraction : float, default=0.1
        Share of X held out when ``early_stopping``; in (0, 1).
    n_iter_no_change : int, default=10
        Patience of ``early_stopping`` in epochs.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the sample order and the validation split.
    verbose : bool, default=False
        Show a progress bar per epoch.

    Attributes
    ----------
    model_ : aekit.models.Autoencoder
        The trained PyTorch model (float32).
    loss_curve_ : list of float
        Training loss per epoch (seed 000's 1/(2N)||X - X_hat||_F^2 for "mse").
    validation_scores_ : list of float or None
        Validation loss per epoch (lower is better) when ``early_stopping``, else None.
    best_validation_loss_ : float or None
        The lowest validation loss, whose weights ``model_`` holds, when ``early_stopping``.
    n_iter_ : int
        Epochs run.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(
        self,
        model: str = "dense",
        latent_dim: int = 2,
        hidden_layer_sizes=None,
        activation: str | None = None,
        solver: str = "adam",
        learning_rate_init: float = 1e-3,
        batch_size="auto",
        max_iter: int = 200,
        loss: str | None = None,
        image_shape: tuple[int, int, int] | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state=None,
        verbose: bool = False,
    ):
        self.model = model
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.loss = loss
        self.image_shape = image_shape
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X, y=None):
        """Train the autoencoder on X (n_samples, n_features); y is ignored.

        Raises
        ------
        ConfigError
            A parameter is invalid (a ValueError, as scikit-learn expects).
        DataError
            X is too small to hold out a validation part for ``early_stopping``.
        """
        self._check_params()
        X = _writable(validate_data(self, X, dtype=np.float32))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        X_train, X_val = X, None
        if self.early_stopping:
            X_train, X_val = train_val_split(X, self.validation_fraction, seed)
        batch_size = min(200, len(X_train)) if self.batch_size == "auto" else self.batch_size
        config = TrainConfig(
            epochs=int(self.max_iter),
            batch_size=int(batch_size),
            optimizer=self.solver,
            lr=float(self.learning_rate_init),
            seed=seed,
            patience=int(self.n_iter_no_change) if self.early_stopping else 0,
        )
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_model(
                self.model,
                X.shape[1],
                latent_dim=int(self.latent_dim),
                hidden=None if hidden is None else tuple(int(h) for h in hidden),
                activation=_ACTIVATION_ALIASES.get(self.activation, self.activation),
                loss=self.loss,
                image_shape=self.image_shape,
                output_activation=resolve_output_activation(self.model, "auto", X),
            )
            best: dict[str, torch.Tensor] = {}

            def keep_best(model, opt, state, improved):
                if improved and X_val is not None:
                    best.update({k: v.clone() for k, v in model.state_dict().items()})

            state = fit(net, X_train, X_val, config, on_epoch_end=keep_best, progress=self.verbose)
        if best:
            net.load_state_dict(best)
        net.eval()
        self.model_ = net
        self.loss_curve_ = [r["train_loss"] for r in state.history]
        self.validation_scores_ = None
        self.best_validation_loss_ = None
        if X_val is not None:
            self.validation_scores_ = [r["val_loss"] for r in state.history]
            self.best_validation_loss_ = float(state.best_loss)
        self.n_iter_ = state.epoch
        self._n_features_out = int(self.latent_dim)
        return self

    def transform(self, X):
        """Codes Z (n_samples, latent_dim), computed in X's float dtype."""
        check_is_fitted(self)
        X = _writable(validate_data(self, X, reset=False, dtype=[np.float64, np.float32]))
        return self._net(X.dtype).encode_numpy(X)

    def inverse_transform(self, X):
        """Decode codes (n_samples, latent_dim) back to (n_samples, n_features_in_)."""
        check_is_fitted(self)
        Z = _writable(check_array(X, dtype=[np.float64, np.float32]))
        if Z.shape[1] != self._n_features_out:
            raise DataError(
                f"inverse_transform expects codes of width latent_dim={self._n_features_out}, "
                f"got {Z.shape[1]} columns"
            )
        return self._net(Z.dtype).decode_numpy(Z)

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error per element (higher is better)."""
        check_is_fitted(self)
        X = _writable(validate_data(self, X, reset=False, dtype=[np.float64, np.float32]))
        X_hat = self._net(X.dtype).reconstruct_numpy(X)
        return -float(np.mean((X_hat.astype(np.float64) - X) ** 2))

    def _net(self, dtype) -> torch.nn.Module:
        """``model_`` in ``dtype``: itself for float32, a converted copy otherwise."""
        torch_dtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        if next(self.model_.parameters()).dtype == torch_dtype:
            return self.model_
        return copy.deepcopy(self.model_).to(torch_dtype)

    def _check_params(self) -> None:
        """Raise ConfigError, naming the parameter, for any invalid setting."""
        if not isinstance(self.model, str) or self.model not in MODELS:
            raise ConfigError(
                f"model must be one of {', '.join(sorted(MODELS))}, got {self.model!r}"
            )
        _check_int("latent_dim", self.latent_dim, 1)
        _check_hidden(self.hidden_layer_sizes)
        activations = sorted({*ACTIVATIONS, *_ACTIVATION_ALIASES})
        if self.activation is not None and self.activation not in activations:
            raise ConfigError(
                f"activation must be one of {', '.join(activations)} or None, "
                f"got {self.activation!r}"
            )
        if self.solver not in OPTIMIZERS:
            raise ConfigError(f"solver must be one of {', '.join(OPTIMIZERS)}, got {self.solver!r}")
        lr = self.learning_rate_init
        if not _is_real(lr) or not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"learning_rate_init must be a positive number, got {lr!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int("batch_size", self.batch_size, 1, "or 'auto'")
        _check_int("max_iter", self.max_iter, 1)
        if self.loss is not None and self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)} or None, got {self.loss!r}")
        if not isinstance(self.early_stopping, bool | np.bool_):
            raise ConfigError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        if not isinstance(self.verbose, numbers.Integral):
            raise ConfigError(f"verbose must be a bool or an int, got {self.verbose!r}")
        vf = self.validation_fraction
        if not _is_real(vf) or not 0 < vf < 1:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {vf!r}")
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)


def _writable(X: np.ndarray) -> np.ndarray:
    """X, copied only if read-only (joblib memmaps): torch warns on non-writable arrays."""
    return np.require(X, requirements="W")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_int(name: str, value, low: int, extra: str = "") -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < low:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        raise ConfigError(f"{name} must be {what}{' ' + extra if extra else ''}, got {value!r}")


def _check_hidden(value) -> None:
    if value is None:
        return
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = [None]
    if any(
        isinstance(s, bool | np.bool_) or not isinstance(s, numbers.Integral) for s in sizes
    ) or any(s < 1 for s in sizes):
        raise ConfigError(
            f"hidden_layer_sizes must be None or a sequence of positive ints, got {value!r}"
        )
