"""Prometheus metrics of a controller replica: the database's experiments and trials by
state, suggestion call latency, the leases this replica holds, and its workers: the queue
of experiments waiting for one and each driven experiment's lag."""

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

from tuner.service._workers import PoolStats
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
    this replica's own, and so are the worker gauges (``tuner_workers*``,
    ``tuner_queue_depth``, ``tuner_experiments_running``) and the per-experiment
    ``tuner_experiment_lag_seconds`` and ``tuner_experiment_queue_wait_seconds``, labelled
    ``namespace`` and ``name`` (one series per experiment this replica drives). Thread-safe.
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
        self._workers = _WorkersCollector()
        self.registry.register(self._workers)

    def observe_workers(self, stats: Callable[[], PoolStats]) -> None:
        """Read the worker gauges from ``stats`` at each scrape (it must not block long)."""
        self._workers.stats = stats

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


class _WorkersCollector(Collector):
    """Yields the worker pool's state at scrape time (memory only, no store query)."""

    def __init__(self) -> None:
        self.stats: Callable[[], PoolStats] | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        stats = self.stats()
        yield GaugeMetricFamily(
            "tuner_workers", "Loop passes this replica runs at once (--workers).", stats.workers
        )
        yield GaugeMetricFamily(
            "tuner_workers_busy", "Workers running an experiment's loop pass now.", stats.busy
        )
        yield GaugeMetricFamily(
            "tuner_queue_depth",
            "Experiments driven by this replica waiting for a worker now.",
            stats.queued,
        )
        yield GaugeMetricFamily(
            "tuner_experiments_running",
            "Experiments this replica drives (working, idle between passes, or queued).",
            len(stats.experiments),
        )
        lag = GaugeMetricFamily(
            "tuner_experiment_lag_seconds",
            "Seconds since the experiment's last loop pass ended on this replica (since it "
            "was picked up, before the first): about the poll interval when served in time.",
            labels=["namespace", "name"],
        )
        wait = GaugeMetricFamily(
            "tuner_experiment_queue_wait_seconds",
            "Seconds the experiment has been waiting for a worker (0 when not queued).",
            labels=["namespace", "name"],
        )
        for experiment in stats.experiments:
            lag.add_metric([experiment.namespace, experiment.name], experiment.lag)
            wait.add_metric([experiment.namespace, experiment.name], experiment.queued)
        yield lag
        yield wait
