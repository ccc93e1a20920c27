"""The reconcile loop of one experiment: Katib's experiment controller, run as a local loop.

Each pass: poll the live trials (storing their metrics), count trials by state, decide in
Katib's order whether the experiment is finished, and otherwise ask the suggestion service
for exactly the free slots, store those trials, then launch them. The store is the source of
truth: a controller killed at any instant resumes from it (see docs/controller.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tuner.controller import _lease
from tuner.controller._checks import check_algorithms, check_runnable, prepare_executor
from tuner.controller._collection import report_policy, serve_dbmanager
from tuner.controller._decide import (
    REASON_FAILED,
    REASON_RESTARTING,
    REASON_RUNNING,
    Completion,
    Limits,
    ResumeDecision,
    TrialCounts,
    completion,
    goal_reached,
    merge_settings,
    name_trials,
    resume_decision,
    trials_to_add,
)
from tuner.controller._early_stopping import EarlyStopper
from tuner.controller._errors import ControllerError, ExperimentRefusedError, SuggestionError
from tuner.controller._result import RunResult
from tuner.controller._suggestions import SuggestionClient
from tuner.controller._trials import TrialRunner
from tuner.dbmanager import DBManagerError
from tuner.executors import Executor
from tuner.spec import Experiment
from tuner.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    Store,
    StoreError,
    TrialRecord,
    TrialStatus,
)
from tuner.tls import DBManagerTLS
from tuner.tokens import ReportPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Progress of a running experiment, handed to the ``on_progress`` callback."""

    name: str
    counts: TrialCounts
    max_trial_count: int | None
    best_trial: str | None
    best_value: float | None


