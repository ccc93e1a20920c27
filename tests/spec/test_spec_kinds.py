"""Trial kinds in the spec: Katib's defaults per kind (Job, the Kubeflow training jobs,
TrainJob), conditions required where Katib requires them, and primaryContainerName checked
against the containers where each kind keeps them, named as its pods name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner.spec import (
    Experiment,
    SpecError,
    find_containers,
    load_file,
    render_trial,
    trial_kind,
)

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "katib"


def corpus(name: str) -> Experiment:
    (experiment,) = load_file(CORPUS / name)
    return experiment


def with_template(experiment: Experiment, **changes: Any) -> dict[str, Any]:
    document = experiment.model_dump(by_alias=True, exclude_none=True, mode="json")
    template = document["spec"]["trialTemplate"]
    for key in ("successCondition", "failureCondition", "primaryPodLabels"):
        template.pop(key, None)  # as written, before Katib's defaults
    template.update(changes)
    return document


@pytest.mark.parametrize(
    ("name", "success", "labels"),
    [
        ("job-random.yaml", 'status.conditions.#(type=="Complete")#|#(status=="True")#', {}),
        (
            "pytorchjob-mnist.yaml",
            'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
            {"training.kubeflow.org/job-role": "master"},
        ),
        (
            "jaxjob.yaml",
            'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
            {"training.kubeflow.org/job-role": "master"},
        ),
        (
            "trainjob-pytorch.yaml",
            'status.conditions.#(type=="Complete")#|#(status=="True")#',
            {
                "jobset.sigs.k8s.io/replicatedjob-name": "node",
                "batch.kubernetes.io/job-completion-index": "0",
            },
        ),
    ],
)
def test_katib_defaults_conditions_and_primary_pod_labels_per_kind(name, success, labels):
    template = corpus(name).spec.trial_template
    assert template.success_condition == success
    assert template.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert template.primary_pod_labels == labels


@pytest.mark.parametrize(
    "name", ["argo-workflow.yaml", "tekton-pipeline-run.yaml", "custom-kind.yaml"]
)
def test_kinds_without_defaults_need_their_conditions(name):
    document = with_template(corpus(name))
    with pytest.raises(SpecError) as caught:
        Experiment.model_validate(document)
    kind = document["spec"]["trialTemplate"]["trialSpec"]["kind"]
    assert f"spec.trialTemplate.successCondition: required for kind '{kind}'" in str(caught.value)
    assert "spec.trialTemplate.failureCondition: required" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "containers"),
    [
        ("argo-workflow.yaml", "'main'"),
        ("tekton-pipeline-run.yaml", "'step-epochs-optimize', 'step-model-training'"),
        ("trainjob-pytorch.yaml", "'node'"),
        ("pytorchjob-mnist.yaml", "'pytorch'"),
    ],
)
def test_a_wrong_primary_container_name_lists_the_containers_of_the_kind(name, containers):
    experiment = corpus(name)
    template = experiment.spec.trial_template
    document = with_template(
        experiment,
        primaryContainerName="nope",
        successCondition=template.success_condition,
        failureCondition=template.failure_condition,
    )
    with pytest.raises(SpecError) as caught:
        Experiment.model_validate(document)
    kind = template.trial_spec["kind"] if template.trial_spec else ""
    assert (
        f"spec.trialTemplate.primaryContainerName: 'nope' names no container of the {kind}"
        f" (its containers, as its pods name them: {containers})"
    ) in str(caught.value)


def test_training_jobs_put_the_primary_replica_first_wherever_it_stands():
    trial_spec = corpus("pytorchjob-mnist.yaml").spec.trial_template.trial_spec or {}
    replicas = trial_spec["spec"]["pytorchReplicaSpecs"]
    trial_spec["spec"]["pytorchReplicaSpecs"] = {
        "Worker": replicas["Worker"],
        "Master": replicas["Master"],
    }
    assert [c.path.split(".")[2] for c in find_containers(trial_spec)] == ["Master", "Worker"]


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("TrainingRun", "trainingruns"),
        ("Policy", "policies"),
        ("Index", "indexes"),
        ("Day", "days"),
    ],
)
def test_unlisted_kinds_get_the_plural_kubernetes_guesses(kind, plural):
    assert trial_kind("example.com/v1", kind).plural == plural


def test_another_version_of_a_listed_kind_keeps_its_behaviour():
    kind = trial_kind("kubeflow.org/v2", "PyTorchJob")
    assert (kind.plural, kind.pod_name_label) == ("pytorchjobs", "training.kubeflow.org/job-name")


def test_a_kind_that_keeps_its_containers_elsewhere_is_not_checked_as_in_katib():
    experiment = corpus("tekton-pipeline-run.yaml")
    template = experiment.spec.trial_template
    document = with_template(
        experiment,
        successCondition=template.success_condition,
        failureCondition=template.failure_condition,
    )
    document["spec"]["trialTemplate"]["trialSpec"]["spec"] = {
        "pipelineRef": {"name": "train"},
        "params": [{"name": "lr", "value": "${trialParameters.learningRate}"}],
    }
    document["spec"]["parameters"] = document["spec"]["parameters"][:1]  # lr only
    document["spec"]["trialTemplate"]["trialParameters"] = [
        {"name": "learningRate", "reference": "lr"}
    ]
    experiment = Experiment.model_validate(document)
    trial = render_trial(experiment, "exp-x", {"lr": 0.02})
    assert trial.manifest["spec"]["params"] == [{"name": "lr", "value": "0.02"}]
    assert (trial.primary_container, trial.argv) == ({}, [])
