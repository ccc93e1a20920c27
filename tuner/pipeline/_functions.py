"""The source of the lightweight `tune` component: kfp ships this function's body alone.

Deliberately no `from __future__ import annotations`: kfp reads the annotations as objects to
build the component interface. Every import sits inside the function, because kfp copies only
the function's source into the step (the step's Python must have tuner and kfp installed).
"""

from typing import NamedTuple

from kfp.dsl import Artifact, Output


def tune(
    experiment: str,
    db_url: str = "",
    executor: str = "local",  # tuner.executors.DEFAULT_EXECUTOR; kfp ships literals only
    timeout_seconds: int = 0,
    *,
    result: Output[Artifact],
) -> NamedTuple(  # type: ignore[valid-type]
    "TuneOutputs",
    [
        ("best_parameters", dict),
        ("best_parameters_json", str),
        ("best_objective", float),
        ("experiment_name", str),
    ],
):
    """Run a Katib v1beta1 Experiment with `tuner run` and hand on its best trial.

    `experiment` is the Experiment as YAML (or JSON) text; `db_url` the tuner database (empty:
    a SQLite file that lives only as long as the step); `executor` runs the trials (`local`:
    processes in this step's container); `timeout_seconds` bounds the run (0: no bound).
    `result` receives the whole `tuner run --output` JSON. The step fails, naming the reason,
    when the experiment fails, is invalid or runs out of time.
    """
    from tuner.pipeline.step import run_tuning

    outcome = run_tuning(
        experiment,
        db_url=db_url,
        executor=executor,
        timeout_seconds=timeout_seconds,
        output_path=result.path,
    )
    result.metadata.update(outcome.summary())
    return (
        outcome.best_parameters,
        outcome.best_parameters_json,
        outcome.best_objective,
        outcome.experiment_name,
    )