class Controller:
    """Runs one experiment to its end against a store, a suggestion service and an executor.

    Call `prepare` first (it writes nothing: it validates the algorithm settings with the
    suggestion service, checks that the executor can run the template and prepares it for
    the experiment with ``executor.prepare``, and compares the file with a stored
    experiment of the same name), then `run`. `prepare` raises
    `ExperimentRefusedError` (exit code 2) for anything the user must fix; `run` raises
    `ControllerError` when it cannot go on for a reason outside the experiment (the
    suggestion service unreachable after retries, another live controller holding the
    experiment). KeyboardInterrupt during `run` kills the running trials (recorded as
    Killed) and leaves the experiment resumable. Not thread-safe.

    Trials may push metrics to ``db_manager_address`` (a DBManager serving this store that
    they can reach wherever they run, so Push is allowed with any executor), else to one
    `run` serves on 127.0.0.1. ``dbmanager_tls``: that DBManager serves TLS (the one `run`
    serves is started with it); trials get its client files.
    ``spec.earlyStopping`` rules come from the suggestion service's EarlyStopping service
    (docs/controller.md, "Early stopping").
    ``idle``: a context manager entered around each wait between two passes of the loop (a
    service hands its worker to another experiment there; leaving it may raise to stop).
    """

    def __init__(
        self,
        store: Store,
        experiment: Experiment,
        suggestions: SuggestionClient,
        executor: Executor,
        *,
        poll_interval: float = 0.5,
        on_progress: Callable[[Snapshot], None] | None = None,
        lease_ttl: float = 60.0,
        db_manager_address: str | None = None,
        dbmanager_tls: DBManagerTLS | None = None,
        idle: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    ) -> None:
        self.store = store
        self.experiment = experiment
        self.name = experiment.metadata.name
        self.suggestions = suggestions
        self.executor = executor
        self.poll_interval = poll_interval
        self.on_progress = on_progress
        self.lease_ttl = lease_ttl
        self.db_manager_address = db_manager_address
        self.dbmanager_tls = dbmanager_tls
        self.idle = idle or contextlib.nullcontext
        self.space = experiment.search_space()
        self._spec = experiment.to_dict()["spec"]
        self._annotations = dict(experiment.metadata.annotations)
        self._owner = _lease.own_owner()
        self._lease_renewed = 0.0
        self._exhausted = False
        # A reply came back short while trials run (hyperband waits for a rung): ask again
        # once a trial has ended, not on every pass.
        self._waiting = False
        # What the suggestion service returned in GetSuggestionsReply.algorithm, merged by
        # name; sent back with every request (Katib's Suggestion status.algorithmSettings).
        self._algorithm_settings: tuple[tuple[str, str], ...] = ()
        self._decision: ResumeDecision | None = None
        # The experiment's trials for GetSuggestions and GetEarlyStoppingRules, kept current
        # by this controller (it alone writes them while it holds the lease) instead of
        # re-reading every trial from the store for each request. A record is replaced when
        # its trial changes: the client converts only those since its last request.
        self._trials: dict[str, TrialRecord] = {}
        # How many of them are in each state, kept with them: each pass decides from these
        # instead of counting rows in the store (which only this controller changes).
        self._tally: dict[TrialStatus, int] = dict.fromkeys(TrialStatus, 0)
        self._stopper: EarlyStopper | None = None

    # -- prepare ---------------------------------------------------------------------

    def prepare(self) -> ResumeDecision:
        """Check everything that can be checked before writing; return what `run` will do.
        Also the executor's per-experiment setup (``executor.prepare``), which must precede
        every launch, adoption or look-up of the experiment's trials."""
        # A DBManager given to the controller is served for trials wherever they run.
        check_runnable(
            self.experiment, type(self.executor), reachable_dbmanager=bool(self.db_manager_address)
        )
        check_algorithms(self.suggestions, self.experiment)
        prepare_executor(self.executor, self.experiment)
        try:
            stored = self.store.get_experiment(self.name)
        except ExperimentNotFoundError:
            self._decision = ResumeDecision("create")
            return self._decision
        decision = resume_decision(
            stored_spec=stored.spec,
            new_spec=self._spec,
            finished=stored.status.is_finished(),
            succeeded=stored.status is ExperimentStatus.SUCCEEDED,
            reason=stored.reason,
            total_trials=sum(self.store.count_trials(self.name).values()),
            stored_annotations=stored.annotations,
            new_annotations=self.experiment.metadata.annotations,
        )
        if decision.action == "refuse":
            raise ExperimentRefusedError(
                f"experiment {self.name!r} in {self.store.url}: {decision.message}"
            )
        self._decision = decision
        return decision

    # -- run -------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Create or resume the experiment and drive it to its end; the final state."""
        decision = self._decision or self.prepare()
        if decision.action == "done":
            return self.result()
        if decision.action == "create":
            self.store.create_experiment(
                self.name, self.experiment.metadata.namespace, self._spec, self._annotations
            )
        # The lease first: a run refused because another controller holds the experiment
        # must not start (and warn about) a DBManager on the port the other one serves.
        self._take_lease()
        # Trials of our own DBManager report with a token each; another one is not ours.
        policy = (
            None
            if self.db_manager_address
            else report_policy(self.store, self.executor, self.experiment)
        )
        with contextlib.ExitStack() as services:
            try:
                address = self.db_manager_address or services.enter_context(
                    serve_dbmanager(
                        self.store, self.executor, self.name, policy, self.dbmanager_tls
                    )
                )
            except DBManagerError as e:
                self.store.release_lease(self.name, self._owner)
                raise ControllerError(f"experiment {self.name!r}: {e}") from e
            except BaseException:
                self.store.release_lease(self.name, self._owner)
                raise
            self._run(decision, address, policy)
        return self.result()

    def _run(
        self, decision: ResumeDecision, db_manager_address: str, policy: ReportPolicy | None
    ) -> None:
        """Run the experiment whose lease this controller holds; releases the lease."""
        runner = TrialRunner(
            self.store,
            self.experiment,
            self.executor,
            db_manager_address=db_manager_address,
            report_token=None if policy is None else policy.token,
            dbmanager_tls=self.dbmanager_tls,
            on_stored=self._remember,
        )
        if self.experiment.spec.early_stopping is not None:
            self._stopper = EarlyStopper(
                self.store, self.suggestions, self.experiment, db_manager_address
            )
        try:
            if decision.action == "restart":
                self.store.update_experiment_spec(self.name, self._spec, self._annotations)
                self.store.set_experiment_status(
                    self.name,
                    ExperimentStatus.RESTARTING,
                    REASON_RESTARTING,
                    "Experiment is restarted",
                )
            elif decision.spec_changed:
                self.store.update_experiment_spec(self.name, self._spec, self._annotations)
            self.store.set_experiment_status(
                self.name, ExperimentStatus.RUNNING, REASON_RUNNING, "Experiment is running"
            )
            self._algorithm_settings = self.store.get_experiment(self.name).algorithm_settings
            self._adopt(runner)
            self._loop(runner)
        except KeyboardInterrupt:
            self._drain(runner, "the controller was interrupted")
            raise
        finally:
            runner.close()
            try:
                self.store.release_lease(self.name, self._owner)
            except StoreError as e:  # do not hide the error that got us here
                log.warning("experiment %s: could not release the lease: %s", self.name, e)

    def result(self) -> RunResult:
        return RunResult.load(self.store, self.name, self.space)

    def _adopt(self, runner: TrialRunner) -> None:
        """Re-attach to trials a previous controller started; launch rows it never started."""
        unlaunched = []
        for trial in self.store.list_trials(self.name):
            if trial.status.is_active():
                adopted = runner.adopt(trial)
                if adopted is not None:
                    trial = adopted
                elif trial.status is TrialStatus.RUNNING:
                    # Running without anything on the executor's side: nothing can be waited
                    # for. Fail it; its slot is filled by a new trial if the budget allows.
                    trial = self.store.finish_trial(
                        trial.name,
                        TrialStatus.FAILED,
                        message="TrialLost: marked Running but unknown to the executor",
                    )
                else:
                    unlaunched.append(trial)
            self._remember(trial)
        # Only after every adoption: the executor then knows what the adopted trials hold
        # (their GPUs), so a launch cannot take a device a running trial still uses.
        for trial in unlaunched:
            self._remember(runner.launch(trial))

    def _loop(self, runner: TrialRunner) -> None:
        spec = self.experiment.spec
        limits = Limits(
            spec.parallel_trial_count, spec.max_trial_count, spec.max_failed_trial_count
        )
        best: TrialRecord | None = None
        first = True
        while True:
            self._renew_lease()
            ended = runner.poll()
            for trial in ended:
                self._remember(trial)
            if ended:
                self._waiting = False
            # Into the room the ended trials left (their GPUs).
            for trial in runner.launch_waiting():
                self._remember(trial)
            stopper_failed = self._stopper and self._stopper.step(runner, ended, self._trials)
            if isinstance(stopper_failed, Completion):
                self._complete(runner, stopper_failed)
                return
            counts = self._live_counts()
            if first:
                best = self.store.best_trial(self.name)
                first = False
            else:  # only an ended trial can change the best one
                best = self._best_of(best, ended)
            best_value = best.objective_value if best is not None else None
            done = completion(
                counts,
                limits,
                goal_is_reached=goal_reached(spec.objective.type, spec.objective.goal, best_value),
                suggestions_exhausted=self._exhausted,
            )
            if done is not None:
                self._complete(runner, done)
                return
            add = trials_to_add(counts, limits)
            if add and not self._exhausted and not self._waiting:
                try:
                    self._create_and_launch(runner, add)
                except SuggestionError as e:
                    if e.code == "UNKNOWN" and counts.active:
                        # A Katib service raising (its hyperband does while a rung runs):
                        # Katib's controller retries; ask again once a trial has ended.
                        log.warning(
                            "experiment %s: %s; asking again once a trial ends", self.name, e
                        )
                        self._waiting = True
                    elif e.retryable:
                        raise ControllerError(
                            f"{e}; running trials keep running: rerun the same command to "
                            "resume the experiment"
                        ) from e
                    else:
                        self._complete(
                            runner,
                            Completion(False, REASON_FAILED, f"Suggestion has failed: {e}"),
                        )
                        return
                counts = self._live_counts()
            self._progress(counts, best)
            with self.idle():
                runner.wait(self.poll_interval)

    def _create_and_launch(self, runner: TrialRunner, count: int) -> None:
        trials = list(self._trials.values())
        reply = self.suggestions.suggest(
            self.experiment, trials, count, len(trials) + count, self._algorithm_settings
        )
        active = bool(reply.assignments) or self._live_counts().active > 0
        if reply.exhausted or (len(reply.assignments) < count and not active):
            # Short with nothing to run: no trial can end to change the answer.
            log.info("experiment %s: the suggestion service has no more points", self.name)
            self._exhausted = True
        elif len(reply.assignments) < count:
            self._waiting = True
        rows = name_trials(self.name, reply.assignments, reply.names, taken=self._trials.keys())
        labels = {
            name: reply.labels[i] for i, (name, _) in enumerate(rows) if i < len(reply.labels)
        }
        settings = None
        if reply.algorithm_settings is not None:
            merged = merge_settings(self._algorithm_settings, reply.algorithm_settings)
            settings = merged if merged != self._algorithm_settings else None
        # Rows first, with their labels and the algorithm's returned state, in one
        # transaction: a crash after this finds them Created and launches them (or adopts
        # them, if the executor got to start them), and the next request carries the state
        # that produced them.
        records = (
            self.store.create_trials(self.name, rows, algorithm_settings=settings, labels=labels)
            if rows or settings is not None
            else []
        )
        if settings is not None:
            self._algorithm_settings = settings
        for record in records:
            self._remember(record)
            self._remember(runner.launch(record))

    def _best_of(self, best: TrialRecord | None, ended: list[TrialRecord]) -> TrialRecord | None:
        """The best trial after ``ended`` finished, by the rule `Store.finish_trial` applies
        to the stored best trial in the same transaction (this controller alone finishes
        the experiment's trials while it holds the lease): no read back."""
        direction = self.experiment.spec.objective.type
        for trial in ended:
            value = trial.objective_value
            if value is None or not trial.status.counts_for_best():
                continue
            if direction.is_better(value, None if best is None else best.objective_value):
                best = trial
        return best

    def _complete(self, runner: TrialRunner, done: Completion) -> None:
        # Trials end before the experiment does: a crash in between re-derives the same
        # completion on the next run, since goal, failures and completions never go back.
        self._drain(runner, f"the experiment finished ({done.reason})")
        self.store.set_experiment_status(
            self.name,
            ExperimentStatus.SUCCEEDED if done.succeeded else ExperimentStatus.FAILED,
            done.reason,
            done.message,
        )
        self._progress(self._counts(), self.store.best_trial(self.name))

    def _drain(self, runner: TrialRunner, why: str) -> None:
        """Kill the live trials and wait until each has been recorded."""
        runner.kill_all(why)
        while runner.live_names:
            for ended in runner.poll():
                self._remember(ended)
            if runner.live_names:
                runner.wait(self.poll_interval)
        # Rows that never reached the executor cannot be killed; they never ran.
        for trial in self.store.list_trials(self.name, [TrialStatus.CREATED]):
            self.store.finish_trial(trial.name, TrialStatus.KILLED, message=f"never started: {why}")

    def _remember(self, trial: TrialRecord) -> None:
        old = self._trials.get(trial.name)
        if old is not None:
            self._tally[old.status] -= 1
        self._tally[trial.status] += 1
        self._trials[trial.name] = trial

    def _live_counts(self) -> TrialCounts:
        """The counts of the remembered trials: every trial of the experiment once
        `_adopt` has run, each as this controller last stored it."""
        t = self._tally
        return TrialCounts(
            created=t[TrialStatus.CREATED],
            running=t[TrialStatus.RUNNING],
            succeeded=t[TrialStatus.SUCCEEDED],
            failed=t[TrialStatus.FAILED],
            killed=t[TrialStatus.KILLED],
            early_stopped=t[TrialStatus.EARLY_STOPPED],
            metrics_unavailable=t[TrialStatus.METRICS_UNAVAILABLE],
        )

    def _counts(self) -> TrialCounts:
        by_status = self.store.count_trials(self.name)
        return TrialCounts.of(s for s, n in by_status.items() for _ in range(n))

    def _progress(self, counts: TrialCounts, best: object) -> None:
        if self.on_progress is None:
            return
        self.on_progress(
            Snapshot(
                self.name,
                counts,
                self.experiment.spec.max_trial_count,
                getattr(best, "name", None),
                getattr(best, "objective_value", None),
            )
        )

    # -- lease -----------------------------------------------------------------------

    def _take_lease(self) -> None:
        if self.store.acquire_lease(self.name, self._owner, self.lease_ttl):
            self._lease_renewed = time.monotonic()
            return
        holder = self.store.get_experiment(self.name).lease_owner
        if holder and _lease.owner_is_dead(holder):
            log.info(
                "experiment %s: taking over the lease of dead controller %s", self.name, holder
            )
            self.store.release_lease(self.name, holder)
            if self.store.acquire_lease(self.name, self._owner, self.lease_ttl):
                self._lease_renewed = time.monotonic()
                return
        raise ControllerError(
            f"experiment {self.name!r} is being run by another controller ({holder}); wait for "
            f"it to finish, or for its lease to expire ({self.lease_ttl:.0f}s after it stopped)"
        )

    def _renew_lease(self) -> None:
        if time.monotonic() - self._lease_renewed < self.lease_ttl / 3:
            return
        if not self.store.renew_lease(self.name, self._owner, self.lease_ttl):
            raise ControllerError(
                f"experiment {self.name!r}: another controller took over the lease; stopping"
            )
        self._lease_renewed = time.monotonic()
