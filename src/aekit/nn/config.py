"""The settings every architecture shares: latent kind, penalties, corruption, loss.

An aekit model is an architecture (dense, tied dense, convolutional) x a latent kind
(deterministic or Gaussian) x optional penalties (sparse KL or L1 on the code, contractive
Jacobian) x an optional input corruption x a reconstruction loss. The architecture is the
class; everything else is a field of :class:`ModelConfig`, which each architecture's config
extends, so that "a denoising convolutional VAE" is ``ConvConfig(latent="gaussian",
noise="gaussian:0.3", ...)`` and costs no new class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..data.noise import Noise
from ..errors import ConfigError
from ..functional.losses import LOSSES
from .activations import ACTIVATIONS
from .latent import LATENTS as LATENT_KINDS

LATENTS = tuple(LATENT_KINDS)
CONTRACTIVE_METHODS = ("auto", "closed", "exact", "projection")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity", "auto")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def sizes(value, what: str) -> tuple[int, ...]:
    """A tuple of positive layer sizes from any sequence (JSON gives lists)."""
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a list of layer sizes, got {value!r}") from None
    if any(s <= 0 for s in out):
        raise ConfigError(f"{what} sizes must be positive, got {list(out)}")
    return out


def _number(what: str, value, low: float = 0.0) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < low:
        raise ConfigError(f"{what} must be a finite number >= {low:g}, got {value}")
    return value


@dataclass
class ModelConfig:
    """Settings shared by every architecture.

    ``latent`` is "deterministic" (the code is s(W h + b)) or "gaussian" (a VAE: the encoder
    gives mu and log sigma^2; ``loss`` then names the likelihood p(x|z): bce = Bernoulli,
    mse = Gaussian with unit variance, mae = Laplace). ``beta`` weighs the KL term,
    ``kl_warmup`` ramps that weight linearly from 0 over so many epochs, ``free_bits`` is the
    least KL (nats) per latent unit that is charged, ``iwae_samples`` > 1 trains the
    importance-weighted bound with that many samples.

    Penalties (each off at weight 0): ``sparse_weight`` * sum_j KL(``sparse_target`` ||
    rho_hat_j) on a sigmoid code (seed 003); ``l1_weight`` * sum_j |z_j| (seed 004);
    ``contractive_weight`` * ||J_f(x)||_F^2 (seed 004), computed by ``contractive_method``:
    "closed" (one dense encoder layer), "exact" (autograd, one backward pass per code unit),
    "projection" (``contractive_samples`` random projections, unbiased), or "auto" (closed where
    it applies, else exact). ``noise`` corrupts the input in training, e.g. "gaussian:0.3"
    (see :mod:`aekit.data.noise`); ``blindspot`` = P > 0 trains from noisy data alone,
    masking that share of pixels and scoring only them (:mod:`aekit.nn.corruption`).
    ``image_shape`` (C, H, W) is needed by convolutional
    models and by the SSIM loss.
    """

    input_dim: int
    latent_dim: int = 16
    latent: str = "deterministic"
    latent_activation: str = "identity"
    output_activation: str = "sigmoid"
    loss: str = "mse"
    image_shape: tuple[int, int, int] | None = None
    sparse_weight: float = 0.0
    sparse_target: float = 0.05
    l1_weight: float = 0.0
    contractive_weight: float = 0.0
    contractive_method: str = "auto"
    contractive_samples: int = 1
    noise: str | None = None
    blindspot: float = 0.0
    beta: float = 1.0
    kl_warmup: int = 0
    free_bits: float = 0.0
    iwae_samples: int = 1

    def __post_init__(self) -> None:
        if int(self.input_dim) <= 0 or int(self.latent_dim) <= 0:
            raise ConfigError("input_dim and latent_dim must be positive integers")
        self.input_dim, self.latent_dim = int(self.input_dim), int(self.latent_dim)
        check_choice("latent kind", self.latent, LATENTS)
        check_choice("latent activation", self.latent_activation, ACTIVATIONS)
        check_choice("output activation", self.output_activation, OUTPUT_ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("contractive method", self.contractive_method, CONTRACTIVE_METHODS)
        if self.output_activation == "auto":
            raise ConfigError("output_activation 'auto' must be resolved from the data first")
        if self.loss in ("bce", "ssim") and self.output_activation != "sigmoid":
            hint = " or the gaussian likelihood (loss mse)" if self.latent == "gaussian" else ""
            raise ConfigError(
                f"loss {self.loss!r} needs outputs in [0, 1]: use output activation sigmoid "
                f"(and data scaled to [0, 1]){hint}"
            )
        self._check_image_shape()
        if self.noise is not None:
            self.noise = str(Noise.parse(self.noise))
        self._check_blindspot()
        self._check_penalties()
        self._check_latent()

    def _check_image_shape(self) -> None:
        if self.image_shape is not None:
            self.image_shape = sizes(self.image_shape, "image_shape")  # type: ignore[assignment]
            if len(self.image_shape) != 3 or math.prod(self.image_shape) != self.input_dim:
                raise ConfigError(
                    f"image_shape {list(self.image_shape)} must be (C, H, W) with "
                    f"C * H * W = input_dim = {self.input_dim}"
                )
        if self.loss == "ssim" and self.image_shape is None:
            raise ConfigError("loss 'ssim' compares images: the model needs an image_shape")

    def _check_blindspot(self) -> None:
        self.blindspot = _number("blindspot", self.blindspot)
        if self.blindspot == 0:
            return
        if not self.blindspot < 1:
            raise ConfigError(
                f"blindspot is the share of pixels masked, in (0, 1), got {self.blindspot}"
            )
        if self.image_shape is None:
            raise ConfigError(
                "blind-spot training masks pixels of images: the model needs an image_shape"
            )
        if self.noise is not None:
            raise ConfigError(
                "blind-spot training learns from noisy data alone: drop the noise "
                "(or the blind spot)"
            )
        if self.latent != "deterministic" or self.loss not in ("mse", "mae"):
            raise ConfigError(
                "blind-spot training scores masked pixels with loss mse or mae, on a "
                "deterministic latent"
            )

    def _check_penalties(self) -> None:
        for name in ("sparse_weight", "l1_weight", "contractive_weight"):
            setattr(self, name, _number(name, getattr(self, name)))
        self.sparse_target = _number("sparse_target", self.sparse_target)
        if not 0 < self.sparse_target < 1:
            raise ConfigError(f"sparse_target must lie in (0, 1), got {self.sparse_target}")
        if int(self.contractive_samples) < 1:
            raise ConfigError("contractive_samples must be >= 1")
        self.contractive_samples = int(self.contractive_samples)
        if self.sparse_weight > 0 and (
            self.latent != "deterministic" or self.latent_activation != "sigmoid"
        ):
            raise ConfigError(
                "the sparsity KL needs code activations in (0, 1): use a deterministic latent "
                "with latent_activation sigmoid (or the l1 penalty instead)"
            )

    def _check_latent(self) -> None:
        self.beta = _number("beta", self.beta)
        self.free_bits = _number("free_bits", self.free_bits)
        if int(self.kl_warmup) < 0 or int(self.iwae_samples) < 1:
            raise ConfigError("kl_warmup must be >= 0 and iwae_samples >= 1")
        self.kl_warmup, self.iwae_samples = int(self.kl_warmup), int(self.iwae_samples)
        LATENT_KINDS[self.latent].check_config(self)  # each kind checks its own settings

    @property
    def is_plain(self) -> bool:
        """True for seed 000's model: deterministic latent, no penalty, no corruption."""
        return (
            self.latent == "deterministic"
            and self.noise is None
            and self.blindspot == 0
            and self.sparse_weight == self.l1_weight == self.contractive_weight == 0
        )
