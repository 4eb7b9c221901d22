"""An autoencoder as a scikit-learn transformer (fit / transform / inverse_transform).

Parameters are named as in :class:`sklearn.neural_network.MLPRegressor` where they mean the
same thing. ``__init__`` only stores them; everything is checked in ``fit``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ..errors import DataError
from ._base import AutoencoderEstimator, _writable


class AutoencoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoencoderEstimator
):
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
        loss, ignored by the others when None. C * H * W must equal n_features. ``fit``,
        ``transform`` and ``score`` take X as rows (n_samples, C * H * W) or as images
        (n_samples, H, W) (C = 1) or (n_samples, C, H, W) of this shape.
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
    device : str, default="auto"
        Where to train and compute: "auto" (CUDA when available, else the CPU), "cpu",
        "cuda", "cuda:N" or "mps". ``model_`` stays there.

    Attributes
    ----------
    model_ : aekit.nn.Autoencoder
        The trained PyTorch model (float32), on ``device``.
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
        device: str = "auto",
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
        self.device = device

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
        X, _ = self._validate(X, reset=True, dtype=np.float32)
        self._fit_model(X)
        self._n_features_out = int(self.latent_dim)
        return self

    def transform(self, X):
        """Codes Z (n_samples, latent_dim), computed in X's float dtype."""
        check_is_fitted(self)
        X, _ = self._validate(X, reset=False, dtype=[np.float64, np.float32])
        return self._net(X.dtype).encode_scaled(X)

    def inverse_transform(self, X):
        """Decode codes (n_samples, latent_dim) back to rows (n_samples, n_features_in_); with
        an ``image_shape``, ``inverse_transform(Z).reshape(-1, *image_shape)`` are images."""
        check_is_fitted(self)
        Z = _writable(check_array(X, dtype=[np.float64, np.float32]))
        if Z.shape[1] != self._n_features_out:
            raise DataError(
                f"inverse_transform expects codes of width latent_dim={self._n_features_out}, "
                f"got {Z.shape[1]} columns"
            )
        return self._net(Z.dtype).decode_scaled(Z)

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error per element (higher is better), in X's
        own units: the estimator trains on X as given (no scaler), so this is directly
        comparable with, e.g., PCA's error on the same X (put a scikit-learn scaler in a
        pipeline to train in a scaled space; the pipeline's score is then in that space)."""
        check_is_fitted(self)
        X, _ = self._validate(X, reset=False, dtype=[np.float64, np.float32])
        X_hat = self._net(X.dtype).reconstruct_scaled(X)
        return -float(np.mean((X_hat.astype(np.float64) - X) ** 2))
