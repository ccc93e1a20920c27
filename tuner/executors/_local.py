"""The local executor: each trial is a process group on this machine, watched by a small
supervisor process (forked by a fork server on Linux) so that it survives, and can be
re-adopted after, a controller crash. Its launch is in ``_local_launch``, its handle and
adoption in ``_local_handle``."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.executors import _local_forkserver as forkserver
from tuner.executors import _local_state as trial_state
from tuner.executors import _supervisor as sv
from tuner.executors._base import (
    ExecutorOptions,
    LaunchError,
    LaunchPlanner,
    Outcome,
    ResourcesBusyError,
    TrialHandle,
)
from tuner.executors._devices import Allocation, ResourcePool, parse_request
from tuner.executors._local_handle import (
    EXECUTOR_NAME,
    LocalTrialHandle,
    TrialAdoption,
)
from tuner.executors._local_launch import SupervisorLaunching, _non_negative
from tuner.executors._local_template import check_kind, ignored_fields
from tuner.spec import find_containers

if TYPE_CHECKING:
    from tuner.spec import Experiment, RenderedTrial

log = logging.getLogger(__name__)

DEFAULT_GRACE_PERIOD_SECONDS = 10.0
_EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"


class LocalExecutor(SupervisorLaunching, TrialAdoption):
    """Runs each trial as a process group on this machine.

    Each trial has a supervisor process of its own, in a new session, that starts the
    trial's argv (never through a shell) in a new process group, enforces the deadline, and
    writes ``outcome.json``; it outlives the controller. On Linux (``fork_server`` None or
    True) the supervisors are forked by a fork server, one long-lived ``python -I -S
    _forkserver.py`` per executor started at the first launch (by :meth:`create`, for a
    run, at once): a fork of an interpreter that has everything imported costs ~1 ms, a new
    ``python -I -S _supervisor.py`` per trial (elsewhere, or ``fork_server=False``, or
    should the server fail to start) ~10 ms.
    A fork server that dies is replaced at the next launch; the supervisors it forked run on
    (they are processes of their own), and it exits only after they all have, once the
    controller is gone. Per trial, ``run_dir/<trial_name>/`` holds ``output.log`` (stdout
    and stderr of the trial, written by the OS, so nothing is lost when the controller
    dies), ``supervisor.json`` (pids and start times, appended) and ``outcome.json``, and
    the supervisor holds an ``flock`` on the directory while it lives: the same records
    whichever way the supervisor started, so a controller adopts the trials of the other
    way (and of older versions, whose lock is a ``supervisor.lock`` file).

    - argv: used as given, except that a bare ``python`` or ``python3`` becomes
      ``python_executable`` (default: the interpreter running tuner), so that a trial runs
      with the packages of tuner's environment, as a laptop user expects.
    - env: tuner's own environment, then ``PYTHONUNBUFFERED=1`` (so Python trials' metrics
      appear in the log as they are printed), then the container's ``env``: later wins.
    - working_dir: the container's ``workingDir``; a relative one, or None, is taken
      relative to / as ``default_working_dir`` (default: the current directory).
    - Deadline and kill: SIGTERM to the trial's process group, SIGKILL after the grace
      period. When the trial's main process ends, whatever is left of its group is killed
      (as Kubernetes does when a pod's main container exits). Processes that leave the group
      on purpose (``setsid``) are not followed.
    - Resources: the primary container's ``resources.limits`` for ``nvidia.com/gpu`` and
      ``amd.com/gpu`` take devices from a pool (``gpus``, else the controller's
      ``CUDA_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES``, else ``nvidia-smi -L``), one trial
      per device, named to the trial in ``CUDA_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES``;
      ``launch`` raises :class:`ResourcesBusyError` while too few are free. ``cpu`` sets
      ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` and, where the OS has it, the CPU affinity
      (the least used CPUs). A trial without limits gets none of this and sees every device.

    Needs Linux for full strength (``/proc`` for pid-reuse-proof identity, a subreaper so
    that no zombies are left behind); elsewhere it degrades to plain pid checks.
    """

    name = EXECUTOR_NAME
    shares_host = True
    local_output = True
    supports_dry_run = True
    cli_options = frozenset({"gpus"})

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        default_working_dir: str | os.PathLike[str] | None = None,
        grace_period_seconds: float = DEFAULT_GRACE_PERIOD_SECONDS,
        python_executable: str | None = None,
        gpus: str | Sequence[str] | None = None,
        fork_server: bool | None = None,
    ) -> None:
        self.run_dir: Path = Path(run_dir).absolute()
        self.default_working_dir = Path(default_working_dir or os.getcwd()).absolute()
        self.grace_period_seconds = _non_negative(grace_period_seconds, "grace_period_seconds")
        self.python_executable = python_executable or sys.executable
        if not self.python_executable:
            raise LaunchError("python_executable: the running interpreter's path is unknown")
        self._lock = threading.Lock()
        self._launched: dict[Path, LocalTrialHandle] = {}
        self.resources = ResourcePool(gpus)
        # The primary container's name per experiment (prepare), for the trials' limits.
        self._primary_containers: dict[str, str] = {}
        # Trials found running in run_dir, holding devices, that nobody adopted (yet).
        self._found_holding: dict[str, Path] | None = None
        self._scan_lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()
        self._use_fork_server = forkserver.available() if fork_server is None else fork_server
        self._server: forkserver.ForkServer | None = None

    # -- capabilities ------------------------------------------------------------------

    @classmethod
    def create(cls, options: ExecutorOptions) -> LocalExecutor:
        """An executor for a run, its fork server started now rather than at the first
        launch: the server's interpreter starts while the run's own start-up goes on."""
        executor = cls(**cls.constructor_options(options))
        executor._fork_server()
        return executor

    @classmethod
    def constructor_options(cls, options: ExecutorOptions) -> dict[str, Any]:
        return {
            "run_dir": options.run_dir,
            "default_working_dir": options.working_dir,
            **options.extra,
        }

    @classmethod
    def check_template(
        cls, rendered: RenderedTrial, *, provided_env: frozenset[str] = frozenset()
    ) -> None:
        check_kind(rendered.manifest)
        if not rendered.primary_container:
            raise LaunchError(
                f"spec.trialTemplate.trialSpec: the {rendered.manifest.get('kind')} defines no"
                " container inline (a reference to a runtime, pipeline or template), so the"
                " local executor has no command to run; run it with --executor kubernetes"
            )
        container = (
            f"spec.trialTemplate.trialSpec container {rendered.primary_container.get('name')!r}"
        )
        if not rendered.argv:
            raise LaunchError(
                f"{container}: no command or args; the local executor runs the container's "
                "command as a process and cannot use an image's entrypoint"
            )
        value_from = [n for n in rendered.env_value_from if n not in provided_env]
        if value_from:
            raise LaunchError(
                f"{container}: env {', '.join(value_from)} use valueFrom, which "
                "only Kubernetes can resolve; give them a value for the local executor"
            )

    @classmethod
    def dry_run(
        cls, experiment: Experiment, options: ExecutorOptions, plan: LaunchPlanner
    ) -> list[dict[str, Any]]:
        """The argv (as it will be executed), the variables added to the controller's
        environment, the working directory and the deadline if any, of each planned trial."""
        # Built only to resolve commands and directories as a run would; touches no file.
        executor = cls(**cls.constructor_options(options))
        documents = []
        for request in plan(executor.run_dir):
            try:
                argv = executor.resolve_argv(request.argv)
            except LaunchError as e:
                raise LaunchError(f"trial {request.trial_name!r}: {e}") from e
            document: dict[str, Any] = {
                "trial": request.trial_name,
                "experiment": experiment.metadata.name,
                "parameters": dict(request.parameters),
                "argv": argv,
                "env": dict(request.env),
                "workingDir": str(executor.default_working_dir / (request.working_dir or "")),
            }
            if request.deadline_seconds is not None:
                document["activeDeadlineSeconds"] = request.deadline_seconds
            documents.append(document)
        return documents

    @classmethod
    def for_reference(cls, reference: Mapping[str, Any]) -> LocalExecutor | None:
        trial_dir = reference.get("trial_dir")
        if not isinstance(trial_dir, str):
            return None
        return cls(Path(trial_dir).parent)

    def prepare(self, experiment: Experiment) -> None:
        """Refuse a kind with no single primary container and a template whose primary
        container asks for more devices than exist; say once per experiment (a warning)
        which template fields a local run ignores: the image, other containers and
        replicas, resources other than cpu and GPU limits, volumes."""
        check_kind(experiment.spec.trial_template.trial_spec or {})
        self._warn_ignored(experiment)
        template = experiment.spec.trial_template
        primary = template.primary_container_name or None
        if primary is not None:
            self._primary_containers[experiment.metadata.name] = primary
        container = _find_container(template.trial_spec or {}, primary)
        where = _container_field(primary)
        try:
            request = parse_request(container, where)
        except LaunchError:
            return  # a placeholder (${trialParameters.gpus}): checked per trial at launch
        self.resources.check(request, where)

    def _warn_ignored(self, experiment: Experiment) -> None:
        key = (experiment.metadata.namespace, experiment.metadata.name)
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        ignored = ignored_fields(experiment)
        if ignored:
            log.warning(
                "experiment %s: the local executor runs container %r of the trial template as"
                " a process on this machine and ignores: %s",
                experiment.metadata.name,
                experiment.spec.trial_template.primary_container_name,
                "; ".join(ignored),
            )

    # -- launch ------------------------------------------------------------------------

    def launch(
        self,
        trial_name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        working_dir: str | Path | None,
        deadline_seconds: float | None,
        *,
        manifest: Mapping[str, Any] | None = None,
        grace_period_seconds: float | None = None,
    ) -> LocalTrialHandle:
        trial_dir = self._trial_dir(trial_name)
        command = self.resolve_argv(argv)
        allocation = self._allocate(trial_name, manifest)
        try:
            return self._launch(
                trial_name,
                trial_dir,
                command,
                {**env, **(allocation.environment(env) if allocation else {})},
                working_dir,
                deadline_seconds,
                grace_period_seconds,
                allocation,
            )
        except BaseException:
            self.resources.release(trial_name)
            raise

    def _allocate(self, trial_name: str, manifest: Mapping[str, Any] | None) -> Allocation | None:
        """The devices and CPUs of the trial's request, or None if it asks for none."""
        labels = ((manifest or {}).get("metadata") or {}).get("labels") or {}
        primary = self._primary_containers.get(labels.get(_EXPERIMENT_LABEL, ""))
        where = _container_field(primary)
        request = parse_request(_find_container(manifest or {}, primary), where)
        if request.empty:
            return None
        self.resources.check(request, where)
        self._hold_what_runs_on_disk()
        allocation = self.resources.acquire(trial_name, request)
        if allocation is None:
            raise ResourcesBusyError(
                f"trial {trial_name!r}: {self.resources.waiting_message(request)}"
            )
        return allocation

    def close(self) -> None:
        """Let the fork server go (it exits once the supervisors it started have ended)."""
        with self._lock:
            server, self._server = self._server, None
            launched = list(self._launched.values())
        for handle in launched:  # running on: a poll of them asks the process
            with handle.lock:
                handle.close_done()
        if server is not None:
            server.close()

    # -- watch ---------------------------------------------------------------------------

    def poll(self, handle: TrialHandle) -> Outcome | None:
        h = self._own(handle)
        with h.lock:
            if h.outcome is None:
                # Its last record written, the supervisor only exits: what it wrote is final
                # (it reaped the whole trial before writing it).
                outcome = trial_state.read_outcome(h.trial_dir) if h.outcome_written() else None
                if outcome is None and not self._supervisor_alive(h):
                    outcome = trial_state.read_outcome(h.trial_dir) or self._lost(h)
                if outcome is not None:
                    h.outcome = outcome
                    h.close_done()
                    with self._lock:  # reaped: adopt() no longer needs our Popen
                        self._launched.pop(h.trial_dir, None)
                    self.resources.release(h.trial_name)
            return h.outcome

    def wait(self, handle: TrialHandle, timeout: float | None = None) -> Outcome | None:
        h = self._own(handle)
        if h.popen is not None:
            if not _wait_for_exit(h.popen, timeout):
                return None
        elif h.outcome is None and h.supervisor is not None:
            if trial_state.wait_for_process(h.supervisor, timeout) is False:
                return None
        return super().wait(h, timeout)

    def exit_descriptor(self, handle: TrialHandle) -> int | None:
        h = self._own(handle)
        with h.lock:
            if h.outcome is not None:
                return -1
            if h.done is not None:
                return os.dup(h.done)  # readable as soon as outcome.json is written
        if h.popen is not None or h.supervisor is None:
            return None  # our own child (reaped by `wait`), or a supervisor not yet known
        return trial_state.process_descriptor(h.supervisor)

    def kill(self, handle: TrialHandle) -> None:
        h = self._own(handle)
        with h.lock:
            if h.outcome is not None or (h.trial_dir / sv.OUTCOME_FILE).exists():
                return
            # The marker survives us: a supervisor killed before its handlers were installed
            # then reads as KILLED rather than LOST, also to a restarted controller.
            (h.trial_dir / sv.KILL_MARKER_FILE).touch()
            if not self._signal_supervisor(h, signal.SIGTERM):
                trial_state.kill_orphaned_group(h.trial_dir)

    def log_path(self, handle: TrialHandle) -> Path:
        return self._own(handle).trial_dir / sv.LOG_FILE


def _wait_for_exit(popen: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Whether our child ``popen`` ended within ``timeout`` seconds (and is reaped).

    Where the OS has pidfds (Linux 5.3+), woken the moment it exits: ``Popen.wait`` with a
    timeout polls with sleeps of up to 50 ms, which a quick trial would spend idle.
    """
    if popen.returncode is None and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:  # reaped meanwhile (ProcessLookupError), or no pidfd support
            pidfd = -1
        if pidfd >= 0:
            try:
                # poll, not select: a busy controller's descriptors may pass FD_SETSIZE.
                waiter = select.poll()
                waiter.register(pidfd, select.POLLIN)
                ready = waiter.poll(None if timeout is None else max(timeout, 0.0) * 1000)
            finally:
                os.close(pidfd)
            if not ready:
                return False
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _container_field(primary: str | None) -> str:
    return f"spec.trialTemplate.trialSpec container {primary or 'primary'!r}"


def _find_container(manifest: Mapping[str, Any], primary: str | None) -> Mapping[str, Any] | None:
    """The container named ``primary`` where the trial's kind keeps its containers (a Job, a
    training job's replicas with the primary replica first, ...); without a name, the only
    container."""
    containers = find_containers(manifest)
    if primary is None:
        return containers[0].body if len(containers) == 1 else None
    return next((c.body for c in containers if c.name == primary), None)
