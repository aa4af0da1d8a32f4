"""Build frozen config dataclasses from plain dicts (parameters YAML, checkpoint JSON)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], values: Mapping[str, Any] | None, where: str = "parameters") -> T:
    """``cls(**values)`` with unknown keys reported (naming ``where`` and the known
    fields) and YAML/JSON lists turned into tuples (frozen configs stay hashable)."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} parameters {unknown}; known: {sorted(names)}")
    for f in dataclasses.fields(cls):
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def check_resume(value: Any, name: str) -> None:
    """``resume`` options of the trainers: true, false or "auto"."""
    if value not in (True, False, "auto"):
        raise ValueError(f"{name} must be true, false or auto, got {value!r}")
