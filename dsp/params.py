"""Parameter dataclasses: validation and plain-dict (JSON) round trips.

Every processor's parameters are a frozen dataclass deriving from :class:`Params`.
Field names carry units (``freq_hz``, ``gain_db``, ``attack_ms``). ``validate()``
raises :class:`dsp.errors.ParameterError` with a message naming the field, its value
and the allowed range; it runs on construction.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Self

from .errors import ChainError, ParameterError


def check_range(name: str, value: object, lo: float, hi: float) -> None:
    """Raise ParameterError unless ``lo <= value <= hi`` (NaN is always refused)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ParameterError(f"{name} = {value:g} is outside the allowed range {lo:g} to {hi:g}")


def check_choice(name: str, value: str, choices: typing.Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ParameterError(f"{name} = {value!r} is not one of: {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class Params:
    """Base for processor parameters. Subclasses override ``validate``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Params):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = [e.to_dict() if isinstance(e, Params) else e for e in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a plain dict; unknown keys and wrong types raise ChainError/ParameterError."""
        if not isinstance(data, dict):
            raise ChainError(f"{cls.__name__} parameters must be an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ChainError(f"{cls.__name__}: unknown parameter(s) {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = _coerce(hints[name], value, f"{cls.__name__}.{name}")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ChainError(f"{cls.__name__}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        return _coerce(options[0], value, where)
    if isinstance(hint, type) and issubclass(hint, Params):
        return hint.from_dict(value)
    if origin is tuple:
        (elem, *_rest) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ChainError(f"{where} must be a list")
        return tuple(_coerce(elem, v, where) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ChainError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChainError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ChainError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ChainError(f"{where} must be a string, got {value!r}")
        return value
    return value
