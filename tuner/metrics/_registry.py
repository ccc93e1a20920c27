"""Metrics collectors by Katib's collector kind: adding one is one module with a
`MetricsCollector` subclass plus one line here."""

from __future__ import annotations

from tuner.metrics._collector import (
    CollectorCheckpoint,
    CollectorConfig,
    MetricsCollector,
    StdOutCollector,
)
from tuner.metrics._file import FileCollector
from tuner.metrics._push import NoneCollector, PushCollector
from tuner.metrics._types import UnknownCollectorError
from tuner.registry import Registry

COLLECTORS: Registry[type[MetricsCollector]] = Registry(
    "collector kind",
    {
        StdOutCollector.kind: StdOutCollector,
        FileCollector.kind: FileCollector,
        PushCollector.kind: PushCollector,
        NoneCollector.kind: NoneCollector,
    },
    unknown=UnknownCollectorError,
)


def register_collector(kind: str, collector: type[MetricsCollector] | str) -> None:
    """Register ``collector`` (a class, or ``"module:Class"``) for Katib's kind ``kind``."""
    COLLECTORS.register(_kind(kind), collector)


def collector_kinds() -> list[str]:
    """The kinds that have a collector, sorted."""
    return COLLECTORS.names()


def collector_class(kind: object) -> type[MetricsCollector]:
    """The collector of ``kind`` (a string or the spec's ``CollectorKind``); raises
    :class:`UnknownCollectorError` listing the supported kinds."""
    return COLLECTORS.get(_kind(kind))


def create_collector(
    kind: object, config: CollectorConfig, checkpoint: CollectorCheckpoint | None = None
) -> MetricsCollector:
    """A collector of kind ``kind`` (a string or the spec's ``CollectorKind``) for one trial."""
    return collector_class(kind)(config, checkpoint)  # type: ignore[call-arg]


def _kind(kind: object) -> str:
    return str(getattr(kind, "value", kind))
