"""Metrics collection: parse what trials report (Katib's ``name=value`` text lines and JSON
lines), follow their output as it is written, and reduce reports to a trial's value."""

from __future__ import annotations

from tuner.metrics._collector import (
    CollectorCheckpoint,
    CollectorConfig,
    MetricsCollector,
    StdOutCollector,
    collector_kinds,
    create_collector,
    register_collector,
)
from tuner.metrics._follow import DEFAULT_CHUNK_BYTES, LogFollower
from tuner.metrics._jsonlines import TIMESTAMP_KEY, JsonLineParser
from tuner.metrics._lines import MAX_LINE_BYTES, LineParser
from tuner.metrics._stdout import DEFAULT_METRICS_FORMAT, StdOutParser, compile_metrics_formats
from tuner.metrics._summary import STRATEGIES, MetricSummary, objective_value, summarize
from tuner.metrics._types import MetricPoint, MetricsError
from tuner.metrics._values import parse_number, parse_rfc3339

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_METRICS_FORMAT",
    "MAX_LINE_BYTES",
    "STRATEGIES",
    "TIMESTAMP_KEY",
    "CollectorCheckpoint",
    "CollectorConfig",
    "JsonLineParser",
    "LineParser",
    "LogFollower",
    "MetricPoint",
    "MetricSummary",
    "MetricsCollector",
    "MetricsError",
    "StdOutCollector",
    "StdOutParser",
    "collector_kinds",
    "compile_metrics_formats",
    "create_collector",
    "objective_value",
    "parse_number",
    "parse_rfc3339",
    "register_collector",
    "summarize",
]
