"""``tuner.Experiment``: build a Katib Experiment in Python (or read one from YAML), write it
as YAML, run it in this process and get a ``Result``; ``tuner.load`` reads a past one."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuner.api import _pickled
from tuner.api._build import Inputs, katib_document, python_issues, python_message
from tuner.api._errors import InvalidExperimentError, RunError
from tuner.api._params import Param
from tuner.api._resume import Callbacks, TrialCallback, check_resume, scratch_dir
from tuner.api._source import SourceError, function_source
from tuner.executors import DEFAULT_EXECUTOR
from tuner.spec import Experiment as KatibExperiment
from tuner.spec import SpecError, SpecIssue, load_file

if TYPE_CHECKING:
    from tuner.api._result import Result
    from tuner.controller import RunResult, Snapshot
    from tuner.store import Store


class Experiment:
    """A hyperparameter tuning experiment: Katib's ``kubeflow.org/v1beta1`` Experiment with
    snake_case arguments and plain Python values.

    The trial is either a command (``command=[...]``: an argv, never run through a shell,
    where ``{name}`` is replaced by the trial's value of parameter ``name`` and ``{{``/``}}``
    are literal braces; every parameter must appear) or a Python function
    (``objective_fn=train``: ``train(params)`` gets a dict of typed values and returns the
    objective as a number or a dict of metrics; it runs in its own process: local trials
    get it pickled with cloudpickle, so closures, lambdas and captured data work; YAML and
    Kubernetes get its source, see docs/python-api.md for what it may reference then).

    Both become a ``batch/v1`` Job trial template with one container
    (``training-container``, image ``image``, default ``tuner:<version>``), so ``to_yaml()``
    is a document that ``tuner run`` (and Katib, for a command trial whose image holds the
    program) accepts unchanged. Invalid arguments raise ``tuner.spec.SpecError`` whose
    issue paths name the arguments, e.g. ``parameters['lr'].min: 5.0 is greater than max 1.0``.

    Other arguments: ``objective`` is the objective metric's name and ``goal_type``
    ``"minimize"`` or ``"maximize"``; lists of names and of directions
    (``objective=["loss", "latency"], goal_type=["minimize", "minimize"]``) make a
    multi-objective experiment (algorithms ``random``, ``nsga2``, ``tpe``,
    ``multivariate-tpe``; no ``goal``), whose ``Result.pareto_front`` holds the trials no
    other trial beats in every objective; ``goal`` stops the experiment once reached;
    ``additional_metrics`` are collected too; ``metric_strategies`` maps a metric to
    ``"min"``, ``"max"`` or ``"latest"``; ``algorithm`` and ``algorithm_settings`` are
    Katib's names (values may be numbers); ``max_trials`` None means no limit (Katib's
    default: stop by goal or exhaustion), ``parallel_trials`` defaults to
    ``min(3, max_trials)``,
    ``max_failed_trials`` None means failures never stop it; ``early_stopping`` (e.g.
    ``"medianstop"``) with ``early_stopping_settings``; ``metrics_collector`` a kind
    (``"StdOut"``, the default; ``"File"``, ``"Push"``, ``"None"``) or a Katib
    ``metricsCollectorSpec`` dict; ``env`` for the trial; ``namespace``; ``resume_policy``
    (default ``"LongRunning"``: raising ``max_trials`` continues a finished experiment);
    ``resources_per_trial`` the trial container's limits, e.g. ``{"gpu": 1, "cpu": 2}``
    (with the local executor each trial gets its own GPU, named in ``CUDA_VISIBLE_DEVICES``,
    and waits for one to be free; ``cpu`` sets ``OMP_NUM_THREADS``; the GPUs shared out are
    those in this process's ``CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi -L`` lists);
    ``max_observations_per_metric`` stores about that many evenly spread reports of each
    metric per trial, plus those decisions read (latest, min, max, early-stopping steps),
    instead of every report (the annotation
    ``tuner.kubeflow.org/max-observations-per-metric``; docs/controller.md, "Huge logs").

    >>> from tuner import Experiment, Double, Int, Categorical
    >>> def train(params):
    ...     return {"accuracy": 1 - (params["lr"] - 0.01) ** 2}
    >>> experiment = Experiment(  # doctest: +SKIP
    ...     "demo",
    ...     parameters={"lr": Double(1e-4, 1e-1, log=True), "layers": Int(1, 4),
    ...                 "opt": Categorical(["sgd", "adam"])},
    ...     objective="accuracy", goal_type="maximize",
    ...     algorithm="tpe", max_trials=12, parallel_trials=3,
    ...     objective_fn=train,
    ... )
    >>> result = experiment.run(db="sqlite:///demo.db")  # doctest: +SKIP
    >>> result.best_trial.parameters  # doctest: +SKIP
    {'lr': 0.0102, 'layers': 3, 'opt': 'adam'}
    """

    def __init__(
        self,
        name: str,
        *,
        parameters: Mapping[str, Param],
        objective: str | Sequence[str],
        goal_type: str | Sequence[str],
        goal: float | None = None,
        additional_metrics: Sequence[str] = (),
        metric_strategies: Mapping[str, str] | None = None,
        algorithm: str = "random",
        algorithm_settings: Mapping[str, Any] | None = None,
        max_trials: int | None = None,
        parallel_trials: int | None = None,
        max_failed_trials: int | None = None,
        command: Sequence[str] | None = None,
        objective_fn: Callable[[dict[str, Any]], Any] | None = None,
        early_stopping: str | None = None,
        early_stopping_settings: Mapping[str, Any] | None = None,
        metrics_collector: str | Mapping[str, Any] | None = None,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        namespace: str = "default",
        resume_policy: str | None = None,
        resources_per_trial: Mapping[str, Any] | None = None,
        max_observations_per_metric: int | None = None,
    ) -> None:
        inputs = Inputs(
            name=name,
            parameters=parameters,
            objective=objective,
            goal_type=goal_type,
            goal=goal,
            additional_metrics=additional_metrics,
            metric_strategies=metric_strategies,
            algorithm=algorithm,
            algorithm_settings=algorithm_settings,
            max_trials=max_trials,
            parallel_trials=parallel_trials,
            max_failed_trials=max_failed_trials,
            command=command,
            objective_fn=objective_fn,
            early_stopping=early_stopping,
            early_stopping_settings=early_stopping_settings,
            metrics_collector=metrics_collector,
            image=image,
            env=env,
            namespace=namespace,
            resume_policy=resume_policy,
            resources_per_trial=resources_per_trial,
            max_observations_per_metric=max_observations_per_metric,
        )
        self._inputs: Inputs | None = inputs
        # Why the function cannot travel as source (YAML, Kubernetes); None if it can.
        self._source_error: str | None = None
        pickled = None
        if objective_fn is not None:
            pickled = self._check_objective(objective_fn)
        self.spec: KatibExperiment = self._validated(pickled)
        self._base_dir: Path | None = None

    def _check_objective(self, fn: Callable[..., Any]) -> _pickled.Pickled | None:
        """Checks what every run needs; the placeholder pickled form when the function
        cannot travel as source (it then runs on trials of this machine only)."""
        issue = None
        if not callable(fn):
            issue = f"{fn!r:.80} is not callable; pass a function taking the parameters dict"
        else:
            try:
                inspect.signature(fn).bind({})
            except TypeError:
                issue = (
                    f"{getattr(fn, '__qualname__', fn)!r}: the objective is called with one "
                    "argument, the parameters dict (name -> value); other parameters need "
                    "defaults"
                )
            except ValueError:
                pass  # no signature to read (a builtin): let the trial call it
        if issue is not None:
            raise SpecError([SpecIssue("objective_fn", issue)])
        try:
            function_source(fn)
            return None
        except SourceError as e:
            self._source_error = str(e)
        try:
            return _pickled.Pickled(_pickled.UNSET_PATH, _pickled.fingerprint(fn))
        except _pickled.PickleError as e:
            raise SpecError([SpecIssue("objective_fn", f"{self._source_error}; and {e}")]) from e

    def _validated(self, pickled: _pickled.Pickled | None) -> KatibExperiment:
        assert self._inputs is not None
        document = katib_document(self._inputs, default_image(), pickled)
        try:
            return KatibExperiment.model_validate(document)
        except SpecError as e:
            raise SpecError(python_issues(e, self._inputs)) from e

    @classmethod
    def from_spec(cls, spec: KatibExperiment | Mapping[str, Any]) -> Experiment:
        """Wrap a ``tuner.spec.Experiment`` (or its Katib dict form, validated here)."""
        self = cls.__new__(cls)
        self.spec = (
            spec if isinstance(spec, KatibExperiment) else KatibExperiment.model_validate(spec)
        )
        self._inputs = None
        self._source_error = None
        self._base_dir = None
        return self

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Experiment:
        """The Experiment of a Katib YAML file (one document). Its trials run in the file's
        directory by default, as with ``tuner run``. Raises ``SpecError`` (Katib paths).

        >>> experiment = Experiment.from_yaml("examples/quickstart.yaml")  # doctest: +SKIP
        """
        experiments = load_file(path)
        if len(experiments) != 1:
            raise SpecError(
                [SpecIssue("", f"holds {len(experiments)} Experiments; from_yaml reads one")],
                source=os.fspath(path),
            )
        self = cls.from_spec(experiments[0])
        self._base_dir = Path(path).resolve().parent
        return self

    @property
    def name(self) -> str:
        return self.spec.metadata.name

    def to_dict(self) -> dict[str, Any]:
        """The Katib document (camelCase, defaults applied) as plain values. Raises
        ``SpecError`` for an objective that can travel to local trials only (a closure, a
        lambda: its source cannot run on its own)."""
        self._check_portable("to_dict")
        return self.spec.to_dict()

    def _check_portable(self, what: str) -> None:
        if self._source_error is not None:
            raise SpecError(
                [
                    SpecIssue(
                        "objective_fn",
                        f"{self._source_error}. Experiment.run() with the local executor "
                        f"pickles it instead, but {what} needs its source",
                    )
                ]
            )

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The Katib YAML document; also written to ``path`` when given.

        ``Experiment.from_yaml`` and ``tuner run`` read it back unchanged.
        """
        text = yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def __repr__(self) -> str:
        return f"<tuner.Experiment {self.name!r}>"

    def run(
        self,
        db: str | None = None,
        executor: str = DEFAULT_EXECUTOR,
        progress: bool = True,
        run_dir: str | os.PathLike[str] | None = None,
        suggestion_address: str | None = None,
        *,
        working_dir: str | os.PathLike[str] | None = None,
        poll_interval: float = 0.5,
        callbacks: Sequence[TrialCallback] = (),
    ) -> Result:
        """Run the experiment to its end in this process and return its ``Result``.

        - ``db``: None (the default) keeps nothing: the run has a store of its own in a
          temporary directory, removed when ``run`` returns, so every call starts afresh,
          like Optuna's in-memory storage. A database URL (``"sqlite:///tuner.db"``, the
          one ``tuner get`` reads) keeps the experiment: a second ``run`` with the same
          name resumes it; a finished one is returned as stored (with a notice) unless
          ``max_trials`` was raised, which continues it.
        - ``executor``: ``"local"`` (trials are processes here) or ``"kubernetes"``.
        - ``progress``: a progress bar on stderr.
        - ``run_dir``: the local executor's per-trial directories (default ``./runs``; with
          ``db=None`` a temporary directory removed when Python exits, so ``log_path``
          stays readable in the session); ``working_dir``: where trials run (default: the
          YAML file's directory for ``from_yaml``, else the current directory).
        - ``suggestion_address``: a running suggestion service (default: one is started in
          this process on a loopback port for the duration of the run).
        - ``callbacks``: functions called in this process with each ``TrialResult`` as its
          trial finishes (``tuner.integrations.mlflow.MLflowCallback`` is one).

        Raises ``InvalidExperimentError`` (nothing was written; a resume it refuses names
        the argument and the way out), ``RunError`` (the run could not go on; calling
        ``run`` again resumes). Ctrl-C kills the running trials and raises
        KeyboardInterrupt; the experiment stays resumable.
        """
        from tuner import _session
        from tuner.api._result import Result
        from tuner.controller import ControllerError, ExperimentRefusedError
        from tuner.executors import ExecutorError, UnknownExecutorError, get_executor_class
        from tuner.store import StoreError

        try:
            executor_class = get_executor_class(executor)
        except UnknownExecutorError as e:
            raise InvalidExperimentError(str(e)) from e
        try:
            with contextlib.ExitStack() as stack:
                url = db
                if db is None:
                    scratch = stack.enter_context(scratch_dir())
                    url = f"sqlite:///{scratch.database}"
                    run_dir = run_dir if run_dir is not None else scratch.runs
                run_dir = Path(run_dir if run_dir is not None else _session.DEFAULT_RUN_DIR)
                spec, payload = self._spec_for(executor_class, executor, run_dir, db)
                store = stack.enter_context(_open_store(url))
                plan = check_resume(store, spec, db, self._inputs, self._fingerprint(payload))
                if plan.done:
                    return Result.from_run(plan.stored_result(store), spec.search_space())
                if payload is not None and self._inputs is not None:
                    fn = self._inputs.objective_fn
                    assert fn is not None  # a payload exists for function objectives only
                    _pickled.write(fn, plan.payload_path or payload.path)
                hooks = Callbacks(store, plan.spec, callbacks)
                (outcome,) = _session.run_experiments(
                    store,
                    [plan.spec],
                    executor=executor,
                    suggestion_address=suggestion_address,
                    run_dir=run_dir,
                    working_dir=working_dir if working_dir is not None else self._base_dir,
                    poll_interval=poll_interval,
                    view=_Progress(progress, hooks),
                )
                hooks.deliver()
                return Result.from_run(outcome, plan.spec.search_space())
        except ExperimentRefusedError as e:
            raise InvalidExperimentError(python_message(str(e), self._inputs)) from e
        except _pickled.PickleError as e:
            raise InvalidExperimentError(f"objective_fn: {e}") from e
        except (ControllerError, ExecutorError, StoreError) as e:
            raise RunError(str(e)) from e

    def _spec_for(
        self, executor_class: Any, executor: str, run_dir: Path, db: str | None
    ) -> tuple[KatibExperiment, _pickled.Pickled | None]:
        """The spec this run stores: a function objective is pickled for trials on this
        machine (``shares_host``), else shipped as source."""
        fn = self._inputs.objective_fn if self._inputs is not None else None
        if fn is None:
            return self.spec, None
        if not executor_class.shares_host:
            self._check_portable(f"executor={executor!r} (trials run elsewhere)")
            return self.spec, None
        try:
            fingerprint = _pickled.fingerprint(fn)
        except _pickled.PickleError as e:
            raise InvalidExperimentError(f"objective_fn: {e}") from e
        if db is None:
            path = run_dir.resolve().parent / "objective.pkl"
        else:
            path = run_dir.resolve() / "objectives" / f"{self.name}-{fingerprint[:16]}.pkl"
        payload = _pickled.Pickled(str(path), fingerprint)
        return self._validated(payload), payload

    @staticmethod
    def _fingerprint(payload: _pickled.Pickled | None) -> str | None:
        return None if payload is None else payload.fingerprint


def load(name: str, db: str | None = None) -> Result:
    """The stored state of experiment ``name`` (finished or not) as a ``Result``.

    ``db`` defaults to ``sqlite:///tuner.db`` in the current directory. Raises
    ``ExperimentNotFoundError`` when the database has no experiment of that name, and
    ``RunError`` when it cannot be read.

    >>> result = tuner.load("quickstart")  # doctest: +SKIP
    >>> result.status, result.best_trial.name  # doctest: +SKIP
    (<ExperimentStatus.SUCCEEDED: 'Succeeded'>, 'quickstart-zi0zfesn')
    """
    from tuner.api._result import Result
    from tuner.controller import RunResult
    from tuner.space import SearchSpace
    from tuner.store import ExperimentNotFoundError, StoreError

    try:
        with _open_store(db) as store:
            stored = store.get_experiment(name)
            space = SearchSpace(())
            with contextlib.suppress(SpecError):  # a spec this version no longer reads
                space = stored.experiment.search_space()
            return Result.from_run(RunResult.load(store, name, space), space)
    except ExperimentNotFoundError:
        raise  # tuner.ExperimentNotFoundError is the store's own
    except StoreError as e:
        raise RunError(str(e)) from e


def delete(name: str, db: str) -> None:
    """Delete experiment ``name`` with its trials and metrics from ``db`` (a database URL),
    e.g. to start it afresh under the same name. Its run must have ended (a run cut short
    by Ctrl-C or a crash has). Raises ``ExperimentNotFoundError``; ``RunError`` while a live
    run holds it (``tuner delete experiment NAME --force`` also stops its trials).

    >>> tuner.delete("demo", db="sqlite:///tuner.db")  # doctest: +SKIP
    """
    from datetime import datetime, timezone

    from tuner.store import ExperimentNotFoundError, StoreError

    try:
        with _open_store(db) as store:
            record = store.get_experiment(name)
            expires = record.lease_expires_at
            if record.lease_owner and expires is not None and expires > datetime.now(timezone.utc):
                raise RunError(
                    f"experiment {name!r} in {store.url} is being run by {record.lease_owner};"
                    " stop that run first"
                )
            store.delete_experiment(name)
    except ExperimentNotFoundError:
        raise
    except StoreError as e:
        raise RunError(str(e)) from e


@contextlib.contextmanager
def _open_store(db: str | None) -> Iterator[Store]:
    from tuner.store import Store

    store = Store.open(db)  # None: tuner.db in the working directory, as `tuner run` uses
    try:
        yield store
    finally:
        store.close()


class _Progress:
    """``tuner run``'s progress bar (when ``enabled``), without its final table (the caller
    has the Result); each pass also hands finished trials to the callbacks."""

    def __init__(self, enabled: bool, callbacks: Callbacks) -> None:
        from tuner._progress import View

        self._view = View(enabled=enabled)
        self._callbacks = callbacks

    def running(self, name: str, total: int | None) -> contextlib.AbstractContextManager[None]:
        return self._view.running(name, total)

    def update(self, snapshot: Snapshot) -> None:
        self._view.update(snapshot)
        self._callbacks.update(snapshot)

    def summary(self, result: RunResult) -> None:
        pass


_version: str | None = None


def default_image() -> str:
    """``tuner:<installed version>``: the image built from this repository's Dockerfile."""
    global _version
    if _version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _version = version("tuner")
        except PackageNotFoundError:
            _version = "latest"
    return f"tuner:{_version}"


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings (a function's source) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
