"""An ensemble of autoencoders as a scikit-learn outlier detector (the IsolationForest contract).

The scoring recipe lives in :mod:`aekit.apps.anomaly`; this module maps parameters to it.
"""

from __future__ import annotations

import copy
import numbers
import os
from pathlib import Path

import numpy as np
from sklearn.base import OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..apps import anomaly, detector, isolation
from ..errors import ConfigError, DataError
from ._base import AutoencoderEstimator, _is_real


class AutoencoderOutlierDetector(OutlierMixin, AutoencoderEstimator):
    """Flag rows an ensemble of autoencoders reconstructs badly; lower scores = more abnormal.

    Each of ``n_estimators`` models trains on its own ``max_samples`` rows for ``max_iter``
    epochs and, halfway, stops fitting its worst-reconstructed ``trim`` share; members
    alternate squared and absolute error; a row's score sums its per-column errors, each
    divided by that column's ``error_quantile`` of training errors (see
    :mod:`aekit.apps.anomaly`); on rows, that score is blended with the distance to the
    nearest training rows the members find most normal (``n_neighbors``, ``knn_clean``)
    and, on request, with an isolation forest fitted on those rows (``isolation_weight``).
    Image data (an ``image_shape``, or X given as images) get
    the image recipe with no flag: convolutional members on up to 10,000 images each, raw
    pixel error sums and, with ``novelty``, neighbours in the members' codes. X is read as
    float32, as the CLI reads files (so that ``aekit fit-detector`` / ``aekit score`` and this
    estimator give the same scores for the same data and seed); scores are deterministic and
    finite, computed in float64. X may be rows or images (n_samples, H, W) /
    (n_samples, C, H, W).

    Parameters
    ----------
    contamination : "auto" or float in (0, 0.5], default="auto"
        Sets ``offset_``: the share of training rows flagged; "auto" flags rows whose
        standardised score exceeds 3 (three training standard deviations).
    novelty : bool, default=False
        The training rows are all normal (clean), as in novelty detection and ADBench's
        semi-supervised setting: no row is trimmed (``trim`` is not used) and, with
        ``n_neighbors="auto"``, the score blends in a nearest-neighbour distance. False: the
        training rows may hold anomalies (the robust recipe). Thresholds keep their meaning
        (``contamination`` of the training rows, or :meth:`calibrate` on held-out normal rows).
    n_neighbors : "auto", int or None, default="auto"
        A nearest-neighbour part: each row's mean Euclidean distance to its ``n_neighbors``
        nearest reference rows (training rows in the standardised space the members see,
        less the ``knn_clean`` share; at most 20,000 kept, as float64), standardised by the
        reference rows' distances to the others and averaged half and half with the
        autoencoders' score standardised on the same rows
        (:func:`aekit.apps.anomaly.blend`). "auto": 5 with ``novelty``; 10 for rows
        without it; None (off) for images without it (benchmarks/README.md, anomaly.py).
    knn_clean : "auto" or float in [0, 1), default="auto"
        Share of the training rows, those the autoencoders score highest, left out of the
        nearest-neighbour part's reference rows (anomalies among the training rows would
        be each other's near neighbours), and out of the isolation forest's rows. "auto": 0
        with ``novelty`` (clean rows), else 0.3.
    isolation_weight : float in [0, 1) or None, default=None
        An isolation part: scikit-learn's ``IsolationForest`` at its defaults, fitted on the
        training rows less the ``knn_clean`` share (in the standardised space), kept as
        plain arrays (:mod:`aekit.apps.isolation`); its score and the score so far, each
        standardised by its training rows' mean and sd, are blended with this weight on
        the forest's (:func:`aekit.apps.anomaly.blend`). None or 0: off (the default). On
        the ADBench sets without ``novelty``, 0.25 scored 0.001 above the default on the
        sets it was chosen on and did not beat it on seeds 2, 3 (benchmarks/README.md,
        anomaly.py); it lifts sets where IsolationForest is strong (26_optdigits,
        2_annthyroid) and costs where the neighbours are (12_fault, 20_letter).
    n_estimators : int or "auto", default="auto"
        Number of autoencoders in the ensemble; "auto": 5 for rows, 1 for images.
    max_samples : int, float or "auto", default="auto"
        Rows per member: a count, or a share of the rows when a float in (0, 1]; "auto":
        256 for rows, 10,000 for images (all of one MNIST class).
    trim : float in [0, 0.5), default=0.2
        Share of worst-reconstructed rows each member stops fitting halfway (0: none).
    scale : {"auto", "standard", "none"}, default="auto"
        Standardise each column on the training data; "auto" does so unless the model needs
        inputs in [0, 1] ("bce" or "ssim" loss, an ``image_shape``).
    loss : str, None or "mixed", default="mixed"
        The members' reconstruction loss, which is also how they score; None: the preset's.
        "mixed": members alternate squared and absolute error (mse, mae, mse, ...), for
        squared-error presets without an ``image_shape`` (others use the preset's loss):
        on the ADBench sets it scored a higher mean ROC-AUC than either alone
        (benchmarks/README.md, anomaly.py).
    error_blur : "auto", float > 0 or None, default="auto"
        Images only: smooth each member's residual x_hat - x by a Gaussian of this many
        pixels before taking its squared (or absolute) error, so that strokes a pixel off
        count for less than strokes missing; None: no blur. "auto": 1 for images (an
        ``image_shape`` or images) with a squared or absolute error, None otherwise.
    knn_space : {"auto", "input", "code"}, default="auto"
        Where the nearest-neighbour part measures distances: between the (scaled) input
        rows, or between the members' codes (each member's codes divided by their mean
        coordinate spread; each member's mean distance to the ``n_neighbors`` nearest
        training codes standardised by the training rows' leave-one-out distances, averaged
        over the members: :func:`aekit.apps.anomaly.code_knn_scores`). "auto": "code" for
        images (an ``image_shape`` or images), where it scored far above pixel distances,
        "input" for rows.
    error_quantile : "auto", float in (0, 1] or None, default="auto"
        Each member divides each column's elementwise errors by this quantile of that
        column's errors on the training rows (floored at 1e-3 of the member's mean error)
        before summing them into a row's score, so that a column with large natural errors
        does not drown the others and an error far outside its column's usual range
        stands out; None sums the raw errors. With "mixed" it is what keeps a gross error
        in a single column ranked first. "auto": 0.9, or None for image models (an
        ``image_shape``, a "bce" or "ssim" loss), where it lowered MNIST's ROC-AUC.
    model : str, default="auto"
        A preset; "auto": "conv" for images (an ``image_shape``, or X of shape (N, H, W) /
        (N, C, H, W)), "dense" for rows.
    activation, solver, learning_rate_init, image_shape, early_stopping,
    validation_fraction, n_iter_no_change, random_state, verbose, device
        As in :class:`aekit.sklearn.AutoencoderTransformer`.
    latent_dim : int or "auto", default="auto"
        "auto" is max(1, n_features // 4).
    hidden_layer_sizes : int, tuple of int, None or "auto", default="auto"
        "auto" is one hidden layer of max(2 * latent_dim, n_features // 2) units.
    batch_size : int or "auto", default=64
    max_iter : int or "auto", default="auto"
        Epochs per member; "auto": 50 for rows (few: the early phase of training scores best
        on contaminated data), 20 for images.

    Attributes
    ----------
    models_ : list of aekit.nn.Autoencoder
        The trained members (float32), on ``device``.
    model_name_ : str
        The preset the members are ("auto" resolved).
    image_shape_ : tuple of 3 int or None
        The images' (C, H, W): ``image_shape``, or that of images given without one.
    n_retrained_ : int
        Trainings of image members begun again because a member's output had died.
    offset_ : float
        decision_function = score_samples - offset_.
    member_stats_ : list of (float, float)
        Each member's mean and standard deviation of the per-row score on the training data.
    error_scales_ : list of ndarray of shape (n_features,)
        Each member's column divisors (ones when ``error_quantile`` is None).
    error_blur_ : float or None
        The residuals' Gaussian blur in pixels (None: none).
    n_neighbors_ : int or None
        The nearest-neighbour part's neighbours (None: no such part).
    knn_clean_ : float or None
        The share of training rows left out of its reference rows and of the isolation
        forest's rows (None: neither part).
    knn_reference_ : ndarray of shape (n_reference, n_features) or None
        Its reference rows (standardised training rows).
    blend_stats_ : tuple of 4 floats or None
        The autoencoders' and the distances' (mean, sd) on the kept training rows.
    knn_space_ : {"input", "code"} or None
        Where the nearest-neighbour part measures (None: no such part).
    isolation_weight_ : float or None
        The isolation part's weight (None: no such part).
    isolation_forest_ : dict of ndarray or None
        Its trees as arrays (:func:`aekit.apps.isolation.fit_forest`).
    isolation_seed_ : int or None
        The forest's ``random_state`` (drawn from ``random_state``).
    isolation_stats_ : tuple of 4 floats or None
        The score before it and its own score's (mean, sd) on the training rows.
    code_knn_stats_ : list of (float, float, float) or None
        In the code space, each member's code divisor and the mean and standard deviation of
        the training rows' leave-one-out distances.
    calibration_ : dict or None
        After :meth:`calibrate`: the target rate, the conformal guarantee and its interval.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    _auto_sizes = True
    _extra_losses = ("mixed",)
    _extra_models = ("auto",)

    def __init__(
        self,
        contamination="auto",
        novelty: bool = False,
        n_neighbors="auto",
        knn_clean="auto",
        isolation_weight=None,
        n_estimators="auto",
        max_samples="auto",
        trim: float = 0.2,
        scale: str = "auto",
        model: str = "auto",
        latent_dim="auto",
        hidden_layer_sizes="auto",
        activation: str | None = None,
        solver: str = "adam",
        learning_rate_init: float = 1e-3,
        batch_size=64,
        max_iter="auto",
        loss: str | None = "mixed",
        error_quantile="auto",
        knn_space: str = "auto",
        error_blur="auto",
        image_shape: tuple[int, int, int] | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state=None,
        verbose: bool = False,
        device: str = "auto",
    ):
        self.contamination = contamination
        self.novelty = novelty
        self.n_neighbors = n_neighbors
        self.knn_clean = knn_clean
        self.isolation_weight = isolation_weight
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.trim = trim
        self.scale = scale
        self.model = model
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.loss = loss
        self.error_quantile = error_quantile
        self.knn_space = knn_space
        self.error_blur = error_blur
        self.image_shape = image_shape
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    def fit(self, X, y=None):
        """Train the ensemble on X (n_samples, n_features), anomalies allowed (or, with
        ``novelty``, all normal); y is ignored.

        Raises
        ------
        ConfigError
            A parameter is invalid (a ValueError).
        DataError
            X is empty, non-finite, too small for ``early_stopping`` or, with a
            nearest-neighbour part, has a single row.
        """
        X, layout = self._validate(X, reset=True, dtype=np.float32)  # the CLI's float32
        self._check_params()
        self._check_detector_params()
        image_shape = self._image_shape_of(layout)
        model = anomaly.resolve_model(self.model, image_shape)
        n_members, max_samples, epochs = anomaly.resolve_ensemble(
            self.n_estimators, self.max_samples, self.max_iter, image_shape
        )
        self.model_name_, self.image_shape_ = model, image_shape
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=int(n_members))
        d = X.shape[1]
        latent, hidden = anomaly.auto_sizes(model, d, self.latent_dim, self.hidden_layer_sizes)
        kind = anomaly.resolve_scale(self.scale, model, self.loss, image_shape)
        losses = anomaly.member_losses(model, self.loss, image_shape, len(seeds))
        self.scale_offset_, self.scale_ = anomaly.fit_scaling(X, kind)
        Xs = self._scaled(X)
        Xs32 = Xs.astype(np.float32)
        sub_rng = np.random.default_rng(int(seeds[0]))

        k = anomaly.resolve_neighbors(self.n_neighbors, bool(self.novelty), image_shape)
        if _auto(self.n_neighbors) and not self.novelty and len(X) < 2:
            k = None  # the rows may hold anomalies: a single row scores by its members alone
        if k is not None and len(X) < 2:
            raise DataError("a nearest-neighbour part needs at least 2 training rows, got 1 sample")
        w_iso = anomaly.resolve_isolation(self.isolation_weight)
        trim = 0.0 if self.novelty else self.trim  # clean rows: none is trimmed

        def trimmed(net, X_train, X_val, config, callbacks, device):
            return anomaly.trimmed_fit(net, X_train, X_val, config, callbacks, device, trim)

        nets, self.n_iter_, self.n_retrained_ = [], 0, 0
        for seed, loss in zip(seeds, losses, strict=True):
            rows = anomaly.subsample(len(X), max_samples, sub_rng)
            # an image member whose output died (sigmoid saturated: the same image for every
            # input) is trained again from the next seed (tables: never retried)
            tries = anomaly.DEAD_TRIES if image_shape is not None else 1
            for attempt in range(tries):
                net, state, _ = self._train_net(
                    Xs32[rows], int(seed) + attempt, latent, hidden, trimmed, loss,
                    model=model, image_shape=image_shape, epochs=epochs,
                )  # fmt: skip
                if not anomaly.is_dead(net, Xs32[rows]):
                    break
                self.n_retrained_ += attempt + 1 < tries  # a further training follows
            nets.append(net)
            self.n_iter_ = max(self.n_iter_, state.epoch)
        self._set_models(nets)
        q = anomaly.resolve_error_quantile(self.error_quantile, model, self.loss, image_shape)
        self.error_blur_ = anomaly.resolve_error_blur(
            self.error_blur, model, self.loss, image_shape
        )
        self.member_stats_, self.error_scales_, anomalous = anomaly.member_stats(
            self._nets(), Xs, q, self.error_blur_
        )
        self.calibration_ = None
        self.n_neighbors_, self.knn_reference_, self.blend_stats_ = None, None, None
        self.knn_space_, self.code_knn_stats_, self.knn_clean_ = None, None, None
        self.isolation_weight_, self.isolation_forest_, self.isolation_stats_ = None, None, None
        self.isolation_seed_ = None
        if k is not None or w_iso is not None:
            # the rows the autoencoders find most normal: the training rows, less (without
            # novelty) the share they score highest
            self.knn_clean_ = anomaly.resolve_knn_clean(self.knn_clean, bool(self.novelty))
            kept = anomaly.clean_rows(anomalous, self.knn_clean_)
            if len(kept) < 2:
                kept = np.arange(len(Xs))  # too few rows to leave any out
        if k is not None:
            # the neighbours' reference rows: the kept rows; both parts are standardised on
            # the kept rows
            rows = anomaly.knn_reference(len(Xs), sub_rng, kept)
            self.knn_reference_ = np.ascontiguousarray(Xs[rows], dtype=np.float64)
            self.n_neighbors_ = min(k, len(rows) - 1)
            self.knn_space_ = anomaly.resolve_knn_space(self.knn_space, image_shape)
            # standardised by the kept rows' leave-one-out distances (a training row is
            # not its own neighbour); the offset below is taken on the scores that
            # predict(X) gives the training rows (their own distance 0 among their neighbours)
            if self.knn_space_ == "code":
                codes, self.code_knn_stats_ = anomaly.code_knn_fit(
                    self._nets(), self.knn_reference_, self.n_neighbors_
                )
                self._reference_codes = codes
                loo = anomaly.code_knn_training_scores(
                    codes, self.code_knn_stats_, self.n_neighbors_
                )
            else:
                loo = anomaly.knn_training_distances(
                    Xs[kept], np.searchsorted(kept, rows), self.n_neighbors_
                )
            self.blend_stats_ = anomaly.blend_stats(anomalous[kept], loo)
            anomalous = anomaly.blend(anomalous, self._knn_part(Xs), self.blend_stats_)
        if w_iso is not None:
            # an isolation forest on the kept rows; it and the score so far standardised on
            # all training rows
            self.isolation_seed_ = int(sub_rng.integers(np.iinfo(np.int32).max))
            self.isolation_forest_ = isolation.fit_forest(Xs[kept], self.isolation_seed_)
            iso = isolation.isolation_scores(self.isolation_forest_, Xs)
            self.isolation_weight_ = w_iso
            self.isolation_stats_ = anomaly.blend_stats(anomalous, iso)
            anomalous = anomaly.blend(anomalous, iso, self.isolation_stats_, w_iso)
        scores = -anomalous
        if self.contamination == "auto":
            self.offset_ = -3.0
        else:
            self.offset_ = anomaly.contamination_offset(scores, float(self.contamination))
        return self

    def score_samples(self, X) -> np.ndarray:
        """Normality of each row (n_samples,): lower = more abnormal (minus the anomaly score)."""
        check_is_fitted(self)
        X, _ = self._validate(X, reset=False, dtype=np.float32)
        Xs = self._scaled(X)
        scores = anomaly.anomaly_scores(
            self._nets(), self.member_stats_, Xs, self.error_scales_, self.error_blur_
        )
        if getattr(self, "n_neighbors_", None) is not None:
            scores = anomaly.blend(scores, self._knn_part(Xs), self.blend_stats_)
        if getattr(self, "isolation_weight_", None) is not None:
            iso = isolation.isolation_scores(self.isolation_forest_, Xs)
            scores = anomaly.blend(scores, iso, self.isolation_stats_, self.isolation_weight_)
        return -scores

    def decision_function(self, X) -> np.ndarray:
        """score_samples(X) - offset_: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_errors(self, X) -> np.ndarray:
        """Which columns make a row abnormal: (n_samples, n_features) reconstruction errors
        (for images (n_samples, H, W) / (n_samples, C, H, W), errors in that shape).

        Each member's per-element loss divided by its column divisors (``error_scales_``)
        and its training standard deviation, averaged over the members; with a
        nearest-neighbour part, these weighted as in the blend plus each column's share of
        the neighbour distances (:func:`aekit.apps.anomaly.knn_feature_shares`) weighted
        likewise; with an isolation part, all of these times (1 - ``isolation_weight_``) / sd
        of the score before it (a forest's path length has no column shares). Each row sums
        to -score_samples(X) plus a constant, less the isolation part's term,
        ``isolation_weight_`` times its standardised score.
        """
        check_is_fitted(self)
        X, layout = self._validate(X, reset=False, dtype=np.float32)
        Xs = self._scaled(X)
        errors = anomaly.feature_errors(
            self._nets(), self.member_stats_, Xs, self.error_scales_, self.error_blur_
        )
        if getattr(self, "n_neighbors_", None) is not None:
            _, sd_a, _, sd_k = self.blend_stats_
            w = anomaly.KNN_WEIGHT
            if self.knn_space_ == "code":  # a distance between codes has no pixel shares
                errors = (1 - w) * errors / sd_a
            else:
                shares = anomaly.knn_feature_shares(self.knn_reference_, Xs, self.n_neighbors_)
                errors = (1 - w) * errors / sd_a + w * shares / sd_k
        if getattr(self, "isolation_weight_", None) is not None:
            errors = (1 - self.isolation_weight_) * errors / self.isolation_stats_[1]
        return layout.unfold(errors)

    def calibrate(self, X_normal, fpr: float = 0.01):
        """Set ``offset_`` so that a new normal row is flagged with probability at most ``fpr``.

        A split-conformal threshold (:func:`aekit.apps.anomaly.conformal_threshold`): for new
        normal rows exchangeable with ``X_normal`` (held out from training), the expected
        false-positive rate is k / (n + 1) <= ``fpr`` whatever the model. ``calibration_``
        holds {"fpr", "expected_fpr", "fpr_interval" (95% of the rate this threshold has on
        future rows), "achieved_fpr" (on X_normal itself), "k", "n_samples", "method"}.
        Returns self.

        Raises
        ------
        ConfigError
            ``fpr`` outside (0, 1), or too few rows for it (fewer than 1 / fpr - 1).
        """
        check_is_fitted(self)
        if not _is_real(fpr) or not 0 < fpr < 1:
            raise ConfigError(f"fpr must be in (0, 1), got {fpr!r}")
        t = anomaly.conformal_threshold(self.score_samples(X_normal), float(fpr))
        self.offset_ = t.pop("offset")
        self.calibration_ = {"fpr": float(fpr), "method": "conformal", **t}
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write the detector to a folder: safetensors weights and JSON settings, no pickle."""
        check_is_fitted(self)
        settings = {
            "params": self.get_params(),
            "n_members": len(self.models_),
            "offset_": self.offset_,
            "n_features_in_": int(self.n_features_in_),
            "scale_offset_": self.scale_offset_.tolist(),
            "scale_": self.scale_.tolist(),
            "member_stats_": [list(s) for s in self.member_stats_],
            "error_scales_": [s.tolist() for s in self.error_scales_],
            "calibration_": self.calibration_,
            "n_neighbors_": self.n_neighbors_,
            "knn_clean_": self.knn_clean_,
            "blend_stats_": None if self.blend_stats_ is None else list(self.blend_stats_),
            "model_name_": self.model_name_,
            "image_shape_": None if self.image_shape_ is None else list(self.image_shape_),
            "knn_space_": self.knn_space_,
            "error_blur_": self.error_blur_,
            "n_retrained_": int(getattr(self, "n_retrained_", 0)),
            "code_knn_stats_": self.code_knn_stats_,
            "isolation_weight_": self.isolation_weight_,
            "isolation_seed_": self.isolation_seed_,
            "isolation_stats_": None
            if self.isolation_stats_ is None
            else list(self.isolation_stats_),
        }
        if hasattr(self, "feature_names_in_"):
            settings["feature_names_in_"] = [str(c) for c in self.feature_names_in_]
        nets = [n.cpu() for n in self.models_]
        return detector.save_detector(
            path, nets, settings, self.knn_reference_, self.isolation_forest_
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> AutoencoderOutlierDetector:
        """Rebuild a detector written by :meth:`save` (on ``device``)."""
        nets, s = detector.load_detector(path)
        params = {**s["params"], "device": device}
        params.setdefault("error_quantile", None)  # older files: raw error sums
        params.setdefault("error_blur", None)  # and unblurred errors
        params.setdefault("isolation_weight", None)  # and no isolation part
        if params.get("image_shape") is not None:
            params["image_shape"] = tuple(params["image_shape"])
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        det = cls(**params)
        from ..training import resolve_device

        det._set_models([n.to(resolve_device(device)) for n in nets])
        det.offset_ = float(s["offset_"])
        det.n_features_in_ = int(s["n_features_in_"])
        det.scale_offset_ = np.asarray(s["scale_offset_"], dtype=np.float64)
        det.scale_ = np.asarray(s["scale_"], dtype=np.float64)
        det.member_stats_ = [tuple(m) for m in s["member_stats_"]]
        # files written before error_quantile existed summed raw errors: divisors of one
        ones = [[1.0] * det.n_features_in_] * len(nets)
        det.error_scales_ = [np.asarray(e, dtype=np.float64) for e in s.get("error_scales_", ones)]
        det.calibration_ = s.get("calibration_")
        # files written before the nearest-neighbour part have none
        det.n_neighbors_ = None if s.get("n_neighbors_") is None else int(s["n_neighbors_"])
        det.knn_reference_ = s.get("knn_reference_")
        det.knn_clean_ = s.get("knn_clean_", None if det.n_neighbors_ is None else 0.0)
        blend = s.get("blend_stats_")
        det.blend_stats_ = None if blend is None else tuple(float(v) for v in blend)
        # files written before the "auto" model and the code-space part
        det.model_name_ = s.get("model_name_", params.get("model"))
        shape = s.get("image_shape_", params.get("image_shape"))
        det.image_shape_ = None if shape is None else tuple(int(v) for v in shape)
        det.knn_space_ = s.get("knn_space_", None if det.n_neighbors_ is None else "input")
        det.error_blur_ = s.get("error_blur_")
        det.n_retrained_ = int(s.get("n_retrained_", 0))
        # files written before the isolation part (format 1) have none
        w_iso = s.get("isolation_weight_")
        det.isolation_weight_ = None if w_iso is None else float(w_iso)
        det.isolation_forest_ = s.get("isolation_forest_")
        det.isolation_seed_ = s.get("isolation_seed_")
        iso_stats = s.get("isolation_stats_")
        det.isolation_stats_ = None if iso_stats is None else tuple(map(float, iso_stats))
        stats = s.get("code_knn_stats_")
        det.code_knn_stats_ = None if stats is None else [tuple(map(float, t)) for t in stats]
        if "feature_names_in_" in s:
            det.feature_names_in_ = np.asarray(s["feature_names_in_"], dtype=object)
        return det

    # ---- helpers ------------------------------------------------------------------------

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return (X - self.scale_offset_) * self.scale_

    def _image_shape_of(self, layout) -> tuple[int, int, int] | None:
        """``image_shape``, or (C, H, W) of images given without one ((N, H, W): one channel)."""
        if self.image_shape is not None:
            return tuple(int(v) for v in self.image_shape)  # type: ignore[return-value]
        if layout.is_image:
            shape = layout.sample_shape
            return (1, *shape) if len(shape) == 2 else tuple(shape)  # type: ignore[return-value]
        return None

    def _knn_part(self, Xs: np.ndarray) -> np.ndarray:
        """The nearest-neighbour part of the scores of scaled rows Xs (N,): the mean distance
        to the reference rows, or with ``knn_space_`` "code" the members' standardised
        code-space distances (:func:`aekit.apps.anomaly.code_knn_scores`)."""
        if self.knn_space_ != "code":
            return anomaly.knn_distances(self.knn_reference_, Xs, self.n_neighbors_)
        codes = getattr(self, "_reference_codes", None)
        if codes is None:  # a loaded detector: the reference rows' codes, computed once
            codes = [
                anomaly.member_codes(net, self.knn_reference_) / s
                for net, (s, _, _) in zip(self._nets(), self.code_knn_stats_, strict=True)
            ]
            self._reference_codes = codes
        return anomaly.code_knn_scores(
            self._nets(), codes, self.code_knn_stats_, Xs, self.n_neighbors_
        )

    def _nets(self) -> list:
        """The members in float64, so that scores do not depend on how rows are batched."""
        return self._models64

    def _set_models(self, nets: list) -> None:
        self.models_ = nets
        self._models64 = [copy.deepcopy(n).double() for n in nets]

    def _check_detector_params(self) -> None:
        c = self.contamination
        if not (isinstance(c, str) and c == "auto") and not (_is_real(c) and 0 < c <= 0.5):
            raise ConfigError(f"contamination must be 'auto' or in (0, 0.5], got {c!r}")
        n = self.n_estimators
        if not _auto(n) and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ConfigError(f"n_estimators must be 'auto' or a positive int, got {n!r}")
        m = self.max_samples
        ok_int = isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 1
        ok_float = _is_real(m) and isinstance(m, float) and 0 < m <= 1
        if not (_auto(m) or ok_int or ok_float):
            raise ConfigError(
                f"max_samples must be 'auto', a positive int or a float in (0, 1], got {m!r}"
            )
        t = self.trim
        if not _is_real(t) or not 0 <= t < 0.5:
            raise ConfigError(f"trim must be in [0, 0.5), got {t!r}")
        if not isinstance(self.novelty, (bool, np.bool_)):
            raise ConfigError(f"novelty must be True or False, got {self.novelty!r}")
        k = self.n_neighbors
        auto_k = isinstance(k, str) and k == "auto"
        ok_k = isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1
        if not auto_k and k is not None and not ok_k:
            raise ConfigError(f"n_neighbors must be 'auto', a positive int or None, got {k!r}")
        q = self.error_quantile
        auto = isinstance(q, str) and q == "auto"
        if not auto and q is not None and (not _is_real(q) or not 0 < q <= 1):
            raise ConfigError(f"error_quantile must be 'auto', in (0, 1] or None, got {q!r}")
        b = self.error_blur
        if not _auto(b) and b is not None and (not _is_real(b) or not b > 0):
            raise ConfigError(f"error_blur must be 'auto', a positive number or None, got {b!r}")
        c = self.knn_clean
        if not _auto(c) and (not _is_real(c) or not 0 <= c < 1):
            raise ConfigError(f"knn_clean must be 'auto' or in [0, 1), got {c!r}")
        w = self.isolation_weight
        if w is not None and (not _is_real(w) or not 0 <= w < 1):
            raise ConfigError(f"isolation_weight must be in [0, 1) or None, got {w!r}")
        if self.knn_space not in anomaly.KNN_SPACES:
            choices = ", ".join(anomaly.KNN_SPACES)
            raise ConfigError(f"knn_space must be one of {choices}, got {self.knn_space!r}")
        if self.scale not in anomaly.SCALES:
            choices = ", ".join(anomaly.SCALES)
            raise ConfigError(f"scale must be one of {choices}, got {self.scale!r}")


def _auto(value) -> bool:
    return isinstance(value, str) and value == "auto"
