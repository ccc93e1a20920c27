"""Katib's JSON-lines metrics format (File collector, ``fileFormat: JSON``): one object per
line, metrics as keys, an optional ``timestamp`` key."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from tuner.metrics._lines import LineParser
from tuner.metrics._types import MetricPoint
from tuner.metrics._values import parse_number, parse_rfc3339

TIMESTAMP_KEY = "timestamp"
"""Katib's ``TimeStampJsonKey``."""

_log = logging.getLogger("tuner.metrics")


class JsonLineParser(LineParser):
    """Parses JSON lines incrementally (see :class:`LineParser`), e.g.
    ``{"loss": "0.3", "accuracy": 0.9, "timestamp": "2024-01-02T03:04:05Z"}``.

    As Katib does: ``timestamp`` is an RFC 3339 string or seconds since the epoch; blank
    lines are skipped. Katib accepts only string values; numbers are accepted too. Unlike
    Katib, which rejects the whole file, a line that is not a JSON object is skipped and
    counted in :attr:`invalid_lines`, since a stream cannot be rejected after the fact.
    """

    def __init__(self, metric_names: Iterable[str], **options: Any) -> None:
        super().__init__(metric_names, **options)
        self.invalid_lines = 0

    def _parse_line(self, line: bytes) -> list[MetricPoint]:
        if not line.strip():
            return []
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.invalid_lines += 1
            _log.warning("metrics: skipped a line that is not a JSON object: %.200r", line)
            return []
        timestamp = _timestamp(record.get(TIMESTAMP_KEY))
        points = []
        for name in self.metric_names:
            value = _number(record.get(name))
            if value is not None:
                points.append(MetricPoint(name, value, timestamp, self._next_step(name)))
        return points


def _number(value: object) -> float | None:
    if isinstance(value, str):
        return parse_number(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None
