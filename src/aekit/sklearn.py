"""scikit-learn estimators: an autoencoder as a transformer (fit / transform / inverse).

Parameters are named as in :class:`sklearn.neural_network.MLPRegressor` where they mean the
same thing. ``__init__`` only stores them; everything is checked in ``fit``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import train_val_split
from .errors import ConfigError
from .models import build_model
from .runs import resolve_output_activation
from .training import TrainConfig, fit

_ACTIVATION_ALIASES = {"logistic": "sigmoid"}


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn an autoencoder on X; ``transform`` gives its codes, ``inverse_transform`` decodes.

    Parameters
    ----------
    model : str, default="dense"
        A name from :data:`aekit.MODELS` ("dense", "linear", "tied", ...).
    latent_dim : int, default=2
        Size of the code, i.e. the number of output features of ``transform``.
    hidden_layer_sizes : tuple of int or None, default=None
        Encoder hidden sizes (the decoder mirrors them); None keeps the model's preset.
    activation : {"relu", "logistic", "sigmoid", "tanh", "identity"} or None, default=None
        Hidden-layer activation; None keeps the model's preset.
    solver : {"adam", "sgd", "momentum", "gd"}, default="adam"
    learning_rate_init : float, default=1e-3
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples), as in MLPRegressor.
    max_iter : int, default=200
        Number of epochs.
    loss : {"mse", "mae", "bce"}, default="mse"
        "bce" needs X in [0, 1].
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of X and stop after ``n_iter_no_change`` epochs
        without improvement of the validation loss; the best epoch's weights are kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False
        Show a progress bar per epoch.

    Attributes
    ----------
    model_ : aekit.models.Autoencoder
        The trained PyTorch model.
    loss_curve_ : list of float
        Training loss per epoch (seed 000's 1/(2N)||X - X_hat||_F^2 for "mse").
    validation_scores_ : list of float or None
        Validation loss per epoch when ``early_stopping``.
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
        loss: str = "mse",
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
        """Train the autoencoder on X (n_samples, n_features); y is ignored."""
        X = validate_data(self, X, dtype=np.float32)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        X_train, X_val = X, None
        if self.early_stopping:
            X_train, X_val = train_val_split(X, self.validation_fraction, seed)
        if self.batch_size == "auto":
            batch_size = min(200, len(X_train))
        elif isinstance(self.batch_size, int | np.integer) and self.batch_size > 0:
            batch_size = int(self.batch_size)
        else:
            raise ConfigError(f"batch_size must be a positive int or 'auto', got {self.batch_size!r}")
        config = TrainConfig(
            epochs=int(self.max_iter), batch_size=batch_size, optimizer=self.solver,
            lr=float(self.learning_rate_init), seed=seed,
            patience=int(self.n_iter_no_change) if self.early_stopping else 0,
        )
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        hidden = None if self.hidden_layer_sizes is None else tuple(self.hidden_layer_sizes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_model(
                self.model, X.shape[1], latent_dim=self.latent_dim, hidden=hidden,
                activation=activation, loss=self.loss,
                output_activation=resolve_output_activation("auto", X_train),
            )
            best = {}

            def keep_best(model, opt, state, improved):
                if improved:
                    best.update({k: v.clone() for k, v in model.state_dict().items()})

            state = fit(net, X_train, X_val, config, on_epoch_end=keep_best, progress=self.verbose)
        if best:
            net.load_state_dict(best)
        net.eval()
        self.model_ = net
        self.loss_curve_ = [r["train_loss"] for r in state.history]
        self.validation_scores_ = (
            [r["val_loss"] for r in state.history] if X_val is not None else None
        )
        self.n_iter_ = state.epoch
        self._n_features_out = int(self.latent_dim)
        return self

    def transform(self, X):
        """Codes Z (n_samples, latent_dim), in X's float dtype."""
        check_is_fitted(self)
        X_in = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.model_.encode_numpy(X_in.astype(np.float32)).astype(X_in.dtype)

    def inverse_transform(self, X):
        """Decode codes (n_samples, latent_dim) back to (n_samples, n_features_in_)."""
        check_is_fitted(self)
        from sklearn.utils import check_array

        Z = check_array(X, dtype=[np.float64, np.float32])
        return self.model_.decode_numpy(Z.astype(np.float32)).astype(Z.dtype)

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error per element (higher is better)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        X_hat = self.model_.reconstruct_numpy(X)
        return -float(np.mean((X_hat.astype(np.float64) - X) ** 2))
