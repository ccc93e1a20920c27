"""The first trials a controller would create for an experiment, found without a store or a
running trial, and what the executor would do with them: for ``tuner run --dry-run``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.controller._checkpoints import local_checkpoint, local_command, mount_volume
from tuner.controller._checks import check_runnable
from tuner.controller._collection import metrics_file, trial_command
from tuner.controller._decide import Limits, TrialCounts, name_trials, trials_to_add
from tuner.controller._early_stopping import validate_early_stopping
from tuner.controller._errors import ExperimentRefusedError
from tuner.controller._suggestions import SuggestionClient
from tuner.controller._trial_env import active_deadline
from tuner.executors import Executor, ExecutorOptions, LaunchError, LaunchRequest
from tuner.space import Assignment, SpaceError, Value
from tuner.spec import Experiment, SpecError, render_trial


def first_trials(
    experiment: Experiment, suggestions: SuggestionClient, executor: type[Executor]
) -> dict[str, Assignment]:
    """Trial name → parameters of the trials a new run of ``experiment`` starts with: as
    many as its first reconcile pass asks for (``parallelTrialCount``, at most
    ``maxTrialCount``), suggested for an experiment without trials and named as the
    controller names them.

    Checks what `Controller.prepare` checks without a store or an executor instance
    (template, collector, algorithm and early-stopping settings); raises
    `ExperimentRefusedError`, or `SuggestionError` when the suggestion service fails. The
    suggestions of a random algorithm without a seed differ from run to run.
    """
    check_runnable(experiment, executor)
    suggestions.validate(experiment)
    if experiment.spec.early_stopping is not None:
        validate_early_stopping(suggestions, experiment)
    spec = experiment.spec
    count = trials_to_add(
        TrialCounts.of(()),
        Limits(spec.parallel_trial_count, spec.max_trial_count, spec.max_failed_trial_count),
    )
    if count == 0:
        return {}
    reply = suggestions.suggest(experiment, [], count, count)
    space = experiment.search_space()
    try:
        return {
            name: space.parse(wire)
            for name, wire in name_trials(experiment.metadata.name, reply.assignments, reply.names)
        }
    except SpaceError as e:
        raise ExperimentRefusedError(
            f"the suggestion service at {suggestions.address} returned parameters that do"
            f" not fit spec.parameters: {e}"
        ) from e


def dry_run_documents(
    experiment: Experiment,
    trials: Mapping[str, Mapping[str, Value]],
    executor: type[Executor],
    options: ExecutorOptions,
) -> list[dict[str, Any]]:
    """What ``executor`` (built from ``options`` if it needs an instance) would do for each
    of ``trials``, without doing anything (``Executor.dry_run``): it gets each trial's
    launch request as a run would make it, with tuner's variables in the env (less the
    DBManager address, whose port is chosen when a run starts). Raises
    `ExperimentRefusedError`."""

    def plan(run_dir: Path | None) -> list[LaunchRequest]:
        return [_launch_request(experiment, name, a, run_dir) for name, a in trials.items()]

    try:
        return executor.dry_run(experiment, options, plan)
    except (LaunchError, SpecError) as e:
        raise ExperimentRefusedError(str(e)) from e


def _launch_request(
    experiment: Experiment, name: str, assignment: Mapping[str, Value], run_dir: Path | None
) -> LaunchRequest:
    try:
        rendered = render_trial(experiment, name, assignment)
        file = metrics_file(experiment, name, run_dir)
        argv, env = trial_command(
            experiment,
            rendered.argv,
            rendered.env,
            name,
            None,
            None if file is None else file.path,
        )
        # pbt's checkpoint directory, as a run maps it (first trials have no parent).
        manifest = rendered.manifest
        if run_dir is not None:
            checkpoint = local_checkpoint(experiment, name, {}, run_dir)
            if checkpoint is not None:
                argv, env = local_command(checkpoint, argv, env)
        else:
            manifest = mount_volume(experiment, name, {}, manifest, rendered.primary_container)
    except SpecError as e:
        raise ExperimentRefusedError(f"trial {name!r}: {e}") from e
    return LaunchRequest(
        trial_name=name,
        parameters=dict(assignment),
        argv=argv,
        env=env,
        working_dir=rendered.working_dir,
        deadline_seconds=active_deadline(manifest),
        manifest=manifest,
    )
