"""The controller service: one replica's loop that finds unfinished experiments in the store,
leases as many as it may drive, and runs each in its own `ExperimentDriver` thread; a
`WorkerPool` bounds how many of those threads work at once and serves them in turn."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from tuner.controller import own_owner
from tuner.executors import Executor
from tuner.service._driver import DriverOutcome, ExperimentDriver
from tuner.service._leases import LeaseKeeper, take_lease
from tuner.service._metrics import ServiceMetrics, StoreSnapshot
from tuner.service._workers import WorkerPool
from tuner.store import (
    ExperimentNotFoundError,
    ExperimentRecord,
    ExperimentStatus,
    Store,
    StoreError,
    TrialStatus,
)
from tuner.tls import DBManagerTLS

log = logging.getLogger(__name__)

# A driver that failed for a reason outside its experiment (suggestion service down, database
# error) is started again after this many seconds, doubling up to the maximum.
RETRY_INITIAL_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class ServiceSettings:
    """How one replica runs. ``lease_seconds``: lease time to live (a dead replica's
    experiments are taken over that long after its last renewal); ``poll_interval``: the
    longest pause between two looks at the store, and between two passes of each
    experiment's loop; ``max_concurrent_experiments``: experiments driven at once (more wait,
    unleased, for a replica with room); ``workers``: loop passes run at once, shared fairly
    by the driven experiments (the others wait in a first-come, first-served queue)."""

    suggestion_address: str
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    max_concurrent_experiments: int = 100
    workers: int = 8
    suggestion_credentials: Any = None
    """``grpc.ChannelCredentials`` for TLS to the suggestion service (None: plaintext)."""
    dbmanager_tls: DBManagerTLS | None = None
    """TLS of the DBManager each driven experiment serves its trials (None: plaintext)."""
    db_manager_address: str | None = None
    """A DBManager for this store that trials reach wherever they run (``tuner controller
    --dbmanager-address``): every driven experiment's trials and early stopping are given
    it, instead of a DBManager per experiment on 127.0.0.1."""
    suggestion_multi_experiment: bool = True
    """Whether the suggestion service serves many experiments (tuner's does). False (a Katib
    suggestion image, which keeps the state of the first experiment it is asked about for
    the life of its process): only the first experiment this replica drives is ever sent
    to it; every other is refused, with an error in the log naming both."""

    def __post_init__(self) -> None:
        for field, value in (
            ("lease_seconds", self.lease_seconds),
            ("poll_interval", self.poll_interval),
        ):
            if not value > 0:
                raise ValueError(f"{field}: {value} is not a positive number of seconds")
        for field, count in (
            ("max_concurrent_experiments", self.max_concurrent_experiments),
            ("workers", self.workers),
        ):
            if count < 1:
                raise ValueError(f"{field}: {count} is less than 1")

    @property
    def health_window(self) -> float:
        """Seconds without a successful store read after which the replica is unhealthy:
        by then its leases may have expired."""
        return max(self.lease_seconds, 3 * self.poll_interval)


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


class ControllerService:
    """Drives every unfinished experiment of a store that this replica can lease.

    `run` blocks (call it from the main thread) until `stop` is called: each pass lists the
    experiments, publishes the counts to `metrics`, reaps finished drivers and starts a
    driver for each unfinished experiment it can lease, oldest first, up to
    ``max_concurrent_experiments``; the drivers take turns on ``workers`` workers, one loop
    pass per turn. Leases are renewed by one `LeaseKeeper`, whose thread takes no turn, so
    trial work never delays a renewal. On `stop`,
    every driver leaves its loop without touching its trials and releases its lease, and
    `run` returns once all have. `stop` and `health` are thread-safe.
    """

    def __init__(
        self,
        store: Store,
        executor: Executor,
        settings: ServiceSettings,
        *,
        metrics: ServiceMetrics | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.owner = owner or own_owner()
        self.keeper = LeaseKeeper(store, self.owner, settings.lease_seconds)
        self.metrics = metrics or ServiceMetrics()
        self.metrics.count_leases_with(lambda: len(self.keeper.held()))
        self.pool = WorkerPool(settings.workers)
        self.metrics.observe_workers(self.pool.stats)
        self._lock = threading.Lock()  # guards _drivers, read by the HTTP thread
        self._drivers: dict[str, ExperimentDriver] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (count, retry at)
        # Experiments leased by a live peer: not asked again before this (monotonic) time,
        # so that N replicas do not each write to every held row on every pass.
        self._held_elsewhere: dict[str, float] = {}
        self._trial_counts: dict[tuple[str, object], dict[TrialStatus, int]] = {}
        self._stopping = threading.Event()
        self._last_read: float | None = None  # monotonic time of the last good store read
        # Single-experiment suggestion service: the experiment it serves, and the others
        # refused so far (each said once).
        self._suggestion_owner: str | None = None
        self._refused: set[str] = set()

    # -- control -----------------------------------------------------------------------

    def run(self) -> None:
        self.keeper.start()
        try:
            while not self._stopping.is_set():
                self.run_once()
                self._stopping.wait(self.settings.poll_interval)
        finally:
            self._shutdown()

    def stop(self) -> None:
        self._stopping.set()

    def health(self) -> Health:
        if self._last_read is None:
            return Health(False, "the database has not been read yet")
        age = time.monotonic() - self._last_read
        if age > self.settings.health_window:
            return Health(False, f"the database was last read {age:.1f}s ago")
        return Health(True, f"ok: database read {age:.1f}s ago, {len(self.driving())} driven")

    def driving(self) -> list[str]:
        """The experiments this replica drives now."""
        with self._lock:
            return sorted(self._drivers)

    # -- one pass ----------------------------------------------------------------------

    def run_once(self) -> None:
        """List the experiments, publish counts, reap drivers, start new ones."""
        try:
            records = self.store.list_experiments()
            snapshot = self._snapshot(records)
        except StoreError as e:
            log.warning("cannot read the experiments: %s", e)
            return
        self._last_read = time.monotonic()
        self.metrics.observe_store(snapshot)
        self._reap()
        active = {r.name for r in records if r.status.is_active()}
        self._failures = {n: f for n, f in self._failures.items() if n in active}
        self._held_elsewhere = {n: t for n, t in self._held_elsewhere.items() if n in active}
        now = time.monotonic()
        leased: list[ExperimentDriver] = []
        for record in records:
            if self._stopping.is_set():
                break
            if len(self._drivers) + len(leased) >= self.settings.max_concurrent_experiments:
                break
            if not record.status.is_active() or record.name in self._drivers:
                continue
            failure = self._failures.get(record.name)
            if failure is not None and now < failure[1]:
                continue
            if now < self._held_elsewhere.get(record.name, 0.0):
                continue
            if not self._suggestions_serve(record.name):
                continue
            driver = self._try_lease(record)
            if driver is not None:
                leased.append(driver)
        # Queued in listing order (oldest first) before any starts, so that each first
        # pass comes before any driver's second.
        for driver in leased:
            self.pool.register(driver.name, driver.namespace)
            with self._lock:
                self._drivers[driver.name] = driver
        for driver in leased:
            driver.start()

    def _suggestions_serve(self, name: str) -> bool:
        """Whether experiment ``name`` may be sent to the suggestion service (say why not,
        once)."""
        owner = self._suggestion_owner
        if self.settings.suggestion_multi_experiment or owner in (None, name):
            return True
        if name not in self._refused:
            self._refused.add(name)
            log.error(
                "experiment %s: not driven: the suggestion service at %s already serves"
                " experiment %s, and it is a single-experiment service (a Katib suggestion"
                " image keeps the first experiment's state for the life of its process, so a"
                " second experiment would get wrong suggestions); run one suggestion service"
                " and one 'tuner controller' per experiment, or pass"
                " --suggestion-multi-experiment if the service serves many (tuner"
                " suggestion-server does)",
                name,
                self.settings.suggestion_address,
                owner,
            )
        return False

    def _try_lease(self, record: ExperimentRecord) -> ExperimentDriver | None:
        """Take the experiment's lease; a driver for it (not started), or None."""
        name = record.name
        try:
            if not take_lease(self.store, name, self.owner, self.settings.lease_seconds):
                # Its holder renews every third of the lease: asking more often is useless.
                wait = self.settings.lease_seconds / 3
                self._held_elsewhere[name] = time.monotonic() + wait
                return None
        except ExperimentNotFoundError:
            return None
        except StoreError as e:
            log.warning("experiment %s: cannot take its lease: %s", name, e)
            return None
        driver = ExperimentDriver(
            name,
            namespace=record.namespace,
            store=self.store,
            executor=self.executor,
            keeper=self.keeper,
            metrics=self.metrics,
            pool=self.pool,
            suggestion_address=self.settings.suggestion_address,
            poll_interval=self.settings.poll_interval,
            suggestion_credentials=self.settings.suggestion_credentials,
            dbmanager_tls=self.settings.dbmanager_tls,
            db_manager_address=self.settings.db_manager_address,
        )
        self._held_elsewhere.pop(name, None)
        if not self.settings.suggestion_multi_experiment:
            self._suggestion_owner = name
        return driver

    def _reap(self) -> None:
        for name, driver in list(self._drivers.items()):
            if driver.is_alive():
                continue
            with self._lock:
                del self._drivers[name]
            if driver.outcome is DriverOutcome.FAILED:
                count = self._failures.get(name, (0, 0.0))[0] + 1
                delay = min(RETRY_MAX_SECONDS, RETRY_INITIAL_SECONDS * 2 ** (count - 1))
                self._failures[name] = (count, time.monotonic() + delay)
                log.info("experiment %s: retrying in %.0fs", name, delay)
            else:
                self._failures.pop(name, None)

    def _snapshot(self, records: list[ExperimentRecord]) -> StoreSnapshot:
        experiments = dict.fromkeys(ExperimentStatus, 0)
        trials = dict.fromkeys(TrialStatus, 0)
        cache: dict[tuple[str, object], dict[TrialStatus, int]] = {}
        # A finished experiment's trials have all ended: count them once per version of the
        # row (a restart changes it), not on every pass; the others all in one query.
        keys = {record.name: (record.name, record.updated_at) for record in records}
        uncounted = [
            record.name
            for record in records
            if not (record.status.is_finished() and keys[record.name] in self._trial_counts)
        ]
        fresh = self.store.count_trials_by_experiment(uncounted)
        for record in records:
            experiments[record.status] += 1
            key = keys[record.name]
            counts = fresh.get(record.name) or self._trial_counts.get(key)
            if counts is None:  # deleted since the listing
                continue
            if record.status.is_finished():
                cache[key] = counts
            for status, count in counts.items():
                trials[status] += count
        self._trial_counts = cache
        return StoreSnapshot(experiments, trials, time.time())

    def _shutdown(self) -> None:
        with self._lock:
            drivers = [d for d in self._drivers.values() if d.is_alive()]
        for driver in drivers:
            driver.stop("the controller is shutting down")
        if drivers:
            log.info("waiting for %d experiment(s) to stop", len(drivers))
        for driver in drivers:
            driver.join()
        with self._lock:
            self._drivers.clear()
        self.keeper.stop()
