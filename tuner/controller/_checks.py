"""What can be checked about an experiment before anything is written or started: the
template renders, its metrics can be collected, and the chosen executor can run its trials.
Shared by `Controller.prepare` and the dry run."""

from __future__ import annotations

import os
from pathlib import Path

from tuner.controller._collection import TRIAL_ENV_NAMES, collection_problem, collector_config
from tuner.controller._early_stopping import validate_early_stopping
from tuner.controller._errors import ExperimentRefusedError
from tuner.controller._suggestions import SuggestionClient
from tuner.executors import Executor, LaunchError
from tuner.metrics import MetricsError, UnknownCollectorError, create_collector
from tuner.space import Parameter, Value
from tuner.spec import Experiment, SpecError, render_trial


def check_runnable(
    experiment: Experiment, executor: type[Executor], reachable_dbmanager: bool = False
) -> None:
    """Render the template once and build its metrics collector; refuse what ``executor``
    (the class: no instance is needed) cannot run, asking its capabilities and the
    collector's (``reachable_dbmanager``: see `collection_problem`). Raises
    `ExperimentRefusedError` naming the field."""
    name = experiment.metadata.name
    space = experiment.search_space()
    probe: dict[str, Value] = {p.name: _probe_value(p) for p in space.parameters}
    try:
        rendered = render_trial(experiment, f"{name}-probe", probe)
        create_collector(
            experiment.spec.metrics_collector_spec.collector.kind,
            # The follower opens its file lazily: a probe path is never touched.
            collector_config(experiment, Path(os.devnull), Path(os.devnull)),
        ).close()
    except UnknownCollectorError as e:
        raise ExperimentRefusedError(f"spec.{e}") from e
    except (SpecError, MetricsError) as e:
        # Anything else is a bug in tuner, not in the spec: let it surface as one.
        raise ExperimentRefusedError(str(e)) from e
    problem = collection_problem(experiment, executor, reachable_dbmanager)
    if problem is not None:
        raise ExperimentRefusedError(f"spec.{problem}")
    try:
        # tuner sets these itself (a Katib SDK template reads KATIB_TRIAL_NAME from a label).
        executor.check_template(rendered, provided_env=TRIAL_ENV_NAMES)
    except LaunchError as e:
        raise ExperimentRefusedError(str(e)) from e


def check_algorithms(client: SuggestionClient, experiment: Experiment) -> None:
    """The algorithm (name and settings, against the search space) and the early-stopping
    settings, as the suggestion service behind ``client`` validates them. Raises
    `ExperimentRefusedError` (`InvalidSettingsError`) with the service's message, and
    `SuggestionError` when the service cannot be asked."""
    client.validate(experiment)
    if experiment.spec.early_stopping is not None:
        validate_early_stopping(client, experiment)


def prepare_executor(executor: Executor, experiment: Experiment) -> None:
    """``executor.prepare(experiment)``: its `LaunchError` (a template this executor cannot
    run) is input the user must fix, so it becomes `ExperimentRefusedError`."""
    try:
        executor.prepare(experiment)
    except LaunchError as e:
        raise ExperimentRefusedError(str(e)) from e


def _probe_value(parameter: Parameter) -> Value:
    """Some value of the parameter, to render the template once before running anything."""
    if parameter.values:
        return parameter.values[0]
    value = parameter.min if parameter.min is not None else parameter.max
    return value if value is not None else 0
