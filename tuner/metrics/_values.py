"""Parsing of the two value kinds a metrics line carries: numbers and RFC 3339 timestamps."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

# Plain decimal numbers only: Python's float() would also take "nan", "inf", "1_000".
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Go's time.RFC3339Nano, which Katib uses: fraction optional, zone Z or ±hh:mm.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)


def parse_number(text: str) -> float | None:
    """``text`` as a finite float, or None if it is not a plain decimal number."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_rfc3339(text: str) -> datetime | None:
    """``text`` as a timezone-aware datetime if it is an RFC 3339 timestamp, else None.

    Fractions beyond microseconds are truncated (Python's datetime resolution).
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = timezone.utc
    if m.group(8):
        offset = timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
        zone = timezone(offset if m.group(8) == "+" else -offset)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:  # e.g. month 13, or a zone offset out of range
        return None
