"""The local executor: each trial is a process group on this machine, watched by a small
supervisor process (forked by a fork server on Linux) so that it survives, and can be
re-adopted after, a controller crash."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import select
import shutil
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
    Executor,
    ExecutorOptions,
    ExitReason,
    InvalidReferenceError,
    LaunchError,
    LaunchPlanner,
    Outcome,
    ResourcesBusyError,
    TrialHandle,
)
from tuner.executors._devices import Allocation, ResourcePool, parse_request
from tuner.executors._local_state import ProcessId
from tuner.executors._local_template import check_kind, ignored_fields
from tuner.spec import find_containers

if TYPE_CHECKING:
    from tuner.spec import Experiment, RenderedTrial

log = logging.getLogger(__name__)

REFERENCE_VERSION = 1
DEFAULT_GRACE_PERIOD_SECONDS = 10.0
# Trial names become directory names: no separators, no "." or "..".
_TRIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_PYTHON_NAMES = frozenset({"python", "python3"})
_EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
RESOURCES_FILE = "resources.json"
"""What a trial holds (devices, CPUs), written before its supervisor starts."""


class LocalTrialHandle(TrialHandle):
    """A trial run by :class:`LocalExecutor`."""

    def __init__(
        self,
        trial_name: str,
        trial_dir: Path,
        supervisor: ProcessId | None,
        popen: subprocess.Popen[bytes] | None = None,
        allocation: Allocation | None = None,
        done: int | None = None,
    ) -> None:
        reference: dict[str, Any] = {
            "executor": LocalExecutor.name,
            "version": REFERENCE_VERSION,
            "trial_name": trial_name,
            "trial_dir": str(trial_dir),
            "log_path": str(trial_dir / sv.LOG_FILE),
        }
        if supervisor is not None:
            reference.update(
                pid=supervisor.pid,
                start_ticks=supervisor.start_ticks,
                boot_id=supervisor.boot_id,
            )
        if allocation is not None:
            reference["resources"] = allocation.to_json()
        super().__init__(trial_name, reference)
        self.trial_dir = trial_dir
        self.supervisor = supervisor
        self.popen = popen
        self.allocation = allocation
        self.outcome: Outcome | None = None
        self.lock = threading.Lock()
        # The read end of a pipe whose only write end a supervisor forked for this process
        # holds until it has written outcome.json (then closes it): readable at once,
        # where the supervisor's exit comes a few hundred microseconds later.
        self.done = done

    def outcome_written(self) -> bool:
        """Whether the supervisor said it wrote outcome.json (or died: then it did not)."""
        if self.done is None:
            return False
        waiter = select.poll()
        waiter.register(self.done, select.POLLIN)
        return bool(waiter.poll(0))

    def close_done(self) -> None:
        if self.done is not None:
            os.close(self.done)
            self.done = None


class LocalExecutor(Executor):
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
    dies), ``supervisor.json`` (pids and start times), ``outcome.json`` and a lock file held
    while the supervisor lives: the same records whichever way the supervisor started, so
    a controller adopts the trials of the other way (and of older versions).

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

    name = "local"
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

    def _hold_what_runs_on_disk(self) -> None:
        """Hold the devices of trials still running in ``run_dir``, also those no controller
        has adopted yet (another experiment's, not resumed yet): their records on disk say
        what they hold, whatever this process remembers. Scanned once, at the first request;
        a trial found so lets its devices go when its supervisor has ended."""
        with self._scan_lock:
            if self._found_holding is None:
                self._found_holding = {}
                for recorded in self.run_dir.glob(f"*/{RESOURCES_FILE}"):
                    trial_dir = recorded.parent
                    allocation = Allocation.from_json(trial_state.read_json(recorded))
                    if allocation is not None and trial_state.lock_is_held(trial_dir):
                        self._found_holding[trial_dir.name] = trial_dir
                        self.resources.hold(trial_dir.name, allocation)
            for name, trial_dir in list(self._found_holding.items()):
                if not trial_state.lock_is_held(trial_dir):  # its supervisor has ended
                    del self._found_holding[name]
                    self.resources.release(name)

    def _launch(
        self,
        trial_name: str,
        trial_dir: Path,
        command: list[str],
        env: Mapping[str, str],
        working_dir: str | Path | None,
        deadline_seconds: float | None,
        grace_period_seconds: float | None,
        allocation: Allocation | None,
    ) -> LocalTrialHandle:
        child_env = self.trial_environment(env)
        cwd = self.default_working_dir / (working_dir or "")
        deadline = None if deadline_seconds is None else _positive(deadline_seconds)
        grace = (
            self.grace_period_seconds
            if grace_period_seconds is None
            else _non_negative(grace_period_seconds, "grace_period_seconds")
        )
        try:
            try:
                trial_dir.mkdir()
            except FileNotFoundError:  # the first trial: the run directory comes first
                self.run_dir.mkdir(parents=True, exist_ok=True)
                trial_dir.mkdir()
        except FileExistsError as e:
            raise LaunchError(
                f"trial {trial_name!r}: {trial_dir} already exists, so this trial was launched"
                " before; adopt() or find() it instead of launching it twice"
            ) from e
        except OSError as e:
            raise LaunchError(f"run directory {self.run_dir}: {e.strerror}") from e
        if allocation is not None:
            # Before the supervisor exists: a restarted controller that finds this trial by
            # its directory knows what it holds.
            (trial_dir / RESOURCES_FILE).write_text(
                json.dumps(allocation.to_json()), encoding="utf-8"
            )
        cpus = (
            ""
            if allocation is None or allocation.cpus is None
            else ",".join(map(str, allocation.cpus))
        )
        fds = [-1, -1, -1]  # the trial's log, its lock, the pipe's write end: ours to close
        done = -1  # the pipe's read end, the handle's once a supervisor is forked
        try:
            try:
                fds[0] = os.open(
                    trial_dir / sv.LOG_FILE,
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                    0o644,
                )
                fds[1] = _locked(trial_dir)
                if self._use_fork_server:
                    done, fds[2] = os.pipe()  # close-on-exec, both
            except OSError as e:
                raise LaunchError(f"trial {trial_name!r}: cannot create its files: {e}") from e
            forked, supervisor = self._fork_supervisor(
                trial_dir, cwd, deadline, grace, command, child_env, cpus, fds
            )
            if forked:
                handle = LocalTrialHandle(
                    trial_name, trial_dir, supervisor, None, allocation, done=done
                )
                done = -1
            else:
                popen = self._spawn_supervisor(
                    trial_name,
                    trial_dir,
                    cwd,
                    deadline,
                    grace,
                    command,
                    child_env,
                    cpus,
                    fds[0],
                    fds[1],
                )
                supervisor = ProcessId(popen.pid, sv.proc_start_ticks(popen.pid), sv.boot_id())
                handle = LocalTrialHandle(trial_name, trial_dir, supervisor, popen, allocation)
        finally:
            for fd in (*fds, done):
                if fd >= 0:
                    os.close(fd)
        with self._lock:
            self._launched[trial_dir] = handle
        return handle

    def _fork_supervisor(
        self,
        trial_dir: Path,
        cwd: Path,
        deadline: float | None,
        grace: float,
        command: list[str],
        env: Mapping[str, str],
        cpus: str,
        fds: list[int],
    ) -> tuple[bool, ProcessId | None]:
        """Have the fork server fork the trial's supervisor: (True, its id or None if it
        runs but is not known yet), or (False, None) if there is no fork server to ask (then
        nothing was started). ``fds`` are the trial's log and lock, and the write end of its
        "outcome written" pipe; the lock may be replaced.

        Should the server die mid-request, the trial's lock tells whether it forked the
        supervisor (which holds the lock, or has left its records): if so, that is the
        trial; if not, a new server is started and asked once more. A trial never starts
        twice.
        """
        for _ in range(2):
            server = self._fork_server()
            if server is None:
                return False, None
            try:
                pid, start_ticks = server.start_supervisor(
                    trial_dir=str(trial_dir),
                    working_dir=str(cwd),
                    deadline=deadline,
                    grace=grace,
                    argv=command,
                    env=env,
                    cpus=cpus,
                    log_fd=fds[0],
                    lock_fd=fds[1],
                    done_fd=fds[2],
                )
            except forkserver.RequestRefusedError as e:
                raise LaunchError(
                    f"trial {trial_dir.name!r}: cannot start its supervisor: {e}"
                ) from e
            except forkserver.ServerGoneError as e:
                log.warning("local executor: %s; starting a new one", e)
                os.close(fds[1])
                fds[1] = -1
                try:
                    fds[1] = _locked(trial_dir, blocking=False)
                except OSError:
                    # BlockingIOError: a forked supervisor holds it, the trial runs. Other
                    # errors: unknown, so taken as started (its records will tell).
                    return True, None
                if not _never_started(trial_dir, lock_checked=True):
                    return True, trial_state.identity_from_disk(trial_dir)  # ran and ended
                continue
            return True, ProcessId(pid, start_ticks, trial_state.this_boot())
        log.warning(
            "local executor: two fork servers in a row died; each trial now gets a supervisor"
            " process of its own"
        )
        self._use_fork_server = False
        return False, None

    def _fork_server(self) -> forkserver.ForkServer | None:
        """The live fork server, started if need be; None where supervisors are not forked
        (not Linux) or the server cannot be started."""
        if not self._use_fork_server:
            return None
        with self._lock:
            if self._server is not None and self._server.alive():
                return self._server
            if self._server is not None:
                self._server.close()
            try:
                # tuner's own interpreter, not the trials' (python_executable): a known one.
                self._server = forkserver.ForkServer(sys.executable or self.python_executable)
            except OSError as e:
                log.warning(
                    "local executor: cannot start its fork server (%s); each trial gets a"
                    " supervisor process of its own",
                    e,
                )
                self._server = None
                self._use_fork_server = False
            return self._server

    def _spawn_supervisor(
        self,
        trial_name: str,
        trial_dir: Path,
        cwd: Path,
        deadline: float | None,
        grace: float,
        command: list[str],
        env: Mapping[str, str],
        cpus: str,
        log_fd: int,
        lock_fd: int,
    ) -> subprocess.Popen[bytes]:
        """Start ``python -I -S _supervisor.py`` for the trial: the way where there is no
        fork server."""
        supervisor_env = dict(env)
        if cpus:
            # Read (and removed) by the supervisor, which pins itself: the trial inherits it.
            supervisor_env[sv.AFFINITY_VARIABLE] = cpus
        supervisor_argv = [
            self.python_executable,
            "-I",  # ignore PYTHON* variables meant for the trial
            "-S",  # no site-packages: faster, and the supervisor needs only the stdlib
            sv.__file__,
            str(trial_dir),
            str(cwd),
            "-" if deadline is None else repr(deadline),
            repr(grace),
        ]
        try:
            return subprocess.Popen(
                [*supervisor_argv, str(lock_fd), "--", *command],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                env=supervisor_env,
                cwd=trial_dir,
                start_new_session=True,  # Ctrl-C on the controller's terminal spares trials
                close_fds=True,
                pass_fds=(lock_fd,),
            )
        except OSError as e:
            raise LaunchError(f"trial {trial_name!r}: cannot start its supervisor: {e}") from e

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

    def resolve_argv(self, argv: Sequence[str]) -> list[str]:
        """The argv that will run: validated, ``python``/``python3`` mapped (see class doc)."""
        if isinstance(argv, (str, bytes)) or not argv:
            raise LaunchError(f"argv: {argv!r} is not a non-empty list of strings")
        command = []
        for i, arg in enumerate(argv):
            if not isinstance(arg, str):
                raise LaunchError(f"argv[{i}]: {arg!r} is not a string")
            if "\0" in arg:
                raise LaunchError(
                    f"argv[{i}]: {arg!r} contains a NUL byte, which no argument can hold"
                )
            command.append(arg)
        if command[0] in _PYTHON_NAMES:
            command[0] = self.python_executable
        return command

    def trial_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The trial's full environment (precedence in the class doc)."""
        merged = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for key, value in env.items():
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise LaunchError(f"env: {key!r} is not a valid environment variable name")
            if not isinstance(value, str) or "\0" in value:
                raise LaunchError(f"env.{key}: {value!r} is not a string without NUL bytes")
            merged[key] = value
        return merged

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

    # -- adopt ---------------------------------------------------------------------------

    def adopt(self, reference: Mapping[str, Any]) -> LocalTrialHandle | None:
        trial_name, trial_dir, supervisor = self._parse_reference(reference)
        with self._lock:
            launched = self._launched.get(trial_dir)
        if launched is not None:
            return launched  # our own child: keep the Popen, which reaps it
        if supervisor is None:
            supervisor = trial_state.identity_from_disk(trial_dir)
        if supervisor is None or not supervisor.is_running():
            if not trial_dir.is_dir():
                return None
            if _never_started(trial_dir):
                # Its launcher died between creating the directory and the supervisor
                # recording itself (which it does before starting the command): the command
                # never ran. Clear the directory so that the trial is launched, once.
                shutil.rmtree(trial_dir, ignore_errors=True)
                return None
        # What it holds comes from what was stored with it, not from this process's memory:
        # held until its outcome is read, also when it ended while nobody watched.
        allocation = Allocation.from_json(reference.get("resources")) or Allocation.from_json(
            trial_state.read_json(trial_dir / RESOURCES_FILE)
        )
        if allocation is not None:
            self.resources.hold(trial_name, allocation)
        return LocalTrialHandle(trial_name, trial_dir, supervisor, allocation=allocation)

    def find(self, trial_name: str) -> LocalTrialHandle | None:
        trial_dir = self._trial_dir(trial_name)
        return self.adopt(
            {"executor": self.name, "trial_name": trial_name, "trial_dir": str(trial_dir)}
        )

    # -- internals -----------------------------------------------------------------------

    def _trial_dir(self, trial_name: str) -> Path:
        if not isinstance(trial_name, str) or not _TRIAL_NAME.fullmatch(trial_name):
            raise LaunchError(
                f"trial_name: {trial_name!r} is not a valid trial name (letters, digits, '-',"
                " '_', '.'; starting with a letter or digit; at most 253 characters)"
            )
        return self.run_dir / trial_name

    def _own(self, handle: TrialHandle) -> LocalTrialHandle:
        if not isinstance(handle, LocalTrialHandle):
            raise TypeError(f"handle: {handle!r} was not returned by a LocalExecutor")
        return handle

    def _parse_reference(self, reference: Mapping[str, Any]) -> tuple[str, Path, ProcessId | None]:
        if reference.get("executor") != self.name:
            raise InvalidReferenceError(
                f"reference.executor: {reference.get('executor')!r} is not {self.name!r}; this"
                " trial was launched by another executor"
            )
        version = reference.get("version", REFERENCE_VERSION)
        if version != REFERENCE_VERSION:
            raise InvalidReferenceError(
                f"reference.version: {version!r} is not supported (expected {REFERENCE_VERSION})"
            )
        trial_name = reference.get("trial_name")
        if not isinstance(trial_name, str):
            raise InvalidReferenceError(f"reference.trial_name: {trial_name!r} is not a string")
        raw_dir = reference.get("trial_dir")
        trial_dir = Path(raw_dir) if isinstance(raw_dir, str) else self._trial_dir(trial_name)
        pid = reference.get("pid")
        if pid is None:
            return trial_name, trial_dir, None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise InvalidReferenceError(f"reference.pid: {pid!r} is not a process id")
        return (
            trial_name,
            trial_dir,
            ProcessId(pid, reference.get("start_ticks"), reference.get("boot_id")),
        )

    def _supervisor_alive(self, h: LocalTrialHandle) -> bool:
        if h.popen is not None:
            return h.popen.poll() is None  # also reaps it
        if h.supervisor is None:
            h.supervisor = trial_state.identity_from_disk(h.trial_dir)
        if h.supervisor is not None:
            return h.supervisor.is_running()
        # Launched, but the supervisor has not written its identity yet: its lock tells.
        return trial_state.lock_is_held(h.trial_dir)

    def _signal_supervisor(self, h: LocalTrialHandle, signum: int) -> bool:
        """Send ``signum`` to the supervisor if it is alive; whether it was."""
        if h.popen is not None:
            if h.popen.poll() is not None:
                return False
            h.popen.send_signal(signum)
            return True
        if h.supervisor is None:
            h.supervisor = trial_state.identity_from_disk(h.trial_dir)
        if h.supervisor is None:
            return trial_state.lock_is_held(h.trial_dir)  # starting: it reads the kill marker
        return trial_state.signal_process(h.supervisor, signum)

    def _lost(self, h: LocalTrialHandle) -> Outcome:
        trial_state.kill_orphaned_group(h.trial_dir)
        if (h.trial_dir / sv.KILL_MARKER_FILE).exists():
            return Outcome(ExitReason.KILLED, message="killed on request; no outcome was recorded")
        return Outcome(
            ExitReason.LOST,
            message="lost: process gone without outcome (its supervisor died or the machine"
            " restarted)",
        )


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


def _positive(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise LaunchError(f"deadline_seconds: {value!r} is not a positive number")
    return float(value)


def _non_negative(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise LaunchError(f"{field}: {value!r} is not a non-negative number")
    return float(value)


def _never_started(trial_dir: Path, *, lock_checked: bool = False) -> bool:
    """No supervisor ever recorded itself, none holds the lock, nothing was asked or ended."""
    return (
        not (trial_dir / sv.IDENTITY_FILE).exists()
        and not (trial_dir / sv.OUTCOME_FILE).exists()
        and not (trial_dir / sv.KILL_MARKER_FILE).exists()
        and (lock_checked or not trial_state.lock_is_held(trial_dir))
    )


def _locked(trial_dir: Path, *, blocking: bool = True) -> int:
    """The trial's lock file, opened and locked: held by its supervisor while that lives."""
    fd = os.open(trial_dir / sv.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd
