"""What every aekit estimator shares: parameter checks, the fit body, the model in a dtype.

A second estimator (an outlier detector, say) derives from :class:`AutoencoderEstimator`, lists
its own ``__init__`` parameters (scikit-learn reads them from the signature) and calls
:meth:`AutoencoderEstimator._fit_model`; training goes through the one loop
(:func:`aekit.training.fit`) with :class:`aekit.training.BestWeights` for early stopping.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from ..apps.fitting import resolve_output_activation
from ..data import train_val_split
from ..data.shapes import Layout, as_rows
from ..errors import ConfigError
from ..functional.losses import LOSSES
from ..nn import MODELS, build_model
from ..nn.activations import ACTIVATIONS
from ..training import OPTIMIZERS, BestWeights, TrainConfig, fit, resolve_device

_ACTIVATION_ALIASES = {"logistic": "sigmoid"}


class AutoencoderEstimator(BaseEstimator):
    """Base class: the model and training parameters of :class:`AutoencoderTransformer`."""

    _auto_sizes = False  # True: latent_dim, hidden_layer_sizes and max_iter may be "auto"
    _extra_losses: tuple[str, ...] = ()  # loss values beyond the losses' names ("auto")
    _extra_models: tuple[str, ...] = ()  # model values beyond the presets' names ("auto")

    def _fit_model(self, X: np.ndarray) -> torch.nn.Module:
        """Train ``model_`` on float32 X and set the fitted attributes; returns the model."""
        self._check_params()
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        net, state, has_val = self._train_net(X, seed)
        self.model_ = net
        self.loss_curve_ = [r["train_loss"] for r in state.history]
        self.validation_scores_ = None
        self.best_validation_loss_ = None
        if has_val:
            self.validation_scores_ = [r["val_loss"] for r in state.history]
            self.best_validation_loss_ = float(state.best_loss)
        self.n_iter_ = state.epoch
        return net

    def _validate(self, X, *, reset: bool, dtype) -> tuple[np.ndarray, Layout]:
        """(X as scikit-learn-validated rows, the layout X came in).

        Images (N, H, W) or (N, C, H, W) are folded into rows first by aekit's one shape
        helper (:func:`aekit.data.shapes.as_rows`), checked against ``image_shape`` and, after
        ``fit``, against the fitted width; everything else goes to ``validate_data`` as it is
        (feature names, sparse and 1-D input keep scikit-learn's own messages).
        """
        layout = Layout(())
        if _ndim(X) in (3, 4):
            shape = _chw(self.image_shape)
            width = None if reset else getattr(self, "n_features_in_", None)
            X, layout = as_rows(X, width=width, image_shape=shape)
        return _writable(validate_data(self, X, reset=reset, dtype=dtype)), layout

    def _build_net(
        self, X: np.ndarray, latent_dim: int, hidden, loss=None, model=None, image_shape=None
    ) -> torch.nn.Module:
        """The untrained model of the parameters for X's width (seed torch's RNG first);
        ``model`` / ``image_shape`` override the parameters (a detector's "auto")."""
        model = self.model if model is None else model
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        if _is_auto(hidden):  # a detector's "auto" on a preset that keeps its own sizes
            hidden = None
        if model in MODELS and not MODELS[model].cls.has_code:
            raise ValueError(
                f"model {model!r} is fully convolutional and has no code to transform "
                "to or score from; use aekit.denoise with it"
            )
        return build_model(
            model,
            X.shape[1],
            latent_dim=int(latent_dim),
            hidden=None if hidden is None else tuple(int(h) for h in hidden),
            activation=_ACTIVATION_ALIASES.get(self.activation, self.activation),
            loss=self.loss if loss is None else loss,
            image_shape=self.image_shape if image_shape is None else image_shape,
            output_activation=resolve_output_activation(model, "auto", X),
        )

    def _train_config(self, n: int, seed: int, epochs: int | None = None) -> TrainConfig:
        """The loop's settings for n training rows."""
        batch_size = min(200, n) if self.batch_size == "auto" else self.batch_size
        return TrainConfig(
            epochs=int(self.max_iter if epochs is None else epochs),
            batch_size=int(batch_size),
            optimizer=self.solver,
            lr=float(self.learning_rate_init),
            seed=seed,
            patience=int(self.n_iter_no_change) if self.early_stopping else 0,
        )

    def _train_net(
        self,
        X: np.ndarray,
        seed: int,
        latent_dim=None,
        hidden=None,
        fit_fn=None,
        loss=None,
        *,
        model=None,
        image_shape=None,
        epochs=None,
    ):
        """Build and train one model on X with ``seed``: (model in eval mode, state, has_val).

        ``latent_dim`` / ``hidden`` / ``loss`` / ``model`` / ``image_shape`` / ``epochs``
        override the parameters; ``fit_fn(net, X_train, X_val, config, callbacks, device)``
        replaces the plain call of the loop (a detector's trimmed fit goes through it).
        """
        device = resolve_device(self.device)
        X_train, X_val = X, None
        if self.early_stopping:
            X_train, X_val = train_val_split(X, self.validation_fraction, seed)
        config = self._train_config(len(X_train), seed, epochs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build_net(
                X,
                self.latent_dim if latent_dim is None else latent_dim,
                self.hidden_layer_sizes if hidden is None else hidden,
                loss,
                model,
                image_shape,
            )
            best = BestWeights(only_with_validation=True)
            if fit_fn is None:
                state = fit(
                    net,
                    X_train,
                    X_val,
                    config,
                    callbacks=[best],
                    progress=bool(self.verbose),
                    device=device,
                )
            else:
                state = fit_fn(net, X_train, X_val, config, [best], device)
        best.restore(net)
        net.eval()
        return net, state, X_val is not None

    def _net(self, dtype) -> torch.nn.Module:
        """``model_`` in ``dtype``: itself for float32, a converted copy otherwise."""
        torch_dtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        if next(self.model_.parameters()).dtype == torch_dtype:
            return self.model_
        return copy.deepcopy(self.model_).to(torch_dtype)

    def _check_params(self) -> None:
        """Raise ConfigError, naming the parameter, for any invalid setting."""
        models = (*sorted(MODELS), *self._extra_models)
        if not isinstance(self.model, str) or self.model not in models:
            raise ConfigError(f"model must be one of {', '.join(models)}, got {self.model!r}")
        if not (self._auto_sizes and _is_auto(self.latent_dim)):
            _check_int("latent_dim", self.latent_dim, 1, "or 'auto'" if self._auto_sizes else "")
        if not (self._auto_sizes and _is_auto(self.hidden_layer_sizes)):
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
        if not (self._auto_sizes and _is_auto(self.max_iter)):
            _check_int("max_iter", self.max_iter, 1, "or 'auto'" if self._auto_sizes else "")
        if self.loss is not None and self.loss not in (*LOSSES, *self._extra_losses):
            choices = ", ".join((*LOSSES, *self._extra_losses))
            raise ConfigError(f"loss must be one of {choices} or None, got {self.loss!r}")
        if not isinstance(self.early_stopping, bool | np.bool_):
            raise ConfigError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        if not isinstance(self.verbose, numbers.Integral):
            raise ConfigError(f"verbose must be a bool or an int, got {self.verbose!r}")
        vf = self.validation_fraction
        if not _is_real(vf) or not 0 <= vf < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {vf!r}")
        if self.early_stopping and vf == 0:
            raise ConfigError("early_stopping holds out validation_fraction of X: give it > 0")
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        if not isinstance(self.device, str | torch.device):
            raise ConfigError(
                f"device must be a string such as 'auto' or 'cuda', got {self.device!r}"
            )


def _ndim(X) -> int | None:
    """The dimensions of an array-like, without converting a DataFrame (None when unknown)."""
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, list | tuple):
        try:
            ndim = np.ndim(X)
        except ValueError:  # ragged: validate_data says so
            return None
    return ndim if isinstance(ndim, int) else None


def _chw(image_shape) -> tuple[int, int, int] | None:
    """``image_shape`` as (C, H, W), or None when unset or malformed (fit's checks say so)."""
    try:
        shape = tuple(int(v) for v in image_shape)
    except (TypeError, ValueError):
        return None
    return shape if len(shape) == 3 else None  # type: ignore[return-value]


def _writable(X: np.ndarray) -> np.ndarray:
    """X, copied only if read-only (joblib memmaps): torch warns on non-writable arrays."""
    return np.require(X, requirements="W")


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


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
