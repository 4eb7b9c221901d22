"""The Frechet distance between two sets of features, each summarised as a Gaussian.

For N(mu_1, S_1) and N(mu_2, S_2) the squared 2-Wasserstein (Frechet) distance is

    FD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})

(Dowson & Landau 1982), the quantity FID computes on Inception features. S_1 S_2 is not
symmetric, but it is similar to the symmetric PSD matrix A = S_1^{1/2} S_2 S_1^{1/2}, so
Tr (S_1 S_2)^{1/2} = sum_i sqrt(lambda_i(A)): two symmetric eigendecompositions (``eigh``)
instead of a general matrix square root, real by construction, with the round-off's tiny
negative eigenvalues clipped to 0. Everything is computed in float64.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["feature_statistics", "frechet_distance", "frechet_distance_features", "sqrtm_psd"]


def sqrtm_psd(S: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (D, D)."""
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def feature_statistics(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of the rows of F (N, D), N >= 2, in float64."""
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2 or len(F) < 2:
        raise DataError(f"features must be (N, D) with N >= 2 rows, got shape {F.shape}")
    if not np.isfinite(F).all():
        raise DataError("features hold NaN or infinite values")
    return F.mean(0), np.cov(F, rowvar=False).reshape(F.shape[1], F.shape[1])


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Parameters
    ----------
    mu1, mu2 : (D,) means.
    sigma1, sigma2 : (D, D) symmetric positive semi-definite covariances.

    Returns
    -------
    float
        ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}) >= 0.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    s1, s2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise DataError(
            f"the Gaussians must share a dimension: means {mu1.shape}, {mu2.shape}, "
            f"covariances {s1.shape}, {s2.shape}"
        )
    root1 = sqrtm_psd(s1)
    A = root1 @ s2 @ root1  # similar to s1 @ s2, symmetric PSD
    tr_cross = np.sqrt(np.clip(np.linalg.eigvalsh((A + A.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross
    return float(max(fd, 0.0))


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets (N_a, D), (N_b, D)."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))
