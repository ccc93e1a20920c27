"""One experiment driven by a service replica: a thread running the experiment's `Controller`
from its stored spec while this replica holds its lease, and stopping without touching its
trials when asked to (shutdown, lease lost, spec changed)."""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from tuner.controller import (
    REASON_FAILED,
    Controller,
    ControllerError,
    ExperimentRefusedError,
    SuggestionClient,
)
from tuner.executors import Executor, ExecutorError
from tuner.service._leases import LeaseKeeper
from tuner.service._metrics import ServiceMetrics
from tuner.service._workers import WorkerPool
from tuner.spec import SpecError
from tuner.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    LeaseLostError,
    Store,
    StoreError,
)
from tuner.tls import DBManagerTLS

log = logging.getLogger(__name__)


class StoppedError(Exception):  # control flow, not a tuner error
    """Raised inside the controller's loop to leave it at once, trials untouched."""


class DriverOutcome(str, enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"  # the experiment reached its end (or already had)
    STOPPED = "stopped"  # asked to stop; the experiment is resumable by anyone
    FAILED = "failed"  # an error outside the experiment; retried after a backoff


class _StopAndTime(grpc.UnaryUnaryClientInterceptor):
    """A client interceptor on the Suggestion service's calls (ValidateAlgorithmSettings,
    GetSuggestions): it times each and checks for a stop before it (and after GetSuggestions).

    The controller has no stop hook of its own. It asks for suggestions right before it
    stores and launches new trials, so checking here (and after the reply: the call may have
    outlasted our lease) keeps a stopped driver from creating or launching anything.
    `StoppedError` raised here reaches the controller's loop unchanged (not an RPC error).
    Early-stopping calls pass through untouched.
    """

    def __init__(self, metrics: ServiceMetrics, driver: ExperimentDriver) -> None:
        self._metrics = metrics
        self._driver = driver

    def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        service, _, name = method.rpartition("/")
        if not service.endswith(".Suggestion"):
            return continuation(client_call_details, request)
        self._driver.checkpoint()
        # A failed call comes back as an outcome (raised later by the client), so it is
        # timed here too.
        with self._metrics.time_suggestion(name):
            outcome = continuation(client_call_details, request)
        if name == "GetSuggestions":
            self._driver.checkpoint()
        return outcome


class ExperimentDriver:
    """Runs one experiment's `Controller` in a thread while this replica holds its lease.

    The thread works only while it holds one of the replica's workers (``pool``, where the
    service registered it): from its start through the controller's first pass, then for
    each later pass; between two passes it gives the worker back and queues again. So many
    drivers share a few workers fairly, and the database sees at most that many at work.

    The caller has taken the lease (`take_lease`). The driver registers it with the
    `LeaseKeeper`, rebuilds the Experiment from the stored spec, and runs the controller,
    which resumes exactly as after a crash: running trials are adopted, Created rows
    launched, lost trials failed and replaced. On any exit it unregisters the lease and
    releases it, so a peer can take over at once.

    `stop` makes the controller leave its loop at the next checkpoint (once per pass, and
    around every suggestion call) without killing, recording or launching anything: the
    trials keep running and whoever drives the experiment next adopts them.
    """

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "default",
        store: Store,
        executor: Executor,
        keeper: LeaseKeeper,
        metrics: ServiceMetrics,
        pool: WorkerPool,
        suggestion_address: str,
        poll_interval: float,
        suggestion_credentials: Any = None,
        dbmanager_tls: DBManagerTLS | None = None,
        db_manager_address: str | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.dbmanager_tls = dbmanager_tls
        self.db_manager_address = db_manager_address
        self.suggestion_credentials = suggestion_credentials
        self.store = store
        self.executor = executor
        self.keeper = keeper
        self.metrics = metrics
        self.pool = pool
        self.suggestion_address = suggestion_address
        self.poll_interval = poll_interval
        self.outcome = DriverOutcome.RUNNING
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"drive-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, reason: str) -> None:
        """Ask the driver to stop at its next checkpoint; returns at once. Thread-safe."""
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
            self.pool.wake()  # if it waits for a worker, it leaves the queue

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def checkpoint(self) -> None:
        """Raise `StoppedError` if a stop was asked for."""
        if self._stop.is_set():
            raise StoppedError(self.stop_reason or "stopped")

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._take_worker()
            self.outcome = self._drive()
        except StoppedError as e:
            log.info("experiment %s: stopped driving it: %s", self.name, e)
            self.outcome = DriverOutcome.STOPPED
        except ExperimentNotFoundError:
            log.info("experiment %s: stopped driving it: it was deleted", self.name)
            self.outcome = DriverOutcome.STOPPED
        except (ControllerError, ExecutorError, StoreError) as e:
            lost = isinstance(e, LeaseLostError)
            if lost or (isinstance(e, ControllerError) and self._lease_lost()):
                # A fenced write, or the controller's own renewal, found a new owner first.
                log.info("experiment %s: stopped driving it: %s", self.name, e)
                self.outcome = DriverOutcome.STOPPED
            else:
                log.warning("experiment %s: cannot go on now, will retry: %s", self.name, e)
                self.outcome = DriverOutcome.FAILED
        except Exception:
            log.exception("experiment %s: unexpected error, will retry", self.name)
            self.outcome = DriverOutcome.FAILED
        finally:
            self.keeper.forget(self.name)
            try:
                self.store.release_lease(self.name, self.keeper.owner)
            except StoreError as e:  # it expires by itself
                log.warning("experiment %s: could not release the lease: %s", self.name, e)
            self.pool.unregister(self.name)

    def _take_worker(self) -> None:
        if not self.pool.acquire(self.name, self._stop.is_set):
            raise StoppedError(self.stop_reason or "stopped")

    @contextlib.contextmanager
    def _idle(self) -> Iterator[None]:
        """Around the controller's wait between two passes: the worker is someone else's."""
        self.pool.release(self.name)
        yield
        self.pool.requeue(self.name)
        self._take_worker()

    def _drive(self) -> DriverOutcome:
        record = self.store.get_experiment(self.name)
        self.keeper.hold(self.name, record.spec, self.stop, record.annotations)
        if record.status.is_finished():  # finished by a peer since the service listed it
            return DriverOutcome.FINISHED
        # Every write for this experiment checks that the lease is still ours (Store.fenced).
        fenced = self.store.fenced(self.name, self.keeper.owner)
        try:
            experiment = record.experiment
        except SpecError as e:
            return self._fail(fenced, f"the stored spec is not a valid Experiment: {e}")
        interceptor = _StopAndTime(self.metrics, self)
        with SuggestionClient(
            self.suggestion_address,
            interceptors=[interceptor],
            credentials=self.suggestion_credentials,
        ) as client:
            controller = Controller(
                fenced,
                experiment,
                client,
                self.executor,
                poll_interval=self.poll_interval,
                # Called once per pass, after the pass's writes: a safe point to leave.
                on_progress=lambda _snapshot: self.checkpoint(),
                lease_ttl=self.keeper.ttl,
                dbmanager_tls=self.dbmanager_tls,
                db_manager_address=self.db_manager_address,
                idle=self._idle,
            )
            try:
                decision = controller.prepare()
            except ExperimentRefusedError as e:
                return self._fail(fenced, str(e))
            if decision.action == "done":
                return DriverOutcome.FINISHED
            if decision.spec_changed:
                # Changed between our read and prepare's: run would write our stale spec back.
                raise StoppedError("its stored spec changed while starting; restarting it")
            self.checkpoint()
            log.info("experiment %s: driving it (%s)", self.name, record.status.value)
            result = controller.run()
        log.info(
            "experiment %s: %s (%s) with %d trial(s)",
            self.name,
            result.experiment.status.value,
            result.experiment.reason,
            result.counts.total,
        )
        return DriverOutcome.FINISHED

    def _lease_lost(self) -> bool:
        try:
            return self.store.get_experiment(self.name).lease_owner != self.keeper.owner
        except StoreError:
            return False

    def _fail(self, store: Store, message: str) -> DriverOutcome:
        """Fail an experiment that can never run (we hold its lease), so it is not retried."""
        log.warning("experiment %s: failed: %s", self.name, message)
        store.set_experiment_status(self.name, ExperimentStatus.FAILED, REASON_FAILED, message)
        return DriverOutcome.FINISHED
