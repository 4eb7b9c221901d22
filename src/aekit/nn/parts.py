"""What every part's settings share: a small frozen dataclass, checked where it is made.

Each latent kind, penalty and corruption owns its settings (``Settings`` on the part's class, in
the part's own file): a frozen dataclass validated in ``__post_init__`` and serialised with the
model as a JSON object. :class:`aekit.nn.config.ModelConfig` holds the parts' settings objects
(``latent_settings``, ``penalties``, ``corruption``), never their fields, so a new part is one file
and a registry row and no other part checks its fields.

``FLAT`` names the part's settings as users spell them (keyword arguments of
:func:`aekit.nn.build_model`, the scikit-learn estimators, the CLI's flags, config.json files
written before the parts had their own records): ``{"sparse_weight": "weight", ...}``.
:func:`settings_from_flat` turns such names into a part's settings at the edge; nothing past it
reads a flat name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError


@dataclass(frozen=True)
class PartSettings:
    """Base of every part's settings: ``to_dict``/``from_dict`` (JSON), ``flat`` (the user's
    names) and ``FLAT``, the map from those names to the fields."""

    FLAT: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Any, what: str) -> PartSettings:
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise ConfigError(f"{what} settings must be a JSON object, got {values!r:.60}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "no settings"
            raise ConfigError(f"{what} has no setting {', '.join(unknown)} (it takes {takes})")
        return cls(**values)

    def flat(self) -> dict[str, Any]:
        """The settings under the users' names (an alias such as ``beta`` included)."""
        return {name: getattr(self, field) for name, field in self.FLAT.items()}

    @classmethod
    def default_of(cls, name: str):
        """The default of the field the flat ``name`` spells (MISSING when it has none)."""
        field = next(f for f in dataclasses.fields(cls) if f.name == cls.FLAT[name])
        return field.default


def number(what: str, value, low: float = 0.0) -> float:
    """A finite float >= ``low``, or ConfigError naming ``what``."""
    import math

    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < low:
        raise ConfigError(f"{what} must be a finite number >= {low:g}, got {value}")
    return value


def whole(what: str, value, low: int = 0) -> int:
    """An integer >= ``low`` (a float that is one included), or ConfigError naming ``what``."""
    try:
        out = int(value)
        exact = out == float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{what} must be an integer, got {value!r}") from None
    if not exact or out < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    return out


def set_fields(settings, **values) -> None:
    """Normalised values into a frozen dataclass, from its ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(settings, name, value)


def _json(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, int | float | str | bool | list | dict) or value is None:
        return value
    return str(value)  # a value with a text form (a Noise): its parse() reads it back


def settings_from_flat(cls: type[PartSettings], flat: dict[str, Any], what: str):
    """``cls``'s settings from the flat names in ``flat`` that it claims (the rest of its
    fields at their defaults); None when ``flat`` names none of them."""
    mine = {cls.FLAT[k]: v for k, v in flat.items() if k in cls.FLAT}
    if not mine:
        return None
    try:
        return cls(**mine)
    except TypeError as e:  # a required field not given
        raise ConfigError(f"{what}: {e}") from None
