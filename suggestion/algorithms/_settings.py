"""Declarative algorithm settings: Katib's names, a parser per setting, defaults.

Settings travel as strings; each algorithm declares its `SettingSpec`s once and
`parse_settings` turns the raw pairs into typed values, refusing unknown names, repeats and
bad values with an error that names the setting, the value and the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.errors import TunerError


class RuleViolationError(TunerError, ValueError):
    """Raised by a value parser; the message is the rule, e.g. ``is not an integer >= 0``."""


@dataclass(frozen=True)
class SettingSpec:
    name: str
    parse: Callable[[str], Any]
    default: Any = None


def parse_settings(
    algorithm: str,
    specs: Sequence[SettingSpec],
    raw: Sequence[tuple[str, str]],
    error: Callable[[str, str, str], Exception],
) -> dict[str, Any]:
    by_name = {spec.name: spec for spec in specs}
    parsed: dict[str, Any] = {spec.name: spec.default for spec in specs}
    seen: set[str] = set()
    for name, value in raw:
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise error(name, value, f"is not a setting of {algorithm} (its settings: {known})")
        if name in seen:
            raise error(name, value, "is given twice; set each setting once")
        seen.add(name)
        try:
            parsed[name] = spec.parse(value)
        except RuleViolationError as e:
            raise error(name, value, str(e)) from e
    return parsed


def integer(minimum: int | None = None) -> Callable[[str], int]:
    rule = "is not an integer" + (f" >= {minimum}" if minimum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError as e:
            raise RuleViolationError(rule) from e
        if minimum is not None and value < minimum:
            raise RuleViolationError(rule)
        return value

    return parse


def positive_float(text: str) -> float:
    rule = "is not a number > 0"
    try:
        value = float(text.strip())
    except ValueError as e:
        raise RuleViolationError(rule) from e
    if not value > 0 or value == float("inf"):
        raise RuleViolationError(rule)
    return value


def choice(*allowed: str, aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    rule = "is not one of " + ", ".join(allowed)

    def parse(text: str) -> str:
        value = (aliases or {}).get(text, text)
        if value not in allowed:
            raise RuleViolationError(rule)
        return value

    return parse


RANDOM_STATE = SettingSpec("random_state", integer(minimum=0), None)
"""Katib's seed setting, shared by every algorithm; unset means a fresh seed per session."""
