"""Running trials: launch through the executor, follow their metrics, record how they ended.

`TrialRunner` owns the live side of the reconcile loop. Each launched or adopted trial has a
metrics collector that reads its log (or metrics file) while it runs; observations are
stored in batches as they are parsed, each in one transaction. Trials may also push
observations through the DBManager. When a trial ends, its metrics are summarized from the
store. After a controller restart an adopted trial's collector resumes from the checkpoint
stored with its last batch of observations (same transaction), so none is stored twice or
lost.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.controller._checkpoints import local_command, mount_volume, prepare_local
from tuner.controller._collection import (
    collect_into_store,
    collector_config,
    metrics_file,
    observation_cap,
    trial_command,
)
from tuner.controller._signals import deferred_interrupts
from tuner.controller._trial_ends import (
    OUTPUT_TAIL_BYTES,
    aware,
    end_status,
    objective_value,
    output_tail_lines,
    with_output_tail,
)
from tuner.controller._trial_env import active_deadline, pod_environment, with_container_env
from tuner.controller._watcher import ExitWatcher
from tuner.executors import (
    Executor,
    ExecutorError,
    ExitReason,
    Outcome,
    ResourcesBusyError,
    TrialHandle,
)
from tuner.metrics import (
    CollectorCheckpoint,
    MetricsCollector,
    MetricsError,
    create_collector,
)
from tuner.space import SpaceError
from tuner.spec import Experiment, SpecError, render_trial
from tuner.store import Store, StoreError, TrialRecord, TrialStatus
from tuner.tls import DBManagerTLS

log = logging.getLogger(__name__)

# Log bytes read per trial per poll while it runs; the rest waits for the next poll, so one
# trial printing gigabytes cannot starve the others. The final read after exit takes all.
READ_BUDGET_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Started:
    handle: TrialHandle
    log_path: Path | None
    clear_message: bool


@dataclass
class _Live:
    name: str
    handle: TrialHandle
    collector: MetricsCollector
    kill_requested: str | None = None
    early_stopped: bool = False


class TrialRunner:
    """Launches, polls, kills and adopts the trials of one experiment.

    Every trial gets ``KATIB_TRIAL_NAME`` and, given ``db_manager_address``,
    ``TUNER_DBMANAGER_ADDRESS`` (and ``TUNER_DBMANAGER_TLS_*`` given ``dbmanager_tls``) in
    its environment; with the File collector also
    ``TUNER_METRICS_FILE`` (see ``tuner.metrics.trial_metrics_path``). Not thread-safe: the
    reconcile loop calls it from one thread.
    """

    def __init__(
        self,
        store: Store,
        experiment: Experiment,
        executor: Executor,
        *,
        db_manager_address: str | None = None,
        report_token: Callable[[str], str] | None = None,
        dbmanager_tls: DBManagerTLS | None = None,
        on_stored: Callable[[TrialRecord], None] | None = None,
    ) -> None:
        self.store = store
        # Called with each record this runner stores that `launch` did not return: the
        # Running record of a launched trial, stored later by `poll`.
        self._on_stored = on_stored
        self.experiment = experiment
        self.executor = executor
        self.db_manager_address = db_manager_address
        # The trial name -> its DBManager report token (``TUNER_TRIAL_TOKEN``), if any.
        self._report_token = report_token
        # The TLS files of the DBManager (``TUNER_DBMANAGER_TLS_*``), if it serves TLS.
        self._dbmanager_tls = dbmanager_tls
        # Where the executor puts each trial's directory (a remapped metrics file goes
        # there); None for executors without one.
        self._run_dir: Path | None = executor.run_dir
        self.space = experiment.search_space()
        self._kind = experiment.spec.metrics_collector_spec.collector.kind
        self._cap = observation_cap(experiment)
        self._live: dict[str, _Live] = {}
        # Launched trials not yet stored Running (written by the next `poll`, in its
        # transaction), with what that write needs.
        self._unstored: dict[str, _Started] = {}
        # Created trials whose resources (GPUs) running trials hold: launched, in order, as
        # soon as the executor has them. They keep their parallel slots meanwhile.
        self._waiting: dict[str, TrialRecord] = {}
        # The loop's wait ends when a trial ends (its exit descriptor readable, or woken by
        # a trial's own watcher thread where the executor has none), instead of at the end
        # of its poll interval.
        self._closed = threading.Event()
        self._exits = ExitWatcher()

    @property
    def live_names(self) -> list[str]:
        return list(self._live)

    @property
    def waiting_names(self) -> list[str]:
        return list(self._waiting)

    # -- start ---------------------------------------------------------------------------

    def launch(self, trial: TrialRecord) -> TrialRecord:
        """Start a Created trial; a trial that cannot start is stored as Failed, one whose
        resources are all taken stays Created (with a message saying so) and waits for
        :meth:`launch_waiting`. Returns the trial as stored now."""
        try:
            rendered = render_trial(self.experiment, trial.name, self.space.parse(trial.parameters))
            file = metrics_file(self.experiment, trial.name, self._run_dir)
            if file is not None and not file.remapped:
                # A path the experiment names per trial: as Katib mounts a volume there, the
                # directory exists when the trial starts.
                file.path.parent.mkdir(parents=True, exist_ok=True)
            argv, env = trial_command(
                self.experiment,
                rendered.argv,
                rendered.env,
                trial.name,
                self.db_manager_address,
                None if file is None else file.path,
                None if self._report_token is None else self._report_token(trial.name),
                self._dbmanager_tls,
            )
            manifest = rendered.manifest
            # pbt's checkpoints (``suggestion_trial_dir``): a directory here, or a volume.
            if self._run_dir is not None:
                checkpoint = prepare_local(self.experiment, trial, self._run_dir)
                if checkpoint is not None:
                    argv, env = local_command(checkpoint, argv, env)
            else:
                # The pod gets no environment from here: tuner's variables go in the object.
                manifest, primary = with_container_env(
                    manifest, rendered.primary_container, pod_environment(env)
                )
                manifest = mount_volume(
                    self.experiment, trial.name, trial.labels, manifest, primary
                )
        except (SpecError, SpaceError, ExecutorError, MetricsError, OSError) as e:
            return self._launch_failed(trial, e)
        # From the moment the process exists until the runner knows it, an interrupt would
        # leave it unwatched (nothing would kill it): hold Ctrl-C / SIGTERM until then.
        with deferred_interrupts():
            try:
                handle = self.executor.launch(
                    trial.name,
                    argv,
                    env,
                    rendered.working_dir,
                    active_deadline(manifest),
                    manifest=manifest,
                )
            except ResourcesBusyError as e:
                return self._wait_for_resources(trial, str(e))
            except (ExecutorError, OSError) as e:
                return self._launch_failed(trial, e)
            # A Created trial's message says why it waited (also one a crash left stored).
            waited = self._waiting.pop(trial.name, None) is not None
            # Stored Running with the next poll: should the controller die before, the
            # executor finds the trial by its name (`adopt`), as it does when it died
            # between the launch and this write.
            return self._track(
                trial, handle, defer=True, clear_message=waited or bool(trial.message)
            )

    def _wait_for_resources(self, trial: TrialRecord, why: str) -> TrialRecord:
        first = trial.name not in self._waiting
        self._waiting[trial.name] = trial
        if first:
            log.info("%s", why)
            return self.store.update_trial(trial.name, message=why)
        return trial

    def launch_waiting(self) -> list[TrialRecord]:
        """Launch the waiting trials the executor now has resources for, oldest first."""
        launched = []
        for trial in list(self._waiting.values()):
            record = self.launch(trial)
            if record.name in self._waiting:
                break  # the older ones go first: keep the order
            launched.append(record)
        return launched

    def _launch_failed(self, trial: TrialRecord, error: Exception) -> TrialRecord:
        log.warning("trial %s could not be launched: %s", trial.name, error)
        self._waiting.pop(trial.name, None)
        return self.store.finish_trial(
            trial.name, TrialStatus.FAILED, message=f"launch failed: {error}"
        )

    def adopt(self, trial: TrialRecord) -> TrialRecord | None:
        """Re-attach to a Created or Running trial after a restart; None if it never launched.

        The trial is found by its stored executor reference, or by name in the executor's run
        directory when the controller died before storing the reference.
        """
        with deferred_interrupts():
            handle = None
            if trial.executor_ref:
                handle = self.executor.adopt(trial.executor_ref)
            if handle is None:
                handle = self.executor.find(trial.name)
            if handle is None:
                return None
            stored = self.store.collector_checkpoint(trial.name)
            checkpoint = None if stored is None else CollectorCheckpoint.from_dict(stored)
            record = self._track(trial, handle, checkpoint)
        if checkpoint is None and self._live[trial.name].collector.reads_output:
            # Nothing collected was stored with a checkpoint: re-read from the start, and
            # drop whatever an older version stored without one.
            self.store.delete_observations(trial.name)
        return record

    def _track(
        self,
        trial: TrialRecord,
        handle: TrialHandle,
        checkpoint: CollectorCheckpoint | None = None,
        *,
        defer: bool = False,
        clear_message: bool = False,
    ) -> TrialRecord:
        """Follow a started trial and store it Running; with ``defer``, in the next
        transaction of `poll` (the trial is returned as stored until then)."""
        name = trial.name
        log_path = self.executor.log_path(handle)
        file = metrics_file(self.experiment, name, self._run_dir)
        collector = create_collector(
            self._kind,
            collector_config(
                self.experiment,
                log_path,
                None if file is None else file.path,
                # The output as the executor serves it: the local log file, a pod's log...
                open_output=functools.partial(self.executor.open_output, handle),
            ),
            checkpoint,
        )
        # Live before it is stored Running: should the store write fail, kill_all still
        # reaches the process.
        self._live[name] = _Live(name, handle, collector)
        self._watch_exit(handle)
        self._unstored[name] = _Started(handle, log_path, clear_message)
        if not defer:
            record = self._store_started(name)
            del self._unstored[name]
            return record
        return trial

    def _store_started(self, name: str) -> TrialRecord:
        """Store a launched or adopted trial Running, with its executor reference (the
        caller forgets it in `_unstored` once that is committed)."""
        started = self._unstored[name]
        record = self.store.update_trial(
            name,
            status=TrialStatus.RUNNING,
            executor_kind=self.executor.name,
            executor_ref=started.handle.reference,
            log_path=None if started.log_path is None else str(started.log_path),
            message="" if started.clear_message else None,
        )
        if self._on_stored is not None:
            self._on_stored(record)
        return record

    def _started_fields(self, started: _Started, outcome: Outcome) -> dict[str, Any]:
        return {
            "executor_kind": self.executor.name,
            "executor_ref": started.handle.reference,
            "log_path": None if started.log_path is None else str(started.log_path),
            "started_at": outcome.started_at if aware(outcome.started_at) else None,
        }

    def _watch_exit(self, handle: TrialHandle) -> None:
        """Wake the loop when the trial ends: through the executor's exit descriptor,
        watched with the others', or a thread of its own that waits on the executor."""
        fd = self.executor.exit_descriptor(handle)
        if fd is None:
            threading.Thread(
                target=self._watch, args=(handle,), name=f"watch-{handle.trial_name}", daemon=True
            ).start()
        elif fd < 0:
            self._exits.wake()  # it has ended already
        else:
            self._exits.watch(fd)

    def _watch(self, handle: TrialHandle) -> None:
        while not self._closed.is_set():
            if self.executor.wait(handle, timeout=1.0) is not None:
                self._exits.wake()
                return

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less if a live trial ends meanwhile."""
        self._exits.wait(timeout)

    # -- watch ---------------------------------------------------------------------------

    def poll(self) -> list[TrialRecord]:
        """Collect new metrics of every live trial; store and return the trials that ended.

        One store transaction (with an executor whose output is local, `local_output`): the
        launched trials stored Running, each trial's new observations with its collector's
        checkpoint, and the ends (final observations, status, objective, best trial)
        together or not at all. The executor's clean-up of the ended trials comes after it
        is committed.
        """
        ended: list[tuple[TrialRecord, _Live]] = []
        # Only where reading the trials' state and output waits on nothing but local files
        # (the local executor): a Kubernetes pod's log is read over HTTP, which must not
        # hold the transaction open (on SQLite, the database's write lock, which trials
        # pushing metrics and the lease renewal wait for); there each write is its own
        # transaction, and the runner forgets what each one stored as soon as it committed.
        batched = self.executor.local_output
        batch = (
            self.store.transaction("storing the trials' progress")
            if batched
            else contextlib.nullcontext()
        )
        stored: list[str] = []
        # Ctrl-C / SIGTERM is held until the transaction has ended: the runner's memory (the
        # collectors' positions, which trials are live or stored Running) follows the store
        # only once it committed, and the interrupt's drain polls again from there.
        with deferred_interrupts(), batch:
            for live in list(self._live.values()):
                outcome = self.executor.poll(live.handle)
                # Read after polling: once the outcome is known, the log is complete.
                # Streamed to the store in batches, each with the collector's checkpoint.
                collect_into_store(
                    self.store,
                    live.name,
                    live.collector,
                    final=outcome is not None,
                    max_bytes=READ_BUDGET_BYTES,
                    cap=self._cap,
                )
                if outcome is not None:
                    ended.append((self._finish(live, outcome), live))
                    if not batched:
                        self._forget(live)
            # Those still running (an ended one got these fields with its end).
            ended_names = {live.name for _, live in ended}
            for name in [n for n in self._unstored if n not in ended_names]:
                self._store_started(name)
                if batched:
                    stored.append(name)
                else:
                    del self._unstored[name]
        for name in stored:
            del self._unstored[name]
        if batched:
            for _, live in ended:
                self._forget(live)
        # Only now: what the executor frees (a Job and its pods' logs) may be the output.
        for _, live in ended:
            try:
                self.executor.cleanup(live.handle)
            except ExecutorError as e:  # leftovers are untidy, the trial's record is right
                log.warning("trial %s: executor clean-up failed: %s", live.name, e)
        return [record for record, _ in ended]

    def _forget(self, live: _Live) -> None:
        """Stop following an ended trial whose end is committed."""
        self._unstored.pop(live.name, None)
        live.collector.close()
        del self._live[live.name]

    def early_stop(self, name: str, why: str) -> None:
        """Kill a live trial that broke the early-stopping rules; it is recorded EarlyStopped
        (unless it ends on its own first)."""
        live = self._live.get(name)
        if live is not None and live.kill_requested is None:
            live.kill_requested, live.early_stopped = why, True
            self.executor.kill(live.handle)

    def kill_all(self, why: str) -> None:
        """Ask every live trial to terminate; the next polls record them as Killed. Waiting
        trials are no longer launched (they stay Created, for the caller to record)."""
        self._waiting.clear()
        for live in self._live.values():
            if live.kill_requested is None:
                live.kill_requested = why
                self.executor.kill(live.handle)

    def close(self) -> None:
        """Stop following the trials (they run on; a resumed controller adopts them)."""
        if self._unstored:
            try:
                for name in list(self._unstored):
                    self._store_started(name)
                    del self._unstored[name]
            except StoreError as e:  # adoption finds them by name all the same
                log.warning("could not store launched trials as Running: %s", e)
        self._closed.set()
        self._exits.close()
        self._waiting.clear()
        for live in self._live.values():
            live.collector.close()
        self._live.clear()

    def _output_tail(self, handle: TrialHandle) -> str:
        try:
            return output_tail_lines(self.executor.output_tail(handle, OUTPUT_TAIL_BYTES))
        except ExecutorError as e:  # the message without it is still right
            log.warning("trial %s: could not read its output's tail: %s", handle.trial_name, e)
            return ""

    def _finish(self, live: _Live, outcome: Outcome) -> TrialRecord:
        """Store how the trial ended (the caller forgets it once that is committed)."""
        objective = self.experiment.spec.objective
        metric = objective.objective_metric_name
        # Katib's trial controller reads the trial's observation log when it ends; so do we:
        # collected and pushed values alike, in timestamp order; summarized by the database,
        # as a trial may have reported millions.
        summary = self.store.observation_summary(live.name, objective.metric_names)
        value = None
        if metric in summary:
            value = objective_value(summary[metric], objective.strategy(metric).value)
        # Every objective of a multi-objective experiment is needed, as the first one is.
        missing = [m for m, _ in objective.objectives if m not in summary]
        if missing:
            metric = missing[0]
        status, message = end_status(outcome, not missing, metric, live.kill_requested)
        if live.early_stopped and outcome.reason is ExitReason.KILLED:
            status, message = TrialStatus.EARLY_STOPPED, live.kill_requested or "early stopped"
        if status in (TrialStatus.FAILED, TrialStatus.METRICS_UNAVAILABLE):
            message = with_output_tail(message, self._output_tail(live.handle))
        # Ended before it was stored Running: what that write holds comes with its end.
        started = self._unstored.get(live.name)
        record = self.store.finish_trial(
            live.name,
            status,
            objective_value=value,
            metrics_summary=summary,
            exit_code=outcome.exit_code,
            message=message,
            completed_at=outcome.finished_at if aware(outcome.finished_at) else None,
            # The experiment's own: the store need not read and parse the stored spec.
            direction=self.experiment.spec.objective.type,
            **({} if started is None else self._started_fields(started, outcome)),
        )
        return record
