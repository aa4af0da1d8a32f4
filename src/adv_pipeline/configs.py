"""The one path from parameters (YAML, runtime ``--params``, checkpoint JSON) to the frozen
config dataclasses of every stage, and back.

``from_params(Config, values, "estimator")`` builds nested dataclasses field by field,
turns lists into tuples (frozen configs stay hashable) and refuses an unknown key,
naming where it is and the closest known key: a typo never runs silently on defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A parameter is unknown or invalid; the message names it and the fix."""


def closest(name: str, known: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the known name closest to ``name`` (or ``"."``): the
    end of a sentence that names ``name``."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else "."


def _home(where: str) -> str:
    """The file that holds the parameters namespace ``where`` (``estimator.model`` ->
    ``conf/base/parameters_estimator.yml``)."""
    return f"conf/base/parameters_{where.split('.')[0]}.yml"


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass an annotation names (``X`` or ``X | None``), or None."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def from_params(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """``cls`` built from ``values`` (a parameters namespace such as ``estimator``).

    Nested dataclass fields are built from nested mappings; lists become tuples; a key
    that ``cls`` does not have raises :class:`ConfigError` naming ``where.key``, the
    closest known key and all known keys. Missing keys take the dataclass defaults.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"parameters {where}: expected a mapping of {cls.__name__} fields, got {values!r}"
        )
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"parameters: unknown key {where}.{key}{closest(str(key), names)} Known keys of "
            f"{where}: {', '.join(names)}. Fix: correct its spelling in --params or {_home(where)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        nested = _dataclass_of(hints.get(name))
        if nested is not None and isinstance(value, Mapping):
            value = from_params(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        fix = "" if "Fix:" in str(exc) else f". Fix: change it in --params or {_home(where)}"
        raise ConfigError(f"parameters {where}: {exc}{fix}") from exc


def to_params(config: Any) -> Any:
    """A config (nested dataclasses) as plain JSON-able values: tuples become lists."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_params(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {str(k): to_params(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_params(v) for v in config]
    return config


def _choices(annotation: Any) -> tuple | None:
    """The values an annotation allows when it is a ``Literal`` or a union of Literals,
    ``bool`` and ``None`` (``bool | Literal["auto"]`` -> ``(True, False, "auto")``); None
    for any other annotation."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    out: list = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            out += typing.get_args(arg)
        elif arg is bool:
            out += [True, False]
        elif arg is type(None):
            out.append(None)
        else:
            return None
    return tuple(out) if any(isinstance(v, str) for v in out) else None


def check_choices(config: Any, where: str = "") -> None:
    """Refuse a field of the dataclass ``config`` whose value is not one its ``Literal``
    annotation allows, naming it as ``<where><field>`` (call from ``__post_init__``)."""
    for name, annotation in typing.get_type_hints(type(config)).items():
        choices = _choices(annotation)
        value = getattr(config, name, None)
        # compared by type too: 1 == True in Python, but 1 is not a choice of a bool field
        if choices is not None and not any(
            value is c or (type(value) is type(c) and value == c) for c in choices
        ):
            allowed = ", ".join(_yaml(c) for c in choices)
            raise ValueError(f"{where}{name} must be one of {allowed}, got {value!r}")


def _yaml(value: Any) -> str:
    """A choice as it is written in a parameters file (true, null, auto)."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_ema_decay(value: float | None, name: str) -> None:
    """``ema_decay`` of the trainers' weight averages: None (no average) or in (0, 1)."""
    if value is not None and not 0 < value < 1:
        raise ConfigError(
            f"{name}={value}: a decay is in (0, 1). Fix: set it to e.g. 0.99, or null for "
            f"no weight average"
        )
