"""Validation: every issue of a document is reported with its path; Katib-valid input that is
unusual (dumps, numbers as YAML numbers, metadata references) is accepted. The one-rule cases
live in the invalid corpus (test_spec_corpus.py)."""

from __future__ import annotations

import math

import pytest

from tuner.space import Direction
from tuner.spec import (
    MAX_OBSERVATIONS_ANNOTATION,
    AlgorithmSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    ObjectiveSpec,
    ObjectMeta,
    ParameterSpec,
    ParameterType,
    SpecError,
    SpecIssue,
    TrialParameterSpec,
    TrialTemplate,
)


def test_all_issues_of_a_document_are_reported_together(kit) -> None:
    doc = kit.doc(paralelTrialCount=2)
    doc["metadata"]["name"] = "Bad_Name"
    doc["spec"]["objective"]["type"] = "minimise"
    doc["spec"]["parameters"][0]["feasibleSpace"] = {"min": "5", "max": "1"}
    doc["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Kustom"}}
    assert sorted(kit.paths(doc)) == [
        "metadata.name",
        "spec.metricsCollectorSpec.collector.kind",
        "spec.objective.type",
        "spec.paralelTrialCount",
        "spec.parameters[0].feasibleSpace.min",
    ]


def test_issue_messages_name_the_bad_value_and_the_rule(kit) -> None:
    doc = kit.doc(maxTrialCount=4, parallelTrialCount=6)
    [issue] = kit.issues(doc)
    assert str(issue) == "spec.parallelTrialCount: 6 is greater than maxTrialCount 4"


def test_unknown_field_suggests_the_known_name(kit) -> None:
    [issue] = kit.issues(kit.doc(maxTrailCount=3))
    assert issue == SpecIssue("spec.maxTrailCount", "unknown field (did you mean 'maxTrialCount'?)")


def test_spec_error_is_a_value_error_listing_every_issue(kit) -> None:
    doc = kit.doc(maxTrialCount=0)
    doc["metadata"]["name"] = ""
    with pytest.raises(ValueError) as caught:
        kit.load(doc)
    assert isinstance(caught.value, SpecError)
    text = str(caught.value)
    assert "spec.maxTrialCount: 0 is less than 1" in text
    assert "metadata.name: required" in text


