"""Katib's ``successCondition`` / ``failureCondition``: a subset of GJSON paths evaluated on a
Job as Katib does (``pkg/controller.v1beta1/trial/util/job_util.go``).

A condition holds when its result is an object or a non-empty array; the first such object
gives the reason and message. Supported: dotted keys and array indices, ``#(field OP value)``
(first match) and ``#(field OP value)#`` (all matches), ``|`` pipes, with OP one of ``==``,
``!=``, ``<``, ``<=``, ``>``, ``>=`` and a JSON string, number, ``true``, ``false`` or
``null`` as value, and ``[@this]`` (the value wrapped in an array, as Katib's Argo example
uses it). That covers Katib's defaults and the conditions of its examples; anything else
(wildcards, other modifiers and multipaths) is refused when parsed.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.executors._base import LaunchError

SUPPORTED_FORMS = (
    "dotted keys and indices (status.conditions.0), #(field==value) for the first match,"
    ' #(field==value)# for all matches, [@this] (the value as an array), "|" pipes;'
    " operators == != < <= > >=; values in JSON"
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_QUERY = re.compile(r"\s*(?P<field>[A-Za-z0-9_.-]+)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)\s*")
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MISSING = object()


class UnsupportedConditionError(LaunchError):
    """A success or failure condition outside the supported GJSON subset."""


@dataclass(frozen=True)
class _Key:
    name: str


@dataclass(frozen=True)
class _Wrap:
    """GJSON's ``[@this]``: the value as a one-element array (Katib's Argo conditions,
    ``status.[@this].#(phase=="Succeeded")#``, filter the status object this way)."""


@dataclass(frozen=True)
class _Query:
    field: tuple[str, ...]
    op: str
    value: Any
    all: bool


_Step = _Key | _Query | _Wrap
_THIS = "[@this]"


@dataclass(frozen=True)
class Condition:
    """A parsed condition; :meth:`match` evaluates it on an API object (a JSON dict)."""

    text: str
    pipes: tuple[tuple[_Step, ...], ...]

    @classmethod
    def parse(cls, text: str, field: str = "condition") -> Condition:
        """Parse ``text``; ``field`` is the path that errors name."""
        try:
            return cls(text, tuple(_parse_path(part) for part in _split_pipes(text)))
        except ValueError as e:
            raise UnsupportedConditionError(
                f"{field}: {text!r} is not supported: {e}; supported: {SUPPORTED_FORMS}"
            ) from e

    def match(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """None if the condition does not hold; otherwise the first matched object (its
        ``reason`` and ``message`` describe the outcome), ``{}`` if it was not an object."""
        value: Any = obj
        for steps in self.pipes:
            for step in steps:
                value = _apply(step, value)
                if value is _MISSING:
                    return None
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, list) and value:
            return dict(value[0]) if isinstance(value[0], Mapping) else {}
        return None

    def __str__(self) -> str:
        return self.text


def _split_pipes(text: str) -> list[str]:
    """Split at ``|`` outside of parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' at offset {i}")
        elif char == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted or depth:
        raise ValueError("unterminated quote or parenthesis")
    parts.append(text[start:])
    if any(not p for p in parts):
        raise ValueError("empty path around '|'")
    return parts


def _parse_path(text: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    i = 0
    while i < len(text):
        if steps and isinstance(steps[-1], _Query) and steps[-1].all:
            raise ValueError(
                "a path after '#(...)#' maps over the matches; use '|' to continue with them"
            )
        if text.startswith(_THIS, i):
            steps.append(_Wrap())
            i += len(_THIS)
        elif text.startswith("#(", i):
            end = _closing_paren(text, i + 1)
            query_all = text.startswith("#", end + 1)
            steps.append(_parse_query(text[i + 2 : end], query_all))
            i = end + (2 if query_all else 1)
        else:
            match = _KEY.match(text, i)
            if match is None:
                raise ValueError(f"unexpected {text[i:]!r} (wildcards and modifiers are refused)")
            steps.append(_Key(match.group()))
            i = match.end()
        if i < len(text):
            if text[i] != ".":
                raise ValueError(f"expected '.' or '|' before {text[i:]!r}")
            i += 1
            if i == len(text):
                raise ValueError("the path ends with '.'")
    return tuple(steps)


def _closing_paren(text: str, open_at: int) -> int:
    depth, quoted, i = 0, False, open_at
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"'#(' at offset {open_at - 1} is never closed")


def _parse_query(text: str, query_all: bool) -> _Query:
    match = _QUERY.fullmatch(text)
    if match is None:
        raise ValueError(f"query {text!r} is not 'field OP value'")
    raw = match.group("value")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"query value {raw!r} is not a JSON string, number, bool or null") from e
    if isinstance(value, (list, dict)):
        raise ValueError(f"query value {raw!r} is not a JSON string, number, bool or null")
    field = tuple(match.group("field").split("."))
    if any(not part for part in field):
        raise ValueError(f"query field {match.group('field')!r} has an empty key")
    return _Query(field, match.group("op"), value, query_all)


def _apply(step: _Step, value: Any) -> Any:
    if isinstance(step, _Wrap):
        return [value]
    if isinstance(step, _Key):
        if isinstance(value, Mapping):
            return value.get(step.name, _MISSING)
        if isinstance(value, list) and step.name.isdigit():
            index = int(step.name)
            return value[index] if index < len(value) else _MISSING
        return _MISSING
    if not isinstance(value, list):
        return _MISSING
    found = [item for item in value if _query_matches(step, item)]
    if step.all:
        return found
    return found[0] if found else _MISSING


def _query_matches(query: _Query, item: Any) -> bool:
    for key in query.field:
        if not isinstance(item, Mapping) or key not in item:
            return False  # as GJSON: a missing field matches no operator, "!=" included
        item = item[key]
    expected = query.value
    if not _same_kind(item, expected):
        return query.op == "!="
    if expected is None or isinstance(expected, bool):
        return query.op in ("==", "!=") and _OPERATORS[query.op](item, expected)
    return bool(_OPERATORS[query.op](item, expected))


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return type(a) is type(b)


def parse_conditions(
    success: str, failure: str, field_prefix: str = "spec.trialTemplate"
) -> tuple[Condition, Condition]:
    """Both conditions of a trial template, parsed (errors name the field)."""
    return (
        Condition.parse(success, f"{field_prefix}.successCondition"),
        Condition.parse(failure, f"{field_prefix}.failureCondition"),
    )


def first_match(conditions: Sequence[Condition], obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for condition in conditions:
        found = condition.match(obj)
        if found is not None:
            return found
    return None
