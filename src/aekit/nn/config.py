"""The settings every architecture shares, and the parts' settings it holds.

An aekit model is an architecture (dense, tied dense, convolutional, ...) x a latent kind
(deterministic, Gaussian, quantised, hyperprior) x optional penalties (sparse KL or L1 on the
code, contractive Jacobian) x an optional input corruption (noise, a blind spot) x a
reconstruction loss. The architecture is the class; its config extends :class:`ModelConfig`,
which holds the shared fields and one settings object per part (:mod:`aekit.nn.parts`): the
part's own small dataclass, from the part's own file. "A denoising convolutional VAE" is
``build_model("conv", D, latent="gaussian", noise="gaussian:0.3")`` and costs no new class.

The users' flat names (``beta``, ``sparse_weight``, ``noise``, ...: what build_model, the
estimators and old config.json files spell) are read by :meth:`ModelConfig.from_values`, the
one edge that knows them; each part's ``FLAT`` says which are its own.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..functional.losses import LOSSES
from .activations import ACTIVATIONS
from .corruption import CORRUPTIONS, corruption_name
from .latent import LATENTS as LATENT_KINDS
from .parts import PartSettings, settings_from_flat
from .penalties import PENALTIES

LATENTS = tuple(LATENT_KINDS)
OUTPUT_ACTIVATIONS = ("sigmoid", "identity", "auto")
NESTED = ("latent_settings", "penalties", "corruption")  # the parts' settings objects
# the flat names and defaults of versions before the parts had their own settings
LEGACY = {
    "sparse_weight": 0.0,
    "sparse_target": 0.05,
    "l1_weight": 0.0,
    "contractive_weight": 0.0,
    "contractive_method": "auto",
    "contractive_samples": 1,
    "noise": None,
    "blindspot": 0.0,
    "beta": 1.0,
    "kl_warmup": 0,
    "free_bits": 0.0,
    "iwae_samples": 1,
}


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


def flat_names() -> dict[str, list[tuple[str, type]]]:
    """Every flat name a part claims: name -> [(the part's description, its Settings)]."""
    out: dict[str, list[tuple[str, type]]] = {}
    for kind, cls in LATENT_KINDS.items():
        for name in cls.Settings.FLAT:
            out.setdefault(name, []).append((f"a {kind} latent", cls.Settings))
    for pname, cls in PENALTIES.items():
        for name in cls.Settings.FLAT:
            out.setdefault(name, []).append((f"the {pname} penalty", cls.Settings))
    for cname, cls in CORRUPTIONS.items():
        for name in cls.Settings.FLAT:
            out.setdefault(name, []).append((f"the {cname} corruption", cls.Settings))
    return out


@dataclass
class ModelConfig:
    """Settings shared by every architecture, and the settings of its parts.

    ``latent`` names the latent kind (:data:`aekit.nn.latent.LATENTS`): "deterministic" (the
    code is s(W h + b), ``latent_activation`` s), "gaussian" (a VAE: the encoder gives mu and
    log sigma^2; ``loss`` then names the likelihood p(x|z): bce = Bernoulli, mse = Gaussian
    with unit variance, mae = Laplace), "quantized" and "hyperprior" (codecs). Its settings are
    ``latent_settings``, the kind's own dataclass (the Gaussian's KL weight, warm-up, free bits
    and IWAE samples; the quantised code's rate weight).

    ``penalties`` maps a penalty's name (:data:`aekit.nn.penalties.PENALTIES`: sparse, l1,
    contractive) to its settings; only penalties that are on (weight > 0) are kept.
    ``corruption`` is the settings of the one input corruption (noise on clean data, or the
    blind spot on noisy data alone; :data:`aekit.nn.corruption.CORRUPTIONS`), or None.
    ``image_shape`` (C, H, W) is needed by convolutional models, the SSIM loss and the blind
    spot.

    Build one with :meth:`from_values`, which also reads the users' flat names (``beta``,
    ``sparse_weight``, ``noise``, ...); :meth:`to_dict` is its JSON form.
    """

    input_dim: int
    latent_dim: int = 16
    latent: str = "deterministic"
    latent_activation: str = "identity"
    output_activation: str = "sigmoid"
    loss: str = "mse"
    image_shape: tuple[int, int, int] | None = None
    latent_settings: Any = None
    penalties: Any = field(default_factory=dict)
    corruption: Any = None

    def __post_init__(self) -> None:
        if int(self.input_dim) <= 0 or int(self.latent_dim) <= 0:
            raise ConfigError("input_dim and latent_dim must be positive integers")
        self.input_dim, self.latent_dim = int(self.input_dim), int(self.latent_dim)
        check_choice("latent kind", self.latent, LATENTS)
        check_choice("latent activation", self.latent_activation, ACTIVATIONS)
        check_choice("output activation", self.output_activation, OUTPUT_ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        if self.output_activation == "auto":
            raise ConfigError("output_activation 'auto' must be resolved from the data first")
        if self.loss in ("bce", "ssim") and self.output_activation != "sigmoid":
            hint = " or the gaussian likelihood (loss mse)" if self.latent == "gaussian" else ""
            raise ConfigError(
                f"loss {self.loss!r} needs outputs in [0, 1]: use output activation sigmoid "
                f"(and data scaled to [0, 1]){hint}"
            )
        self._check_image_shape()
        self._read_parts()
        for settings in (*self.penalties.values(), self.corruption):
            if settings is not None:
                settings.check(self)  # what the part needs of the model
        LATENT_KINDS[self.latent].check_config(self)

    # ---- the edge: the users' flat names ----------------------------------------------------

    @classmethod
    def from_values(cls, **values: Any) -> ModelConfig:
        """A config from its fields and the users' flat names of the parts' settings.

        ``beta`` (and ``kl_weight``, ``kl_warmup``, ...) go to the latent kind that claims
        them, ``sparse_weight``/``l1_weight``/``contractive_*`` to the penalties, ``noise`` and
        ``blindspot`` to the corruption. A name that only another part claims is refused unless
        it has that part's default (config.json files of earlier versions list every name).
        """
        own = {f.name for f in dataclasses.fields(cls)}
        base = {k: v for k, v in values.items() if k in own}
        flat = {k: v for k, v in values.items() if k not in own}
        claims = flat_names()
        unknown = sorted(k for k in flat if k not in claims)
        if unknown:
            raise ConfigError(f"the model has no setting {', '.join(unknown)}")
        if flat:
            latent = base.get("latent", _default(cls, "latent"))
            if latent not in LATENT_KINDS:
                check_choice("latent kind", latent, LATENTS)
            base.update(_parts_from_flat(latent, flat, claims, base))
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (model records in config.json): fields, the parts' settings as
        objects (``corruption`` with its ``kind``)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name not in NESTED:
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        out["latent_settings"] = self.latent_settings.to_dict()
        out["penalties"] = {name: s.to_dict() for name, s in self.penalties.items()}
        c = self.corruption
        out["corruption"] = None if c is None else {"kind": corruption_name(c), **c.to_dict()}
        return out

    def legacy_dict(self) -> dict[str, Any]:
        """The flat record of versions before the parts had their own settings: every field
        and every one of :data:`LEGACY` names. The model hash of .aek files is taken on it, so
        that files compressed by a model saved then still decode; a part setting with no
        legacy name joins it under its own."""
        out = {k: v for k, v in self.to_dict().items() if k not in NESTED}
        out.update(LEGACY)
        for settings in (self.latent_settings, *self.penalties.values(), self.corruption):
            if settings is None:
                continue
            named = {f for k, f in settings.FLAT.items() if k in LEGACY}
            for name, value in settings.flat().items():
                field_name = settings.FLAT[name]
                if name in LEGACY or (field_name not in named and name == field_name):
                    out[name] = str(value) if hasattr(value, "kind") else value
        return out

    def flat(self) -> dict[str, Any]:
        """Every setting under the users' names: the fields, and each part's flat names."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in NESTED}  # fmt: skip
        for settings in (self.latent_settings, *self.penalties.values(), self.corruption):
            if settings is not None:
                out.update(settings.flat())
        return out

    # ---- what other modules ask of the parts ---------------------------------------------------

    @property
    def noise(self):
        """The noise added to the clean input in training (:class:`~aekit.data.noise.Noise`),
        or None (a ``sure`` model's noise is in the data already: :attr:`data_noise`)."""
        c = self.corruption
        return None if c is None or corruption_name(c) != "noise" else c.noise

    @property
    def data_noise(self):
        """The noise the model was trained to remove: added (``noise``) or stated (``sure``)."""
        return getattr(self.corruption, "noise", None)

    @property
    def blindspot(self) -> float:
        """The blind spot's share of masked pixels, 0 without one."""
        return getattr(self.corruption, "share", 0.0)

    @property
    def is_plain(self) -> bool:
        """True for seed 000's model: deterministic latent, no penalty, no corruption."""
        return self.latent == "deterministic" and not self.penalties and self.corruption is None

    # ---- checks -----------------------------------------------------------------------------

    def _read_parts(self) -> None:
        kind = LATENT_KINDS[self.latent].Settings
        if self.latent_settings is None:
            self.latent_settings = kind()
        elif not isinstance(self.latent_settings, kind):
            if isinstance(self.latent_settings, PartSettings):
                raise ConfigError(
                    f"{type(self.latent_settings).__name__} are not the settings of a "
                    f"{self.latent} latent"
                )
            self.latent_settings = kind.from_dict(self.latent_settings, f"a {self.latent} latent")
        penalties = self.penalties or {}
        if not isinstance(penalties, dict):
            raise ConfigError(f"penalties must map names to settings, got {penalties!r:.60}")
        read = {}
        for name, settings in penalties.items():
            check_choice("penalty", name, tuple(PENALTIES))
            settings = PENALTIES[name].Settings.from_dict(settings, f"the {name} penalty")
            if settings.weight > 0:
                read[name] = settings
        self.penalties = {name: read[name] for name in PENALTIES if name in read}
        c = self.corruption
        if c is not None and not isinstance(c, PartSettings):
            if not isinstance(c, dict) or c.get("kind") not in CORRUPTIONS:
                raise ConfigError(
                    f"corruption must be an object with a kind ({', '.join(CORRUPTIONS)}), "
                    f"got {c!r:.60}"
                )
            rest = {k: v for k, v in c.items() if k != "kind"}
            self.corruption = CORRUPTIONS[c["kind"]].Settings.from_dict(rest, c["kind"])

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


def _default(cls, name: str):
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default


def _parts_from_flat(latent: str, flat: dict[str, Any], claims, base) -> dict[str, Any]:
    """``latent_settings``, ``penalties`` and ``corruption`` from flat names (merged into
    what ``base`` already gives)."""
    kind = LATENT_KINDS[latent].Settings
    out: dict[str, Any] = {}
    parts = {k for c in (*PENALTIES.values(), *CORRUPTIONS.values()) for k in c.Settings.FLAT}
    for name, value in flat.items():
        if name in kind.FLAT or name in parts or _is_default(claims[name], name, value):
            continue
        takes = ", ".join(k for k, f in kind.FLAT.items() if k == f) or "no settings of its own"
        owners = " or ".join(what for what, _ in claims[name])
        raise ConfigError(
            f"{name} applies to {owners}, not to a {latent} latent (which takes {takes})"
        )
    mine = {k: v for k, v in flat.items() if k in kind.FLAT}
    if mine:
        given = base.get("latent_settings")
        start = {} if given is None else kind.from_dict(given, f"a {latent} latent").to_dict()
        out["latent_settings"] = kind(**{**start, **{kind.FLAT[k]: v for k, v in mine.items()}})
    penalties = dict(base.get("penalties") or {})
    for pname, cls in PENALTIES.items():
        settings = settings_from_flat(cls.Settings, flat, f"the {pname} penalty")
        if settings is not None:
            penalties[pname] = settings
    out["penalties"] = penalties
    chosen = []
    for cname, cls in CORRUPTIONS.items():
        wanted = {k: v for k, v in flat.items() if k in cls.Settings.FLAT}
        if any(not _is_off(v) for v in wanted.values()):
            chosen.append(settings_from_flat(cls.Settings, wanted, f"the {cname} corruption"))
    if len(chosen) > 1:
        raise ConfigError(
            "one input corruption at most: noise (clean data) or blindspot or sure (noisy data "
            "alone); drop one"
        )
    if chosen:
        out["corruption"] = chosen[0]
    elif any(k in flat for c in CORRUPTIONS.values() for k in c.Settings.FLAT):
        out["corruption"] = base.get("corruption")  # all given as off: keep what base has
    return out


def _is_off(value) -> bool:
    return value is None or value == 0 or value == ""


def _is_default(owners, name: str, value) -> bool:
    """True when ``value`` is what every part claiming ``name`` has by default (off)."""
    for _, settings in owners:
        default = settings.default_of(name)
        if default is dataclasses.MISSING:
            return _is_off(value)
        if value != default:
            return False
    return True
