"""The one environment parser of Candleflow's settings: ``CANDLEFLOW_<FIELD>`` variables into a frozen,
validated dataclass, its nested sections included, and back (:func:`to_env`, for a child process).

A section is a field whose metadata names its class (``field(default_factory=C, metadata={"section": C})``);
the section's class says its variables: ``env_prefix`` (default ``CANDLEFLOW_``) and ``env_names`` (fields
read from another variable). Every section is read from the same mapping as its parent. A section whose class
sets ``env_inherit_defaults = True`` is one a child process may take from the environment it inherits:
``to_env(..., section_defaults=False)`` leaves out its fields that are at their default.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Inner:
...     env_prefix = "CANDLEFLOW_INNER_"
...     size: int = 1
...     def validate(self): pass
>>> @dataclass(frozen=True)
... class Outer:
...     on: bool = False
...     inner: Inner = field(default_factory=Inner, metadata={"section": Inner})
...     def validate(self): pass
>>> from_env(Outer, {"CANDLEFLOW_ON": "yes", "CANDLEFLOW_INNER_SIZE": "3"}, {})
Outer(on=True, inner=Inner(size=3))
>>> to_env(Outer(inner=Inner(size=3)), section_defaults=False)
{'CANDLEFLOW_ON': 'False', 'CANDLEFLOW_INNER_SIZE': '3'}
>>> Inner.env_inherit_defaults = True  # now a child may take Inner from its environment where it is at its default
>>> to_env(Outer(), section_defaults=False), to_env(Outer(inner=Inner(size=3)), section_defaults=False)
({'CANDLEFLOW_ON': 'False'}, {'CANDLEFLOW_ON': 'False', 'CANDLEFLOW_INNER_SIZE': '3'})
>>> from_env(Outer, {"CANDLEFLOW_INNER_SIZE": "big"}, {})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_INNER_SIZE must be an integer, got 'big'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from core.errors import ConfigError

__all__ = ["PREFIX", "Secret", "from_env", "to_env"]

PREFIX = "CANDLEFLOW_"


class Secret(str):
    """A string that never shows itself in reprs or logs."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"


def _env_name(cls: Any, name: str) -> str:
    names: Mapping[str, str] = getattr(cls, "env_names", None) or {}
    return names.get(name) or getattr(cls, "env_prefix", PREFIX) + name.upper()


def from_env(cls: Any, env: Mapping[str, str] | None, overrides: Mapping[str, Any]) -> Any:
    """A frozen settings dataclass from its variables (``cls.env_prefix`` + FIELD, ``CANDLEFLOW_`` by default;
    ``cls.env_names``: fields read from another variable), its sections read from the same ``env``;
    ``overrides`` win (for a section: an instance, or a mapping of the section's own overrides). Validated."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sections = set()
    for f in dataclasses.fields(cls):
        section = f.metadata.get("section")
        if section is not None:
            sections.add(f.name)
            given = overrides.get(f.name)
            values[f.name] = given if dataclasses.is_dataclass(given) else from_env(section, env, given or {})
            continue
        env_name = _env_name(cls, f.name)
        raw = env.get(env_name)
        if raw is not None:
            values[f.name] = _parse(env_name, f.type, raw)
    values.update((name, value) for name, value in overrides.items() if name not in sections)
    settings = cls(**values)
    settings.validate()
    return settings


def to_env(settings: Any, *, section_defaults: bool = True) -> dict[str, str]:
    """The variables :func:`from_env` reads back as ``settings``. ``section_defaults=False`` leaves out the
    fields at their default of its sections that set ``env_inherit_defaults`` (so whatever the environment
    says of them stays)."""
    return dict(_variables(settings, section_defaults, skip_defaults=False))


def _variables(settings: Any, section_defaults: bool, skip_defaults: bool):
    default = type(settings)() if skip_defaults else None
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.metadata.get("section") is not None:
            inherited = getattr(type(value), "env_inherit_defaults", False)
            yield from _variables(value, section_defaults, skip_defaults=inherited and not section_defaults)
        elif default is None or value != getattr(default, f.name):
            yield _env_name(type(settings), f.name), ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _parse(env_name: str, type_: Any, raw: str) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env_name} must be {'an integer' if type_name == 'int' else 'a number'}, got {raw!r}") from None
    if type_name.startswith("tuple"):
        parts = tuple(part.strip() for part in raw.split(",") if part.strip())
        return tuple(map(Path, parts)) if type_name.startswith("tuple[Path") else parts
    if type_name == "bool":
        if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{env_name} must be true or false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if type_name == "Path":
        return Path(raw)
    if type_name == "Secret":
        return Secret(raw)
    return raw
