"""From a user's switches to config overrides: how the CLI combines the family's parts.

:func:`family_options` turns flags such as ``--sparse-kl 0.05 --noise mask:0.25`` into the
settings they mean, under the parts' flat names (read by
:meth:`aekit.nn.config.ModelConfig.from_values`; ``noise`` arrives parsed, a
:class:`~aekit.data.noise.Noise`), with two conveniences: asking for a sparsity target turns
the penalty on (weight 1 unless given) on a sigmoid code, ``likelihood`` names the loss of a
Gaussian latent (bernoulli = bce, gaussian = mse, laplace = mae), and ``self_supervised="sure"``
turns ``noise`` into the noise the data hold (``sure``) instead of one to add. Everything else
is passed through and validated by the config.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..functional.losses import LIKELIHOODS
from ..nn.registry import model_spec

LIKELIHOOD_LOSS = {v: k for k, v in LIKELIHOODS.items()}  # bernoulli -> bce, ...


def family_options(
    model: str,
    *,
    latent: str | None = None,
    sparse_kl: float | None = None,
    sparse_weight: float | None = None,
    l1: float | None = None,
    contractive: float | None = None,
    contractive_method: str | None = None,
    noise=None,
    blindspot: float | None = None,
    self_supervised: str | None = None,
    kl_weight: float | None = None,
    rate_weight: float | None = None,
    kl_warmup: int | None = None,
    free_bits: float | None = None,
    iwae: int | None = None,
    likelihood: str | None = None,
    loss: str | None = None,
    latent_activation: str | None = None,
) -> dict[str, Any]:
    """Config overrides for preset ``model``; None means "keep the preset's value".

    Examples
    --------
    >>> family_options("conv", sparse_kl=0.05, noise="mask:0.25")["latent_activation"]
    'sigmoid'
    """
    defaults = model_spec(model).defaults
    out: dict[str, Any] = {
        "latent": latent,
        "l1_weight": l1,
        "contractive_weight": contractive,
        "contractive_method": contractive_method,
        "noise": noise,
        "blindspot": blindspot,
        "kl_weight": kl_weight,
        "rate_weight": rate_weight,
        "kl_warmup": kl_warmup,
        "free_bits": free_bits,
        "iwae_samples": iwae,
        "loss": loss,
        "latent_activation": latent_activation,
        "sparse_weight": sparse_weight,
    }
    if self_supervised == "sure":  # the noise is the data's, stated, not one to add
        if noise is None:
            raise ConfigError(
                "--self-supervised sure needs the noise your data hold: --noise "
                "gaussian:SIGMA or poisson:PEAK (unknown noise: --model blindspot)"
            )
        out["sure"], out["noise"] = out.pop("noise"), None
    elif self_supervised is not None:
        raise ConfigError(f"unknown self-supervised training {self_supervised!r}; choose sure")
    if sparse_kl is not None:
        out["sparse_target"] = sparse_kl
        if sparse_weight is None:
            out["sparse_weight"] = defaults.get("sparse_weight") or 1.0
        if latent_activation is None:
            out["latent_activation"] = "sigmoid"
    if likelihood is not None:
        if likelihood not in LIKELIHOOD_LOSS:
            raise ConfigError(
                f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOOD_LOSS)}"
            )
        if loss is not None and loss != LIKELIHOOD_LOSS[likelihood]:
            raise ConfigError(
                f"likelihood {likelihood} means loss {LIKELIHOOD_LOSS[likelihood]}, "
                f"not {loss}: give one of the two"
            )
        out["loss"] = LIKELIHOOD_LOSS[likelihood]
    return {k: v for k, v in out.items() if v is not None}
