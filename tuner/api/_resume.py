"""What ``Experiment.run()`` does before and around the engine: a throw-away store for
``db=None``, the resume check in the Python API's own words, and the per-trial callbacks."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.api._build import Inputs, python_path
from tuner.api._errors import InvalidExperimentError
from tuner.api._pickled import FINGERPRINT_FLAG, PICKLED_FLAG
from tuner.api._result import TrialResult, trial_result
from tuner.spec import Experiment as KatibExperiment

if TYPE_CHECKING:
    from tuner.controller import RunResult, Snapshot
    from tuner.store import Store

TrialCallback = Callable[[TrialResult], object]
"""Called in the process of ``Experiment.run()`` with each trial once it finished."""


@dataclass(frozen=True)
class Scratch:
    """The files of a ``db=None`` run: its SQLite database (deleted when the run returns)
    and its trials' directories (deleted when Python exits, so ``log_path`` stays
    readable in the session)."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "tuner.db"

    @property
    def runs(self) -> Path:
        return self.root / "runs"


@contextlib.contextmanager
def scratch_dir() -> Iterator[Scratch]:
    """A fresh temporary directory for one run without a database.

    A file, not SQLite's ``:memory:``: the store is used from several threads (controller,
    DBManager, lease renewal), each transaction on its own connection, which one shared
    in-memory connection cannot give. Its name is new for every run, so no two runs meet.
    """
    root = Path(tempfile.mkdtemp(prefix="tuner-run-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    scratch = Scratch(root)
    try:
        yield scratch
    finally:
        for path in root.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)  # tuner.db, its -wal/-shm, objective.pkl


@dataclass
class ResumePlan:
    """The spec to run (the stored experiment's own when resuming), and whether there is
    nothing to run (``done``: finished, nothing raised). ``payload_path``: where the stored
    trials expect the pickled objective."""

    spec: KatibExperiment
    done: bool = False
    payload_path: str | None = None

    def stored_result(self, store: Store) -> RunResult:
        from tuner.controller import RunResult

        return RunResult.load(store, self.spec.metadata.name, self.spec.search_space())


def check_resume(
    store: Store,
    spec: KatibExperiment,
    db: str | None,
    inputs: Inputs | None,
    fingerprint: str | None,
) -> ResumePlan:
    """Compare ``spec`` with the stored experiment of its name (``db`` given) by Katib's
    rules, and refuse what they refuse with the Python argument that differs and the way
    out. The controller checks the same again; this is where the words are the user's."""
    from tuner.controller import resume_decision, spec_difference
    from tuner.store import ExperimentNotFoundError, ExperimentStatus

    if db is None:
        return ResumePlan(spec)
    name = spec.metadata.name
    try:
        stored = store.get_experiment(name)
    except ExperimentNotFoundError:
        return ResumePlan(spec)
    document = spec.to_dict()
    new = document["spec"]
    payload_path = None
    stored_args, new_args = _runner_args(stored.spec), _runner_args(new)
    if fingerprint is not None and stored_args is not None and new_args is not None:
        if _flag(stored_args, FINGERPRINT_FLAG) == fingerprint:
            # The same function: its trials keep reading the file the stored spec names.
            payload_path = _flag(stored_args, PICKLED_FLAG)
            if payload_path is not None:
                new_args[new_args.index(PICKLED_FLAG) + 1] = payload_path
    if inputs is not None and inputs.resume_policy is None:
        # Not the user's choice: the stored experiment's policy stands.
        if "resumePolicy" in stored.spec:
            new["resumePolicy"] = stored.spec["resumePolicy"]
        else:
            new.pop("resumePolicy", None)
    where = f"experiment {name!r} in {store.url}"
    way_out = (
        f"to start afresh pass another name (Experiment({name + '-2'!r}, ...)) or db, or "
        f"delete the stored one with tuner.delete({name!r}, db=...)"
    )
    diff = spec_difference(stored.spec, new)
    if diff:
        raise InvalidExperimentError(_changed(diff, inputs, where, way_out))
    total = sum(store.count_trials(name).values())
    decision = resume_decision(
        stored_spec=stored.spec,
        new_spec=new,
        finished=stored.status.is_finished(),
        succeeded=stored.status is ExperimentStatus.SUCCEEDED,
        reason=stored.reason,
        total_trials=total,
    )
    if decision.action == "refuse":
        new_max = new.get("maxTrialCount")
        if new_max is not None and new_max <= total:
            raise InvalidExperimentError(
                f"max_trials: {new_max} is not more than the {total} trials {where} already "
                f"has; pass a larger max_trials to continue it, or {way_out}"
            )
        policy = new.get("resumePolicy") or "Never"
        raise InvalidExperimentError(
            f"max_trials: {where} finished ({stored.reason}) and continues only if it stopped "
            "at max_trials and its resume_policy is 'LongRunning' or 'FromVolume' (it is "
            f"{policy!r}); {way_out}"
        )
    resumed = KatibExperiment.model_validate(document)
    if decision.action == "done":
        print(
            f"tuner: {where} already finished ({stored.reason}); returning its stored result."
            " Raise max_trials to run more trials, or use db=None (or another name) for a"
            " fresh run",
            file=sys.stderr,
        )
        return ResumePlan(resumed, done=True)
    return ResumePlan(resumed, payload_path=payload_path)


def _changed(diff: str, inputs: Inputs | None, where: str, way_out: str) -> str:
    path, _, values = diff.partition(": ")
    argument = python_path(path, inputs) if inputs is not None else path
    if argument == "objective_fn":
        return (
            f"objective_fn: {where} was started with a different function (or one shipped "
            f"differently); {way_out}"
        )
    values = values.replace(", file ", ", given ")
    return (
        f"{argument}: {values} for {where}; only max_trials, parallel_trials and "
        f"max_failed_trials may change when resuming; {way_out}"
    )


def _runner_args(spec: dict[str, Any]) -> list[Any] | None:
    """The function runner's args in a spec's single container, if it has them."""
    try:
        container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    except (KeyError, IndexError, TypeError):
        return None
    args = container.get("args") if isinstance(container, dict) else None
    return args if isinstance(args, list) and PICKLED_FLAG in args else None


def _flag(args: list[Any], flag: str) -> str | None:
    index = args.index(flag) if flag in args else -1
    return str(args[index + 1]) if 0 <= index < len(args) - 1 else None


class Callbacks:
    """Hands each trial that finished during the run to ``callbacks``, once, in the order
    the trials finish (as seen after each pass of the controller's loop). A callback that
    raises is reported on stderr with its traceback and the run goes on."""

    def __init__(
        self, store: Store, spec: KatibExperiment, callbacks: Sequence[TrialCallback]
    ) -> None:
        self._store = store
        self._name = spec.metadata.name
        self._space = spec.search_space()
        objective = spec.to_dict()["spec"].get("objective") or {}
        self._strategies = {
            s.get("name"): s.get("value") for s in objective.get("metricStrategies") or []
        }
        self._callbacks = list(callbacks)
        self._counts: object = None
        # Trials finished in an earlier run were handed over then.
        self._seen = {t.name for t in self._finished()} if self._callbacks else set()

    def update(self, snapshot: Snapshot) -> None:
        if self._callbacks and snapshot.counts != self._counts:
            self._counts = snapshot.counts
            self.deliver()

    def deliver(self) -> None:
        for record in self._finished():
            if record.name in self._seen:
                continue
            self._seen.add(record.name)
            trial = trial_result(record, self._space, self._strategies)
            for callback in self._callbacks:
                try:
                    callback(trial)
                except Exception:  # noqa: BLE001 - a callback's bug must not stop the run
                    shown = getattr(callback, "__qualname__", None) or repr(callback)
                    print(f"tuner: callback {shown} raised on trial {trial.name}:", file=sys.stderr)
                    traceback.print_exc()

    def _finished(self) -> list[Any]:
        from tuner.store import ExperimentNotFoundError

        if not self._callbacks:
            return []
        try:
            return [t for t in self._store.list_trials(self._name) if t.status.is_finished()]
        except ExperimentNotFoundError:
            return []
