"""Number syntax shared by the search space: strict literals in, exact wire strings out.

Katib carries every number as a string. We accept plain decimal literals only (what Go's
``strconv`` and Python's ``float`` both read the same way) and refuse ``nan``/``inf``,
hexadecimal and underscore forms, so a value means the same thing on both sides of the wire.
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction

from tuner.errors import TunerError

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


class NumberSyntaxError(TunerError, ValueError):
    """A string that is not a number literal; the message completes ``'<text>' ...``."""


def is_real(value: object) -> bool:
    """A real number that is not a bool (numpy scalars count: they register as Real)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integral(value: object) -> bool:
    """An integer type (int or numpy integer), not a bool and not an integral float."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    return is_real(value) and math.isfinite(float(value))  # type: ignore[arg-type]


def parse_int(text: str) -> int:
    stripped = text.strip()
    if _INT_RE.fullmatch(stripped):
        return int(stripped)
    if _FLOAT_RE.fullmatch(stripped) or stripped.lower() in _NON_FINITE:
        raise NumberSyntaxError("is not an integer")
    raise NumberSyntaxError("is not a number")


def parse_float(text: str) -> float:
    stripped = text.strip()
    if stripped.lower() in _NON_FINITE:
        raise NumberSyntaxError("is not a finite number")
    if not _FLOAT_RE.fullmatch(stripped):
        raise NumberSyntaxError("is not a number")
    value = float(stripped)
    if not math.isfinite(value):
        raise NumberSyntaxError("overflows a double")
    return value


def parse_number(text: str) -> int | float:
    """An int for integer syntax ("3"), else a float ("3.0", "1e-3")."""
    stripped = text.strip()
    if _INT_RE.fullmatch(stripped):
        return int(stripped)
    return parse_float(stripped)


def lenient_number(raw: object, *, keep_int: bool) -> object:
    """Parse a wire string into a number when possible, else return it unchanged.

    Used while building a definition: whatever cannot be parsed is kept so that
    ``Parameter.problems()`` can report it with the offending text.
    """
    if not isinstance(raw, str):
        return raw
    stripped = raw.strip()
    if _INT_RE.fullmatch(stripped):
        try:
            return int(stripped) if keep_int else float(stripped)
        except ValueError:  # more digits than Python converts: problems() reports it
            return raw
    if _FLOAT_RE.fullmatch(stripped) or stripped.lower() in _NON_FINITE:
        return float(stripped)  # may be nan or inf: problems() reports those
    return raw


def format_int(value: int) -> str:
    return str(int(value))


def format_float(value: float) -> str:
    # repr is the shortest string that reads back to the same double.
    return repr(float(value))


def format_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else format_float(value)


def show(value: object) -> str:
    """A value as it appears in an error message: numbers bare, everything else quoted;
    cut to about 80 characters, so that one huge value cannot flood a message."""
    if is_integral(value):
        if int(value).bit_length() > 256:  # type: ignore[call-overload]
            return f"<an integer of at least {_digits(value)} digits>"
        return format_int(value)  # type: ignore[arg-type]
    if is_real(value):
        return format_float(value)  # type: ignore[arg-type]
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + f"... ({len(value)} characters)"
    text = repr(value) if not isinstance(value, (list, dict, tuple)) else _cut_repr(value)
    return text if len(text) <= _SHOWN_CHARS + 20 else text[:_SHOWN_CHARS] + "..."


_SHOWN_CHARS = 80


def _digits(value: object) -> int:
    # The fewest digits of an int of its bit length: str() of one beyond 4300 digits raises.
    bits = abs(int(value)).bit_length()  # type: ignore[call-overload]
    return int((bits - 1) * math.log10(2)) + 1


def _cut_repr(value: list[object] | dict[object, object] | tuple[object, ...]) -> str:
    """The first few items only: a container may be huge (or a YAML alias bomb)."""
    if isinstance(value, dict):
        parts = [f"{show(k)}: {show(v)}" for k, v in list(value.items())[:5]]
        opening, closing = "{", "}"
    else:
        parts = [show(item) for item in list(value[:5])]
        opening, closing = "[", "]"
    more = ", ..." if len(value) > 5 else ""
    return opening + ", ".join(parts) + more + closing


def exact(value: int | float) -> Fraction:
    """The decimal the user wrote: ``0.1`` is 1/10, not the nearest binary double."""
    if is_integral(value):
        return Fraction(int(value))
    return Fraction(repr(float(value)))
