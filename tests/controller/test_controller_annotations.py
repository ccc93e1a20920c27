"""The controller stores the Experiment's annotations with it, and a resume follows the
annotation rules: a changed cap is stored, a changed checkpoint volume is refused."""

from __future__ import annotations

import pytest

from tuner.controller import ExperimentRefusedError
from tuner.spec import MAX_OBSERVATIONS_ANNOTATION, Experiment

VOLUME = "tuner.kubeflow.org/checkpoint-volume"


def annotated(experiment: Experiment, annotations: dict[str, str]) -> Experiment:
    document = experiment.to_dict()
    document["metadata"]["annotations"] = annotations
    return Experiment.model_validate(document)


def test_a_run_stores_the_experiments_annotations(bench) -> None:
    experiment = annotated(bench.experiment(), {MAX_OBSERVATIONS_ANNOTATION: "50", VOLUME: "a"})

    assert bench.controller(experiment).run().succeeded

    stored = bench.store.get_experiment("exp")
    assert stored.annotations == {MAX_OBSERVATIONS_ANNOTATION: "50", VOLUME: "a"}
    assert stored.experiment.max_observations_per_metric == 50


def test_resuming_with_another_cap_stores_it(bench) -> None:
    spec = bench.experiment(max_trials=4).to_dict()["spec"]
    bench.store.create_experiment("exp", "default", spec, {MAX_OBSERVATIONS_ANNOTATION: "50"})

    resumed = annotated(bench.experiment(max_trials=4), {MAX_OBSERVATIONS_ANNOTATION: "7"})
    controller = bench.controller(resumed)
    decision = controller.prepare()
    assert decision.action == "continue" and decision.spec_changed
    assert controller.run().succeeded

    assert bench.store.get_experiment("exp").annotations == {MAX_OBSERVATIONS_ANNOTATION: "7"}


def test_resuming_with_another_checkpoint_volume_is_refused(bench) -> None:
    spec = bench.experiment().to_dict()["spec"]
    bench.store.create_experiment("exp", "default", spec, {VOLUME: "a"})

    with pytest.raises(ExperimentRefusedError, match=rf"metadata.annotations\['{VOLUME}'\]: "):
        bench.controller(annotated(bench.experiment(), {VOLUME: "b"})).prepare()

    assert bench.store.get_experiment("exp").annotations == {VOLUME: "a"}
