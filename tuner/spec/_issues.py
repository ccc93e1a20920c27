"""The one error type of ``tuner.spec``: a list of issues, each naming a field path and a rule."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuner.errors import TunerError

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SpecIssue:
    """One broken rule: ``path`` is the Katib (camelCase) field path, e.g.
    ``spec.parameters[1].feasibleSpace.min``; ``message`` names the bad value and the rule."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def under(self, prefix: str) -> SpecIssue:
        """The same issue with its path placed below ``prefix``."""
        return SpecIssue(join_path(prefix, self.path), self.message)


class SpecError(TunerError, ValueError):
    """An Experiment that cannot be loaded (or a trial that cannot be rendered); ``issues``
    lists every problem found, not just the first. ``source`` names the file (or
    ``"<string>"``) when the error comes from loading text."""

    def __init__(
        self,
        issues: Iterable[SpecIssue],
        source: str | None = None,
        what: str = "invalid Experiment",
    ) -> None:
        self.issues: list[SpecIssue] = list(issues)
        self.source = source
        super().__init__(self._describe(what))

    def _describe(self, what: str) -> str:
        where = f"{self.source}: " if self.source else ""
        count = len(self.issues)
        if count == 1:
            return f"{where}{what}: {self.issues[0]}"
        lines = [f"{where}{what} ({count} problems):"]
        lines += [f"  {issue}" for issue in self.issues]
        return "\n".join(lines)


def join_path(prefix: str, path: str) -> str:
    """Join two field paths: ``join_path("spec", "parameters[0]")``, ``join_path("a", "[1]")``."""
    if not prefix:
        return path
    if not path:
        return prefix
    if path.startswith("["):
        return prefix + path
    return f"{prefix}.{path}"


def child(path: str, key: str | int) -> str:
    """The path of one element below ``path``: an index, a field name, or an arbitrary map key
    (quoted in brackets when it holds dots or slashes, e.g. label keys)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return join_path(path, key)
    return f'{path}["{key}"]'


def path_of(parts: Sequence[str | int]) -> str:
    path = ""
    for part in parts:
        path = child(path, part)
    return path


def raise_if_any(issues: list[SpecIssue]) -> None:
    """Raise ``SpecError`` when ``issues`` is not empty (used inside model validators)."""
    if issues:
        raise SpecError(issues)


def short_repr(value: object, limit: int = 80) -> str:
    """``repr`` of a bad value, cut short so one huge value cannot flood an error message.

    The full repr is never built: strings are cut before quoting, containers show their
    first few items (a YAML alias bomb is a small object graph with an astronomic repr)."""
    text = _bounded_repr(value, limit, depth=3)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr(value: object, limit: int, depth: int) -> str:
    if isinstance(value, (str, bytes)):
        return repr(value[: limit + 1])
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        # Python refuses to print ints of more than 4300 digits (sys.int_info).
        if value.bit_length() > 3 * limit + 64:
            digits = int((abs(value).bit_length() - 1) * math.log10(2)) + 1
            return f"<an integer of at least {digits} digits>"
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        if depth <= 0:
            return "{...}" if isinstance(value, dict) else "[...]"
        items = list(value.items())[:8] if isinstance(value, dict) else list(value)[:8]
        parts: list[str] = []
        size = 0
        for item in items:
            if isinstance(value, dict):
                k, v = item
                part = f"{_bounded_repr(k, limit, depth - 1)}: {_bounded_repr(v, limit, depth - 1)}"
            else:
                part = _bounded_repr(item, limit, depth - 1)
            parts.append(part)
            size += len(part) + 2
            if size > limit:
                break
        more = ", ..." if len(parts) < len(value) else ""
        body = ", ".join(parts) + more
        if isinstance(value, dict):
            return "{" + body + "}"
        if isinstance(value, tuple):
            return "(" + body + ("," if len(value) == 1 else "") + ")"
        return "[" + body + "]"
    text = repr(value)
    return text


def listing(names: Iterable[object]) -> str:
    """Names for a message: ``'a', 'b'`` (or ``none``)."""
    return ", ".join(repr(n) for n in names) or "none"


def duplicate_issues(
    values: Iterable[str], field: str, suffix: str = "", first: dict[str, str] | None = None
) -> list[SpecIssue]:
    """An issue for every value of the list ``field`` that repeats an earlier one (or a key of
    ``first``, which maps values to the path that already holds them)."""
    seen = dict(first or {})
    issues = []
    for i, value in enumerate(values):
        if not value:
            continue
        path = join_path(f"{field}[{i}]", suffix)
        if value in seen:
            issues.append(SpecIssue(path, f"{short_repr(value)} repeats {seen[value]}"))
        else:
            seen[value] = path
    return issues
