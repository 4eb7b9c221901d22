"""The PCA baseline of a training run: the warm start as "epoch 0", and the check after training.

A model that starts from PCA's solution (:mod:`aekit.nn.init`) competes with its own start:
:class:`KeepStart` keeps the start's weights, :func:`keep_or_revert` goes back to them unless the
trained model is better on the validation rows by more than the noise of that estimate, and
:func:`pca_check` compares the run's model with PCA at the same code size on held-out rows in
the data's own units (what the run's summary.json and ``aekit train``'s last lines report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import checkpoint as ckpt
from ..io.rundir import Run
from ..training import Callback

PCA_TOLERANCE = 1e-3  # a model worse than PCA by more than this share is reported
Z_KEEP = 2.0  # a trained model replaces its PCA start when better by 2 standard errors


def keep_or_revert(out: Path, net, start_weights, X_val) -> dict[str, Any] | None:
    """Keep the trained model only when it beats its start (PCA) on the validation rows by
    more than the noise of that estimate, else go back to the start.

    The best epoch is the minimum of a noisy curve: on a few dozen validation rows it can look
    better than the start and be worse on new data. The per-row differences of the squared
    error d_i (trained - start), in the data's units (the run's scaler undone: what the check
    against PCA measures; with one scale factor the same decision as in the scaled space), must
    have a mean below -Z_KEEP standard errors.
    """
    if start_weights is None:
        return None
    trained = {k: v.detach().clone() for k, v in net.state_dict().items()}
    e_trained = _row_errors(net, X_val)
    net.load_state_dict(start_weights)
    d = e_trained - _row_errors(net, X_val)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    z = float(d.mean() / se) if se > 0 else (0.0 if d.mean() == 0 else -float("inf"))
    keep = z < -Z_KEEP
    if keep:
        net.load_state_dict(trained)
    else:
        Run(out).write_best(start_weights)
    return {"model": "trained" if keep else "start", "z": z, "threshold": -Z_KEEP}


def _row_errors(net, X) -> np.ndarray:
    X_hat = net.reconstruct_scaled(X)
    scaler = getattr(net, "scaler", None)
    if scaler is not None:
        X_hat, X = scaler.inverse_transform(X_hat), scaler.inverse_transform(X)
    return ((X_hat.astype(np.float64) - X) ** 2).sum(axis=1)


class KeepStart(Callback):
    """The start (a PCA warm start, the run's start.safetensors) as "epoch 0": its weights
    become model.safetensors when no epoch beat its validation loss. They are copied at the
    end, not before training, so that a run killed in its first epoch still has no model
    file; a resumed run reads them from start.safetensors and decides as the uninterrupted
    run would."""

    def __init__(self, out: Path) -> None:
        self.out, self.weights = Path(out), None

    def on_fit_start(self, loop) -> None:
        self.weights = Run(self.out).read_start()

    def on_fit_end(self, loop) -> None:
        if loop.state.best_epoch == 0 and self.weights is not None:
            Run(self.out).write_best(self.weights)


def start_loss(net, X) -> float:
    from ..training.strategy import evaluate_loss

    return evaluate_loss(net, torch.as_tensor(X))


def refit_start(out: Path, net, X_train, X_val, seed: int = 0) -> bool:
    """The kept PCA start, refitted on every training row (the validation rows included) and
    written as the run's model: PCA of 90% of a few hundred rows is measurably worse than the
    PCA a user fits on all of them. ``net`` holds the start's weights; the validation rows have
    served their purpose (they chose the start), so the model may now use them. Returns
    whether it refitted (only a model that starts exactly at PCA's solution)."""
    from ..nn.init import pca_warm_start

    if X_val is None or len(X_val) == 0:
        return False  # the start is PCA of every row already
    X_all = np.concatenate([X_train, X_val])
    if not pca_warm_start(net, X_all, seed=seed, scaler=net.scaler).applied:
        return False
    Run(out).write_best(net.state_dict())
    return True


def write_check(out: Path, net, split, kept=None, init=None, seed: int = 0):
    """The comparisons with PCA, written to the run's summary.json; returns (validation check,
    PCA baseline), (None, None) without validation rows held in memory.

    ``validation`` is :func:`pca_check` of the model as training chose it, on the validation
    rows (the decision ``kept`` and the ``advice`` beside it; ``init`` is config.json's record
    of the start). A kept PCA start is then refitted on every training row
    (:func:`refit_start`), and ``pca_baseline`` sets the final model beside PCA fitted on the
    same rows as its weights: the training rows, scored on the validation rows; or, after a
    refit, all of them, scored on them (none is held out then: ``held_out`` false).
    """
    X_train, X_val, scaler = split
    if not isinstance(X_train, np.ndarray) or not isinstance(X_val, np.ndarray):
        return None, None  # no validation rows, or streamed blocks (not held in memory)
    if len(X_val) == 0 or len(X_train) < 2 or not net.has_code:
        return None, None  # (a model without a code, dncnn, has no code size to set PCA at)
    check = pca_check(net, X_train, X_val, scaler)
    if kept is not None:
        check["kept"] = kept
    check["advice"] = init_advice(net, init)
    refitted = bool(kept and kept["model"] == "start") and refit_start(
        out, net, X_train, X_val, seed
    )
    if refitted:
        X_all = np.concatenate([X_train, X_val])
        rows = {"fit_rows": "train+val", "scored_rows": "train+val", "held_out": False}
        base = {**rows, "n_fit": len(X_all), **pca_check(net, X_all, X_all, scaler)}
        check["kept"]["refit"] = "train+val"
    else:
        rows = {"fit_rows": "train", "scored_rows": "val", "held_out": True}
        base = {**rows, "n_fit": len(X_train), **pca_check(net, X_train, X_val, scaler)}
    del base["split"]
    Run(out).write_summary({"validation": check, "pca_baseline": base})
    return check, base


def init_advice(net, init=None) -> str | None:
    """Advice that works for this model when it ends worse than PCA, or None.

    "--init pca" only where the model accepts it and did not start there (denoising,
    compression, VAE, penalised, conv models refuse it). A tied model that started at PCA in a
    space scaled per column (minmax, standard) started at PCA of the scaled rows (one set of
    directions cannot carry the data's PCA there), which is not PCA in the data's units:
    "--scale none" makes its start the PCA that the check compares with.
    """
    from ..errors import AekitError
    from ..nn.init import warm_start_blocker

    if (init or {}).get("kind") == "pca":
        scale = getattr(net.scaler, "scale", None)
        tied = getattr(net.config, "tied", False)
        if tied and scale is not None and np.ptp(np.asarray(scale)) > 0:
            return "--scale none"
        return None  # it started at PCA already
    config = {**net.config.to_dict(), "output_activation": "identity"}
    try:
        probe = ckpt.build_from_record({"name": net.name, "config": config})
    except AekitError:
        return None
    if warm_start_blocker(probe) is not None:
        return None
    if net.config.output_activation != "identity":
        return "--init pca --output-activation identity"
    return "--init pca"


def pca_check(net, X_train, X_val, scaler) -> dict[str, Any]:
    """The model's held-out reconstruction error beside PCA's at the same code size.

    PCA is fitted on the training rows and both are scored on the validation rows, in the
    data's own units (the scaler undone); the scaled-space MSE is kept, labelled. ``ratio``
    is the model's MSE over PCA's; ``worse_than_pca`` is ``ratio > 1 + PCA_TOLERANCE``
    (float rounding of a model that is PCA).
    """
    from sklearn.decomposition import PCA

    undo = scaler.inverse_transform if scaler is not None else np.asarray
    R_train = undo(X_train).astype(np.float64)
    R_val = undo(X_val).astype(np.float64)
    k = int(min(net.config.latent_dim, *R_train.shape))
    pca = PCA(n_components=k, random_state=0).fit(R_train)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(R_val)) - R_val) ** 2))
    X_hat = net.reconstruct_scaled(X_val)
    mse = float(np.mean((undo(X_hat).astype(np.float64) - R_val) ** 2))
    ratio = mse / pca_mse if pca_mse > 0 else (1.0 if mse == 0 else float("inf"))
    return {
        "units": "data",
        "split": "validation",
        "n_samples": int(len(X_val)),
        "mse": mse,
        "pca_components": k,
        "pca_mse": pca_mse,
        "ratio": ratio,
        "worse_than_pca": bool(ratio > 1.0 + PCA_TOLERANCE),
        "scaled_mse": float(np.mean((X_hat.astype(np.float64) - X_val) ** 2)),
    }
