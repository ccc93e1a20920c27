"""Running experiments inside this process: the wiring shared by `tuner run` and
`tuner.Experiment.run()` (a suggestion server on a loopback port, an executor, controllers),
and the dry run that shows a run's first trials without running them.

Callers open the store and own its lifetime; this module starts and stops everything else.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from tuner.executors import DEFAULT_EXECUTOR, DEFAULT_RUN_DIR

if TYPE_CHECKING:
    from tuner.controller import RunResult, Snapshot
    from tuner.spec import Experiment
    from tuner.store import Store
    from tuner.tls import DBManagerTLS


class RunView(Protocol):
    """What a caller shows while experiments run (``tuner run``'s progress bar and table)."""

    def running(self, name: str, total: int | None) -> contextlib.AbstractContextManager[None]:
        """Entered around the run of one experiment."""

    def update(self, snapshot: Snapshot) -> None:
        """Called by the controller after each pass of its loop."""

    def summary(self, result: RunResult) -> None:
        """Called once per experiment, after its run."""


def run_experiments(
    store: Store,
    experiments: Sequence[Experiment],
    *,
    executor: str = DEFAULT_EXECUTOR,
    suggestion_address: str | None = None,
    run_dir: str | os.PathLike[str] = DEFAULT_RUN_DIR,
    working_dir: str | os.PathLike[str] | None = None,
    poll_interval: float = 0.5,
    view: RunView | None = None,
    sigterm_as_interrupt: bool = False,
    executor_options: Mapping[str, Any] | None = None,
    suggestion_credentials: Any = None,
    dbmanager_tls: DBManagerTLS | None = None,
) -> list[RunResult]:
    """Run (or resume) ``experiments`` one after the other, to their end; their results.

    Every experiment is checked (``Controller.prepare``: spec, algorithm settings, resume
    rules) before the first one starts, so an invalid one leaves the store untouched.

    - ``suggestion_address``: a running suggestion service; None starts one in this process
      on ``127.0.0.1:0`` (real gRPC) for the duration of the call.
    - ``run_dir`` and ``working_dir`` (trials' default working directory; None: the current
      directory) go to executors that run trials on this machine; ``executor_options`` are
      the executor's own (``kubernetes``: ``kubeconfig``, ``context``; none: in-cluster
      configuration in a pod, else the default kubeconfig). See ``ExecutorOptions``.
    - ``suggestion_credentials``: ``grpc.ChannelCredentials`` to reach
      ``suggestion_address`` over TLS (``tuner.tls.channel_credentials``).
    - ``dbmanager_tls``: serve each experiment's DBManager over TLS; its trials get the
      files to reach it in ``TUNER_DBMANAGER_TLS_*``, and the in-process suggestion server
      (early stopping) reads from it with the same files.
    - ``sigterm_as_interrupt``: turn SIGTERM into KeyboardInterrupt while trials run (only
      from the main thread), so that ``kill`` stops a run as cleanly as Ctrl-C.

    Raises ``tuner.controller.ExperimentRefusedError`` (nothing was written),
    ``ControllerError``, ``tuner.executors.ExecutorError``, ``tuner.store.StoreError``, and
    ``UnknownExecutorError`` for an unknown ``executor``. KeyboardInterrupt kills the
    running trials (recorded as Killed) and propagates; the experiment stays resumable.
    """
    from tuner.controller import Controller, SuggestionClient
    from tuner.executors import ExecutorOptions, get_executor_class

    options = ExecutorOptions(run_dir, working_dir, dict(executor_options or {}))
    with (
        serve_suggestions(suggestion_address, dbmanager_tls) as address,
        SuggestionClient(
            address, credentials=suggestion_credentials if suggestion_address else None
        ) as client,
        get_executor_class(executor).create(options) as runner,
    ):
        controllers = [
            Controller(
                store,
                experiment,
                client,
                runner,
                poll_interval=poll_interval,
                on_progress=view.update if view is not None else None,
                dbmanager_tls=dbmanager_tls,
            )
            for experiment in experiments
        ]
        for controller in controllers:
            controller.prepare()
        results: list[RunResult] = []
        guard = _sigterm_as_interrupt() if sigterm_as_interrupt else contextlib.nullcontext()
        with guard:
            for controller in controllers:
                if view is None:
                    results.append(controller.run())
                    continue
                with view.running(controller.name, controller.experiment.spec.max_trial_count):
                    results.append(controller.run())
                view.summary(results[-1])
    return results


def dry_run(
    experiments: Sequence[Experiment],
    *,
    executor: str = DEFAULT_EXECUTOR,
    suggestion_address: str | None = None,
    run_dir: str | os.PathLike[str] = DEFAULT_RUN_DIR,
    working_dir: str | os.PathLike[str] | None = None,
    suggestion_credentials: Any = None,
) -> list[dict[str, Any]]:
    """What a new run of ``experiments`` would start with, for each experiment its first
    reconcile pass's trials (``parallelTrialCount`` of them, at most ``maxTrialCount``), as
    the suggestion service proposes them for an experiment without trials, as the executor
    shows them (``Executor.dry_run``: ``kubernetes`` gives their trial objects, ``local``
    the argv, env and working directory it would run).

    Neither a store nor a cluster is touched: stored experiments are not looked at (a
    resumed run's next trials may differ), nothing is written or started. The suggestion
    service is ``suggestion_address`` or one in this process, as for ``run_experiments``.
    Raises ``ExperimentRefusedError`` (also for an executor without a dry run) and
    ``SuggestionError``.
    """
    from tuner.controller import (
        ExperimentRefusedError,
        SuggestionClient,
        dry_run_documents,
        first_trials,
    )
    from tuner.executors import ExecutorOptions, executor_classes, get_executor_class

    cls = get_executor_class(executor)
    if not cls.supports_dry_run:
        able = [c.name for c in executor_classes(lambda c: c.supports_dry_run)]
        raise ExperimentRefusedError(
            f"--dry-run: the {executor!r} executor has none; dry runs show the trials of"
            f" {' and '.join(able)}"
        )
    credentials = suggestion_credentials if suggestion_address else None
    with (
        serve_suggestions(suggestion_address) as address,
        SuggestionClient(address, credentials=credentials) as client,
    ):
        plans = [(e, first_trials(e, client, cls)) for e in experiments]
    options = ExecutorOptions(run_dir, working_dir)
    documents: list[dict[str, Any]] = []
    for experiment, trials in plans:
        documents += dry_run_documents(experiment, trials, cls, options)
    return documents


def algorithm_problems(experiments: Sequence[Experiment]) -> list[str]:
    """What a run without a suggestion address refuses in the experiments' algorithms
    (unknown name, settings, a parameter the algorithm cannot honour) and early-stopping
    settings: asked of a suggestion server in this process exactly as `run_experiments`
    asks it, one message per refused experiment. Raises ``SuggestionError`` when the
    server cannot be asked."""
    from tuner.controller import ExperimentRefusedError, SuggestionClient, check_algorithms

    problems = []
    with serve_suggestions(None) as address, SuggestionClient(address) as client:
        for experiment in experiments:
            try:
                check_algorithms(client, experiment)
            except ExperimentRefusedError as e:
                problems.append(str(e))
    return problems


@contextlib.contextmanager
def serve_suggestions(
    address: str | None, dbmanager_tls: DBManagerTLS | None = None
) -> Iterator[str]:
    """``address`` itself, or the address of a suggestion server started in this process on
    a loopback ephemeral port and stopped on exit (its early stopping reaching DBManagers
    with ``dbmanager_tls``'s client files)."""
    if address:
        yield address
        return
    from suggestion.service import create_server

    _route_optuna_logs()
    server, port = create_server(
        "127.0.0.1:0",
        dbmanager_credentials=None if dbmanager_tls is None else dbmanager_tls.client_credentials(),
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1.0).wait()


def _route_optuna_logs() -> None:
    # Optuna (behind tpe, multivariate-tpe, nsga2) prints INFO lines through its own stderr
    # handler; in-process they would land in the middle of the progress bar. Its verbosity
    # is set once it is imported (if ever): importing it here cost every run 0.1 s.
    _after_import("optuna", _quiet_optuna)


def _quiet_optuna(optuna: ModuleType) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _after_import(name: str, then: Callable[[ModuleType], None]) -> None:
    """``then(module)`` for the top-level module ``name``: now if it is imported, else right
    after its import, by whichever thread imports it (once, however often this is called)."""
    module = sys.modules.get(name)
    if module is not None:
        then(module)
    elif not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport(importlib.abc.MetaPathFinder):
    """A finder that leaves the finding of module ``name`` to the others, then has its
    loader call ``then(module)`` once the module is executed; it removes itself on use."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        with contextlib.suppress(ValueError):  # another thread's import removed it first
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then(module: ModuleType) -> None:
            exec_module(module)
            self.then(module)

        loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C: trials are killed and recorded, the lease released."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
