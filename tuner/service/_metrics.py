"""Prometheus metrics of a controller replica: the database's experiments and trials by
state, suggestion call latency, and the leases this replica holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tuner.store import ExperimentStatus, TrialStatus

# Calls range from a cached random draw (milliseconds) to a Gaussian-process fit over many
# trials (tens of seconds), up to the client's 120 s deadline.
SUGGESTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class StoreSnapshot:
    """Counts read from the database by one pass of the service loop."""

    experiments: Mapping[ExperimentStatus, int]
    trials: Mapping[TrialStatus, int]
    at: float  # Unix time of the read


class ServiceMetrics:
    """The metrics of one replica, in a registry of their own (never the global one).

    ``tuner_experiments{status}`` and ``tuner_trials{status}`` count the whole database, so
    every replica reports the same numbers (aggregate with ``max``, not ``sum``); every
    status is present, also at 0. ``tuner_leases_held`` and the suggestion histogram are
    this replica's own. Thread-safe.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._suggestion_seconds = Histogram(
            "tuner_suggestion_request_duration_seconds",
            "Duration of calls to the suggestion service, retries included.",
            ["method"],
            buckets=SUGGESTION_BUCKETS,
            registry=self.registry,
        )
        self._leases = Gauge(
            "tuner_leases_held",
            "Experiment leases held by this controller replica.",
            registry=self.registry,
        )
        self._store = _StoreCollector()
        self.registry.register(self._store)

    def count_leases_with(self, leases_held: Callable[[], float]) -> None:
        """Read ``tuner_leases_held`` from ``leases_held`` at each scrape."""
        self._leases.set_function(leases_held)

    def observe_store(self, snapshot: StoreSnapshot) -> None:
        self._store.snapshot = snapshot

    def time_suggestion(self, method: str) -> AbstractContextManager[object]:
        """A context manager that records one call of ``method`` (exceptions included)."""
        return self._suggestion_seconds.labels(method=method).time()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StoreCollector(Collector):
    """Yields the latest `StoreSnapshot` at scrape time: a scrape never queries the store."""

    def __init__(self) -> None:
        self.snapshot: StoreSnapshot | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if snapshot is None:  # nothing read yet: absent rather than a misleading 0
            return
        experiments = GaugeMetricFamily(
            "tuner_experiments", "Experiments in the database by status.", labels=["status"]
        )
        for status in ExperimentStatus:
            experiments.add_metric([status.value], snapshot.experiments.get(status, 0))
        yield experiments
        trials = GaugeMetricFamily(
            "tuner_trials", "Trials in the database by status.", labels=["status"]
        )
        for trial_status in TrialStatus:
            trials.add_metric([trial_status.value], snapshot.trials.get(trial_status, 0))
        yield trials
        yield GaugeMetricFamily(
            "tuner_store_last_read_timestamp_seconds",
            "Unix time of this replica's last successful read of the database.",
            value=snapshot.at,
        )
