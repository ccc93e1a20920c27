"""Value types of metrics collection: one parsed report of a metric, and the package's error."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from tuner.errors import TunerError


class MetricsError(TunerError, ValueError):
    """A metrics collector was configured wrongly (a bad filter, an unknown kind...)."""


class UnknownCollectorError(MetricsError, LookupError):
    """No collector is registered for the requested kind."""

    def __init__(self, kind: str, known: Sequence[str]) -> None:
        self.kind = kind
        self.known = tuple(known)
        super().__init__(
            f"metricsCollectorSpec.collector.kind: {kind!r} is not supported by tuner; use one"
            f" of {', '.join(known)}"
        )


class MetricPoint(NamedTuple):
    """One report of one metric by a trial (a named tuple: parsers make millions of them,
    and a tuple is several times cheaper to create than a frozen dataclass).

    ``timestamp`` is the time the trial wrote on the line (timezone-aware), None when the
    line had none: the caller then uses the time it read the line. ``step`` is the index of
    this report among the trial's reports of the same metric (0, 1, 2...), since Katib's
    formats carry no step of their own.
    """

    name: str
    value: float
    timestamp: datetime | None = None
    step: int | None = None
