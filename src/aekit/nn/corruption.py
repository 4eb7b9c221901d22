"""The input corruptions of a model's objective, as modules (seeds 003, 004; Noise2Self).

Each part has its own settings (``Settings``: a frozen dataclass, checked where it is made,
with ``check(config)`` for what it needs of the model), is built by ``from_settings`` from the
model config's ``corruption`` (at most one: the config holds one settings object or None) and
called as ``part(x, generator) -> (x_tilde, scored)``: the input the encoder reads, and either
None (the reconstruction is scored on every value, against the clean x) or a 0/1 tensor of x's
shape naming the values the reconstruction is scored on. A new part is a class with its
settings and a row in :data:`CORRUPTIONS`.

- :class:`Corruption` (``noise``): noise added to clean data, a denoising autoencoder. The
  noise itself (its text form, kinds and maths) is :class:`aekit.data.noise.Noise`, which also
  corrupts arrays for evaluation.
- :class:`BlindSpot` (``blindspot``: the share P of pixels masked): self-supervised denoising
  from noisy data alone (Noise2Self, Batson & Royer 2019; Noise2Void, Krull et al. 2019). Each
  masked pixel is replaced by the mean of its unmasked 8 neighbours (never itself nor another
  masked pixel), and the loss is
  taken on the masked pixels only, so the model is scored where it could not see the value it
  predicts: noise independent between pixels cannot be learnt, the signal can.
- :class:`~aekit.nn.sure.SureRisk` (``sure``: the noise the data hold, Gaussian or Poisson):
  self-supervised denoising from noisy data alone when their noise is known, scored by Stein's
  unbiased risk estimate of the squared error to the clean data (its own file,
  :mod:`aekit.nn.sure`). It adds nothing to the input; the model calls its ``risk``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.noise import Noise
from ..errors import ConfigError
from .parts import PartSettings, number, set_fields
from .sure import SureRisk

# the 3x3 ring around a pixel, without the pixel: the blind spot's replacement value
_RING = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]) / 8.0


@dataclass(frozen=True)
class NoiseSettings(PartSettings):
    """``noise``: the :class:`~aekit.data.noise.Noise` added to the clean input (its text form,
    ``"gaussian:0.3"``, is read too)."""

    noise: Noise

    FLAT = {"noise": "noise"}

    def __post_init__(self) -> None:
        set_fields(self, noise=Noise.parse(self.noise))

    @staticmethod
    def check(config) -> None:
        """Any model can be trained on noisy inputs."""


@dataclass(frozen=True)
class BlindSpotSettings(PartSettings):
    """``share`` P in (0, 1): the share of pixels masked (and scored) in each image."""

    share: float

    FLAT = {"blindspot": "share"}

    def __post_init__(self) -> None:
        set_fields(self, share=number("blindspot", self.share))
        if not 0 < self.share < 1:
            raise ConfigError(
                f"blindspot is the share of pixels masked, in (0, 1), got {self.share}"
            )

    @staticmethod
    def check(config) -> None:
        if config.image_shape is None:
            raise ConfigError(
                "blind-spot training masks pixels of images: the model needs an image_shape"
            )
        if config.latent != "deterministic" or config.loss not in ("mse", "mae"):
            raise ConfigError(
                "blind-spot training scores masked pixels with loss mse or mae, on a "
                "deterministic latent"
            )


class Corruption(nn.Module):
    """x -> x_tilde ~ q(x_tilde | x), scored on every value; randomness from ``generator``,
    else torch's global RNG."""

    name = "noise"
    Settings = NoiseSettings

    def __init__(self, noise: str | Noise) -> None:
        super().__init__()
        self.noise = Noise.parse(noise)

    @classmethod
    def from_settings(cls, settings: NoiseSettings, config) -> Corruption:
        return cls(settings.noise)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        return self.noise(x, generator), None

    def extra_repr(self) -> str:
        return str(self.noise)


class BlindSpot(nn.Module):
    """Mask each pixel with probability ``p`` (at least one per image), replace it by the mean
    of its unmasked 8 neighbours, and score only the masked pixels; rows (N, C*H*W) of
    ``image_shape``."""

    name = "blindspot"
    Settings = BlindSpotSettings

    def __init__(self, p: float, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.p, self.image_shape = float(p), tuple(image_shape)

    @classmethod
    def from_settings(cls, settings: BlindSpotSettings, config) -> BlindSpot:
        return cls(settings.share, config.image_shape)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        c, h, w = self.image_shape
        img = x.reshape(-1, c, h, w)  # (N, C*H*W) -> (N, C, H, W)
        u = torch.rand((len(img), 1, h, w), generator=generator, dtype=x.dtype, device=x.device)
        # the lowest draw of each image is always masked: no image without a scored pixel
        first = u.flatten(1).argmin(1)
        mask = (u < self.p).flatten(1)
        mask[torch.arange(len(img), device=x.device), first] = True
        mask = mask.reshape(-1, 1, h, w).expand(-1, c, -1, -1).to(x.dtype)
        # the mean of the unmasked ones of the 8 neighbours: no masked value enters the input
        # anywhere, so the input is a function of the unmasked pixels alone (J-invariance)
        keep = 1.0 - mask
        ring = _RING.to(dtype=x.dtype, device=x.device).expand(c, 1, 3, 3)
        mode = "replicate" if min(h, w) < 2 else "reflect"
        total = F.conv2d(F.pad(img * keep, (1, 1, 1, 1), mode=mode), ring, groups=c)
        count = F.conv2d(F.pad(keep, (1, 1, 1, 1), mode=mode), ring, groups=c)
        local = torch.where(count > 0, total / count.clamp_min(1e-12), torch.zeros_like(img))
        x_tilde = torch.where(mask.bool(), local, img)
        return x_tilde.reshape(x.shape), mask.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"


CORRUPTIONS: dict[str, type] = {cls.name: cls for cls in (Corruption, BlindSpot, SureRisk)}


def corruption_name(settings: PartSettings) -> str:
    """The :data:`CORRUPTIONS` name of a corruption's settings."""
    return next(name for name, cls in CORRUPTIONS.items() if isinstance(settings, cls.Settings))


def build_corruption(config) -> nn.Module | None:
    """The corruption the config holds (one settings object, or None for none)."""
    settings = config.corruption
    if settings is None:
        return None
    return CORRUPTIONS[corruption_name(settings)].from_settings(settings, config)
