"""Metrics collection: parse what trials report (Katib's ``name=value`` text lines and JSON
lines), follow their output or metrics file as it is written (collectors StdOut and File;
Push and None read nothing: the trial pushes), and reduce reports to a trial's value."""

from __future__ import annotations

from tuner.metrics._cap import CapState, Drop, ObservationCap, Rungs
from tuner.metrics._collector import (
    CollectorCheckpoint,
    CollectorConfig,
    MetricsCollector,
    OutputReader,
    StdOutCollector,
)
from tuner.metrics._file import METRICS_FILE_ENV, FileCollector, trial_metrics_path
from tuner.metrics._follow import DEFAULT_CHUNK_BYTES, LogFollower
from tuner.metrics._jsonlines import TIMESTAMP_KEY, JsonLineParser
from tuner.metrics._lines import MAX_LINE_BYTES, LineParser
from tuner.metrics._push import (
    DBMANAGER_ADDRESS_ENV,
    REPORT_ID_METADATA_KEY,
    STEP_METADATA_KEY,
    STEPS_METADATA_KEY,
    TRIAL_NAME_ENV,
    WITH_STEPS_METADATA_KEY,
    NoneCollector,
    PushCollector,
    format_time,
    format_value,
)
from tuner.metrics._registry import (
    COLLECTORS,
    collector_class,
    collector_kinds,
    create_collector,
    register_collector,
)
from tuner.metrics._stdout import DEFAULT_METRICS_FORMAT, StdOutParser, compile_metrics_formats
from tuner.metrics._summary import STRATEGIES, MetricSummary, objective_value, summarize
from tuner.metrics._types import MetricPoint, MetricsError, UnknownCollectorError
from tuner.metrics._values import parse_number, parse_rfc3339

__all__ = [
    "COLLECTORS",
    "DBMANAGER_ADDRESS_ENV",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_METRICS_FORMAT",
    "MAX_LINE_BYTES",
    "METRICS_FILE_ENV",
    "REPORT_ID_METADATA_KEY",
    "STEP_METADATA_KEY",
    "STEPS_METADATA_KEY",
    "WITH_STEPS_METADATA_KEY",
    "STRATEGIES",
    "TIMESTAMP_KEY",
    "TRIAL_NAME_ENV",
    "CapState",
    "CollectorCheckpoint",
    "Drop",
    "ObservationCap",
    "Rungs",
    "CollectorConfig",
    "FileCollector",
    "JsonLineParser",
    "LineParser",
    "LogFollower",
    "MetricPoint",
    "MetricSummary",
    "MetricsCollector",
    "MetricsError",
    "NoneCollector",
    "OutputReader",
    "PushCollector",
    "StdOutCollector",
    "StdOutParser",
    "UnknownCollectorError",
    "collector_class",
    "collector_kinds",
    "compile_metrics_formats",
    "create_collector",
    "format_time",
    "format_value",
    "objective_value",
    "parse_number",
    "parse_rfc3339",
    "register_collector",
    "summarize",
    "trial_metrics_path",
]
