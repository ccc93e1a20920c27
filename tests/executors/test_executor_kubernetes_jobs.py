"""The Job a trial runs as, built without a cluster: template checks, labels, the stored
reference, and the manifests ``--dry-run`` prints."""

from __future__ import annotations

import pytest

from tuner.executors import InvalidReferenceError, LaunchError
from tuner.executors._kubernetes import KubernetesExecutor
from tuner.executors._kubernetes_jobs import (
    JobReference,
    JobSettings,
    job_manifest,
    render_job_manifests,
)
from tuner.spec import Experiment, loads, render_trial

LABELS = ("katib.kubeflow.org/experiment", "katib.kubeflow.org/trial")


def experiment(trial_spec: str = "", template: str = "", spec: str = "") -> Experiment:
    trial_spec = (
        trial_spec
        or """
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          metadata: {labels: {team: vision}}
          spec:
            restartPolicy: Never
            containers:
              - {name: main, image: "trainer:1", command: [train, "--lr=${trialParameters.lr}"]}
"""
    )
    return loads(f"""
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: exp, namespace: team-a}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss}}
  algorithm: {{algorithmName: random}}
{spec}
  parameters:
    - {{name: lr, parameterType: double, feasibleSpace: {{min: "0.01", max: "0.1"}}}}
  trialTemplate:
    primaryContainerName: main
    trialParameters: [{{name: lr, reference: lr}}]
{template}
    trialSpec:
{trial_spec}
""")[0]


def test_dry_run_manifests_are_the_jobs_launch_would_create():
    exp = experiment(template="    primaryPodLabels: {role: trainer}")
    jobs = render_job_manifests(exp, {"exp-a": {"lr": 0.05}, "exp-b": {"lr": 0.02}})
    assert [j["metadata"]["name"] for j in jobs] == ["exp-a", "exp-b"]
    first = jobs[0]
    assert first["metadata"]["namespace"] == "team-a"
    assert {k: first["metadata"]["labels"][k] for k in LABELS} == {
        LABELS[0]: "exp",
        LABELS[1]: "exp-a",
    }
    assert first["spec"]["template"]["metadata"]["labels"] == {
        "team": "vision",
        "role": "trainer",
        LABELS[0]: "exp",
        LABELS[1]: "exp-a",
    }
    assert first["spec"]["template"]["spec"]["containers"][0]["command"] == ["train", "--lr=0.05"]
    settings = JobSettings.from_experiment(exp)
    rendered = render_trial(exp, "exp-a", {"lr": 0.05})
    assert job_manifest(rendered.manifest, settings, "exp-a") == first
    # The rendered trial is left as it was: the executor works on a copy.
    assert rendered.manifest["spec"]["template"]["metadata"]["labels"] == {"team": "vision"}


def test_settings_keep_katib_defaults_and_template_options():
    settings = JobSettings.from_experiment(experiment(template="    retain: true"))
    assert (settings.namespace, settings.experiment, settings.primary_container) == (
        "team-a",
        "exp",
        "main",
    )
    assert settings.retain is True
    assert settings.success.text == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert settings.failure.text == 'status.conditions.#(type=="Failed")#|#(status=="True")#'


@pytest.mark.parametrize(
    ("trial_spec", "template", "message"),
    [
        (
            "",
            '    successCondition: status.[@this].*.#(phase=="Succeeded")#',
            "spec.trialTemplate.successCondition: 'status.[@this].*",
        ),
        (
            "",
            "    primaryPodLabels: {role: 'has space'}",
            "primaryPodLabels.role: label value 'has space'",
        ),
    ],
)
def test_templates_the_executor_cannot_run_are_refused_once(trial_spec, template, message):
    with pytest.raises(LaunchError) as caught:
        JobSettings.from_experiment(experiment(trial_spec, template))
    assert message in str(caught.value)


def test_metrics_files_inside_pods_are_refused():
    exp = experiment(spec="  metricsCollectorSpec: {collector: {kind: File}}")
    with pytest.raises(LaunchError, match="collector.kind: 'File' cannot be read by the kube"):
        JobSettings.from_experiment(exp)


def test_trial_names_must_be_job_names():
    exp = experiment()
    settings = JobSettings.from_experiment(exp)
    long_name = "exp-" + "x" * 60
    with pytest.raises(LaunchError, match=r"metadata.name: 'exp-x+' must be 1 to 63"):
        job_manifest(render_trial(exp, long_name, {"lr": 0.05}).manifest, settings, long_name)


def test_reference_round_trips_and_refuses_others():
    settings = JobSettings.from_experiment(experiment(template="    retain: true"))
    reference = JobReference("exp-a", settings, "uid-1")
    assert JobReference.from_dict(reference.to_dict()) == reference
    with pytest.raises(InvalidReferenceError, match="reference.executor: 'local'"):
        JobReference.from_dict({**reference.to_dict(), "executor": "local"})
    with pytest.raises(InvalidReferenceError, match="reference.version: 2"):
        JobReference.from_dict({**reference.to_dict(), "version": 2})
    broken = {**reference.to_dict(), "success_condition": "status.*"}
    with pytest.raises(InvalidReferenceError, match="not a kubernetes trial reference"):
        JobReference.from_dict(broken)


def test_references_keep_the_kind_and_older_ones_are_jobs():
    settings = JobSettings.from_experiment(experiment())
    reference = JobReference("exp-a", settings, "uid-1").to_dict()
    pytorch = {**reference, "api_version": "kubeflow.org/v1", "kind": "PyTorchJob"}
    kind = JobReference.from_dict(pytorch).settings.kind
    assert (kind.plural, kind.pod_name_label) == ("pytorchjobs", "training.kubeflow.org/job-name")
    stored_before = {k: v for k, v in reference.items() if k not in ("api_version", "kind")}
    assert JobReference.from_dict(stored_before).settings.is_job


def test_launch_needs_a_prepared_experiment_and_a_manifest():
    exp = experiment()
    rendered = render_trial(exp, "exp-a", {"lr": 0.05})
    with KubernetesExecutor(host="http://127.0.0.1:9") as executor:  # never contacted
        with pytest.raises(LaunchError, match="experiment team-a/exp was not prepared"):
            executor.launch("exp-a", rendered.argv, {}, None, None, manifest=rendered.manifest)
        with pytest.raises(LaunchError, match="needs manifest="):
            executor.launch("exp-a", rendered.argv, {}, None, None)