def test_free_form_content_and_server_fields_are_accepted(kit) -> None:
    doc = kit.doc()
    doc["metadata"].update(
        uid="1234",
        resourceVersion="9",
        creationTimestamp="2024-01-01T00:00:00Z",
        labels={"app.kubernetes.io/name": "x"},
        annotations={"any/thing": "y"},
    )
    doc["status"] = {"conditions": [{"type": "Running", "status": "True"}], "trials": 3}
    pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"gpu": "true"}
    pod["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    experiment = kit.load(doc)
    assert experiment.metadata.labels == {"app.kubernetes.io/name": "x"}
    template_pod = experiment.spec.trial_template.trial_spec["spec"]["template"]["spec"]
    assert template_pod["volumes"] == [{"name": "scratch", "emptyDir": {}}]


def test_every_katib_metadata_reference_form_is_accepted(kit) -> None:
    references = {
        "name": "${trialSpec.Name}",
        "ns": "${trialSpec.Namespace}",
        "kind": "${trialSpec.Kind}",
        "api": "${trialSpec.APIVersion}",
        "team": "${trialSpec.Labels[team]}",
        "owner": "${trialSpec.Annotations[example.com/owner]}",
    }
    trial_parameters = [{"name": "learningRate", "reference": "lr"}] + [
        {"name": name, "reference": ref} for name, ref in references.items()
    ]
    command = ["train"] + [f"--{name}=${{trialParameters.{name}}}" for name in references]
    trial_spec = kit.job(command + ["${trialParameters.learningRate}"])
    trial_spec["metadata"] = {"labels": {"team": "a"}, "annotations": {"example.com/owner": "b"}}
    template = {
        "primaryContainerName": "trainer",
        "trialParameters": trial_parameters,
        "trialSpec": trial_spec,
    }
    experiment = kit.load(kit.doc(trialTemplate=template))
    assert len(experiment.spec.trial_template.trial_parameters) == 7


def test_experiment_name_may_have_katibs_forty_characters_but_not_more(kit) -> None:
    doc = kit.doc()
    doc["metadata"]["name"] = "e" * 40
    assert kit.load(doc).metadata.name == "e" * 40
    doc["metadata"]["name"] = "e" * 41
    assert kit.paths(doc) == ["metadata.name"]


def test_zero_failed_trials_allowed_as_in_katib(kit) -> None:
    assert (
        kit.load(kit.doc(maxTrialCount=5, maxFailedTrialCount=0)).spec.max_failed_trial_count == 0
    )


@pytest.mark.parametrize("kind", ["StdOut", "None", "Push"])
def test_collectors_without_source_are_accepted(kind: str, kit) -> None:
    experiment = kit.load(kit.doc(metricsCollectorSpec={"collector": {"kind": kind}}))
    assert experiment.spec.metrics_collector_spec.collector.kind.value == kind


def test_katib_default_metrics_filter_with_nested_groups_is_accepted(kit) -> None:
    katib_default = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
    source = {"filter": {"metricsFormat": [katib_default]}}
    kit.load(kit.doc(metricsCollectorSpec={"source": source}))


def test_from_volume_resume_policy_is_accepted_and_resumable(kit) -> None:
    experiment = kit.load(kit.doc(resumePolicy="FromVolume"))
    assert experiment.spec.resume_policy.is_resumable


def test_goal_must_be_finite(kit) -> None:
    doc = kit.doc()
    doc["spec"]["objective"]["goal"] = math.nan
    assert kit.paths(doc) == ["spec.objective.goal"]


def test_trial_spec_namespace_is_refused(kit) -> None:
    doc = kit.doc()
    doc["spec"]["trialTemplate"]["trialSpec"]["metadata"] = {"namespace": "other"}
    assert kit.paths(doc) == ["spec.trialTemplate.trialSpec.metadata.namespace"]


def test_args_and_working_dir_of_primary_container_must_be_strings(kit) -> None:
    doc = kit.doc()
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    container.update(args=["--epochs", 5], workingDir=7)
    prefix = "spec.trialTemplate.trialSpec.spec.template.spec.containers[0]"
    assert sorted(kit.paths(doc)) == [f"{prefix}.args[1]", f"{prefix}.workingDir"]


_POD = {
    "restartPolicy": "Never",
    "containers": [{"name": "main", "command": ["${trialParameters.x}"]}],
}


def _python_experiment(
    max_trial_count: int | None = None, parallel_trial_count: int = 3
) -> Experiment:
    return Experiment(
        metadata=ObjectMeta(name="py"),
        spec=ExperimentSpec(
            objective=ObjectiveSpec(type=Direction.MINIMIZE, objective_metric_name="loss"),
            algorithm=AlgorithmSpec(algorithm_name="random"),
            parameters=[
                ParameterSpec(
                    name="x",
                    parameter_type=ParameterType.DOUBLE,
                    feasible_space=FeasibleSpace(min="0", max="1"),
                )
            ],
            trial_template=TrialTemplate(
                primary_container_name="main",
                trial_parameters=[TrialParameterSpec(name="x", reference="x")],
                trial_spec={
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {"template": {"spec": _POD}},
                },
            ),
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
        ),
    )


def test_python_construction_with_snake_case_names_matches_yaml() -> None:
    experiment = _python_experiment(max_trial_count=4)
    assert experiment.spec.max_trial_count == 4
    assert experiment.spec.parameters[0].parameter.max == 1.0
    assert Experiment.model_validate(experiment.to_dict()) == experiment
    snake = ObjectiveSpec.model_validate({"type": "maximize", "objective_metric_name": "acc"})
    assert snake.metric_names == ["acc"]


def test_python_construction_raises_spec_error_with_paths() -> None:
    with pytest.raises(SpecError) as caught:
        ObjectiveSpec(
            type=Direction.MINIMIZE,
            objective_metric_name="",
            additional_metric_names=["a", "a"],
        )
    assert [str(i) for i in caught.value.issues] == [
        "objectiveMetricName: required",
        "additionalMetricNames[1]: 'a' repeats additionalMetricNames[0]",
    ]
    with pytest.raises(SpecError) as caught:
        _python_experiment(parallel_trial_count=0)
    assert [i.path for i in caught.value.issues] == ["parallelTrialCount"]


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "1e3", "many", ""])
def test_a_cap_on_stored_reports_that_is_not_a_positive_integer_is_refused(kit, value) -> None:
    doc = kit.doc()
    doc["metadata"]["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: value}

    (issue,) = kit.issues(doc)

    assert issue.path == f'metadata.annotations["{MAX_OBSERVATIONS_ANNOTATION}"]'
    assert issue.message.startswith(f"{value!r} is not a positive integer; ")


def test_a_cap_on_stored_reports_is_read_from_its_annotation(kit) -> None:
    doc = kit.doc()
    assert kit.load(doc).max_observations_per_metric is None
    doc["metadata"]["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: " 1000 "}
    assert kit.load(doc).max_observations_per_metric == 1000


def test_annotations_beyond_kubernetes_size_limit_are_refused(kit) -> None:
    doc = kit.doc()
    doc["metadata"]["annotations"] = {"notes": "x" * (256 * 1024 - len("notes"))}
    assert kit.load(doc).metadata.annotations["notes"]
    doc["metadata"]["annotations"]["more"] = "y"

    (issue,) = kit.issues(doc)

    assert issue.path == "metadata.annotations"
    assert issue.message.startswith(f"{256 * 1024 + 5} bytes of keys and values; ")
