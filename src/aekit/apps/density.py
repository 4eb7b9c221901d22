"""A Gaussian mixture over a model's codes: what a deterministic autoencoder samples from.

A plain autoencoder has no prior; its codes of the training data do have a distribution, and a
density fitted to them, p(z) = sum_k pi_k N(z; mu_k, S_k), turns the decoder into a generator
(x = g(z), z ~ p(z); Ghosh et al. 2020 fit exactly this "ex-post" mixture). On a VAE's
posterior means the same mixture is the simplest two-stage VAE: it samples where the
aggregate posterior is, not where the N(0, I) prior leaves holes.

scikit-learn's :class:`~sklearn.mixture.GaussianMixture` fits it (EM, k-means start, seeded).
What is kept is the parameters only, pi (K,), mu (K, L) and S (K, L, L) (every covariance type
expanded to full matrices), in one safetensors file whose metadata holds the JSON description;
sampling reads those and never unpickles anything. Draws are seeded: the same seed gives the
same codes on every machine (NumPy's PCG64).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, ModelFileError
from ..io.rundir import Run

__all__ = ["COVARIANCE_TYPES", "DENSITY_FILE", "CodeDensity", "density_path"]

DENSITY_FILE = Run.DENSITY
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
_META_KEY = "aekit.density"


def density_path(run: str | os.PathLike) -> Path:
    """Where a run's code density lives: in the run folder, or beside a model file."""
    run = Path(run)
    return Run(run if run.is_dir() else run.parent).density_file


@dataclass
class CodeDensity:
    """A Gaussian mixture over codes: ``weights`` (K,), ``means`` (K, L), ``covariances``
    (K, L, L), all float64; ``info`` is the JSON description (how it was fitted)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights, self.means, self.covariances = (
            np.asarray(a, dtype=np.float64) for a in (self.weights, self.means, self.covariances)
        )
        k, dim = self.means.shape if self.means.ndim == 2 else (0, 0)
        if k == 0 or self.weights.shape != (k,) or self.covariances.shape != (k, dim, dim):
            raise ModelFileError(
                f"a code density needs weights (K,), means (K, L), covariances (K, L, L); got "
                f"{self.weights.shape}, {self.means.shape}, {self.covariances.shape}"
            )
        if not (np.all(self.weights >= 0) and abs(self.weights.sum() - 1) < 1e-6):
            raise ModelFileError("the mixture weights must be >= 0 and sum to 1")
        try:  # (K, L, L) lower factors: S_k = C_k C_k^T, computed once
            self._chol = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise ModelFileError("a mixture covariance is not positive definite") from None

    @property
    def dim(self) -> int:
        """L, the code width."""
        return self.means.shape[1]

    @classmethod
    def fit(
        cls,
        Z: np.ndarray,
        n_components: int = 10,
        *,
        covariance_type: str = "full",
        seed: int = 0,
        max_iter: int = 200,
        reg_covar: float = 1e-6,
    ) -> CodeDensity:
        """Fit the mixture to codes Z (N, L) with EM (scikit-learn), seeded.

        Raises
        ------
        ConfigError
            For an unknown covariance type or fewer codes than components.
        DataError
            For codes that are not a finite (N, L) array.
        """
        from sklearn.mixture import GaussianMixture

        if covariance_type not in COVARIANCE_TYPES:
            raise ConfigError(
                f"unknown covariance type {covariance_type!r}; choose one of "
                + ", ".join(COVARIANCE_TYPES)
            )
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or not np.isfinite(Z).all():
            raise DataError(f"codes must be a finite (N, L) array, got shape {Z.shape}")
        if int(n_components) < 1 or len(Z) < int(n_components):
            raise ConfigError(
                f"a mixture of {n_components} components needs at least that many codes "
                f"(and at least 1 component); got {len(Z)} codes"
            )
        gm = GaussianMixture(
            int(n_components),
            covariance_type=covariance_type,
            max_iter=int(max_iter),
            reg_covar=float(reg_covar),
            random_state=int(seed),
        ).fit(Z)
        info = {
            "kind": "gaussian-mixture",
            "n_components": int(n_components),
            "covariance_type": covariance_type,
            "seed": int(seed),
            "n_codes": len(Z),
            "mean_log_likelihood": float(gm.score(Z)),
            "converged": bool(gm.converged_),
        }
        return cls(gm.weights_, gm.means_, _full_covariances(gm), info)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n codes z ~ p(z), (n, L) float64; the same seed gives the same codes."""
        if int(n) < 1:
            raise ConfigError(f"the number of samples must be at least 1, got {n}")
        rng = np.random.default_rng(int(seed))
        which = rng.choice(len(self.weights), size=int(n), p=self.weights / self.weights.sum())
        eps = rng.standard_normal((int(n), self.dim))
        # z_i = mu_k + C_k eps_i, with k = which[i]: (n, L, L) @ (n, L, 1) -> (n, L)
        return self.means[which] + np.einsum("nij,nj->ni", self._chol[which], eps)

    def log_density(self, Z: np.ndarray) -> np.ndarray:
        """log p(z) of each row of Z (N, L), float64."""
        from scipy.special import logsumexp
        from scipy.stats import multivariate_normal

        Z = np.asarray(Z, dtype=np.float64)
        parts = [
            np.log(w) + multivariate_normal(m, c).logpdf(Z).reshape(len(Z))
            for w, m, c in zip(self.weights, self.means, self.covariances, strict=True)
        ]
        return logsumexp(np.stack(parts), axis=0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters and the JSON description to one safetensors file, atomically."""
        from ..io.checkpoint import save_tensors

        path = Path(path)
        tensors = {
            "weights": torch.from_numpy(self.weights),
            "means": torch.from_numpy(self.means),
            "covariances": torch.from_numpy(self.covariances),
        }
        save_tensors(path, tensors, {_META_KEY: json.dumps(self.info)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodeDensity:
        """Read a density written by :meth:`save` (safetensors only: a pickle is refused)."""
        from ..io.checkpoint import read_tensors

        tensors, meta = read_tensors(path)
        try:
            info = json.loads(meta[_META_KEY])
            arrays = [tensors[k].numpy() for k in ("weights", "means", "covariances")]
        except (KeyError, ValueError) as e:
            raise ModelFileError(f"{path} is not an aekit code density: {e}") from None
        return cls(*arrays, info=info)


def _full_covariances(gm) -> np.ndarray:
    """scikit-learn's covariances_ of any type as (K, L, L) matrices."""
    k, dim = gm.means_.shape
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type == "full":
        return cov
    if gm.covariance_type == "tied":
        return np.broadcast_to(cov, (k, dim, dim)).copy()
    if gm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(dim)  # spherical: one variance per component
