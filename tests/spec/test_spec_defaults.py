"""Katib's defaults are applied when a field is left out, and explicit values are kept."""

from __future__ import annotations

from tuner.spec import (
    CollectorKind,
    FileFormat,
    FileSystemKind,
    MetricStrategyType,
    ResumePolicy,
)


def test_counts_resume_policy_collector_and_namespace_defaults(kit) -> None:
    experiment = kit.load(kit.doc())
    spec = experiment.spec
    assert spec.parallel_trial_count == 3
    assert spec.max_trial_count is None  # Katib: no limit, run until goal or exhaustion
    assert spec.max_failed_trial_count is None
    assert spec.resume_policy is ResumePolicy.NEVER
    assert spec.metrics_collector_spec.collector.kind is CollectorKind.STDOUT
    assert spec.early_stopping is None
    assert experiment.metadata.namespace == "default"


def test_metric_strategies_default_to_min_when_minimizing_for_every_metric(kit) -> None:
    objective = {"type": "minimize", "objectiveMetricName": "loss", "additionalMetricNames": ["a"]}
    experiment = kit.load(kit.doc(objective=objective))
    assert experiment.spec.objective.strategy("loss") is MetricStrategyType.MIN
    assert experiment.spec.objective.strategy("a") is MetricStrategyType.MIN


def test_metric_strategies_default_to_max_when_maximizing(kit) -> None:
    objective = {"type": "maximize", "objectiveMetricName": "acc", "additionalMetricNames": ["f1"]}
    strategies = kit.load(kit.doc(objective=objective)).spec.objective.metric_strategies
    assert [(s.name, s.value) for s in strategies] == [
        ("acc", MetricStrategyType.MAX),
        ("f1", MetricStrategyType.MAX),
    ]


def test_explicit_metric_strategy_is_kept_and_the_others_are_filled_in(kit) -> None:
    objective = {
        "type": "maximize",
        "objectiveMetricName": "acc",
        "additionalMetricNames": ["loss"],
        "metricStrategies": [{"name": "acc", "value": "latest"}],
    }
    spec_objective = kit.load(kit.doc(objective=objective)).spec.objective
    assert spec_objective.strategy("acc") is MetricStrategyType.LATEST
    assert spec_objective.strategy("loss") is MetricStrategyType.MAX


def test_int_parameter_gets_step_one(kit) -> None:
    parameters = [{"name": "n", "parameterType": "int", "feasibleSpace": {"min": 1, "max": 4}}]
    template = {
        "primaryContainerName": "trainer",
        "trialParameters": [{"name": "n", "reference": "n"}],
        "trialSpec": kit.job(["run", "${trialParameters.n}"]),
    }
    experiment = kit.load(kit.doc(parameters=parameters, trialTemplate=template))
    [parameter] = experiment.spec.parameters
    assert parameter.feasible_space.step == "1"
    assert parameter.parameter.step == 1
    assert parameter.parameter.grid_values() == [1, 2, 3, 4]


def test_feasible_space_numbers_are_parsed_once_into_the_parameter(kit) -> None:
    parameters = [
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": 0.01, "max": "0.1"}}
    ]
    [spec_parameter] = kit.load(kit.doc(parameters=parameters)).spec.parameters
    assert spec_parameter.feasible_space.min == "0.01"  # Katib's string form is kept
    assert spec_parameter.parameter.min == 0.01
    assert spec_parameter.parameter.max == 0.1
    assert spec_parameter.parameter.distribution is None


def test_job_trial_template_gets_katib_success_and_failure_conditions(kit) -> None:
    template = kit.load(kit.doc()).spec.trial_template
    assert template.success_condition == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert template.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert template.retain is False


def test_kubeflow_job_gets_its_conditions_and_primary_pod_labels(kit) -> None:
    trial_spec = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "trainer", "command": ["${trialParameters.learningRate}"]}
                            ]
                        }
                    }
                }
            }
        },
    }
    doc = kit.doc()
    doc["spec"]["trialTemplate"]["trialSpec"] = trial_spec
    template = kit.load(doc).spec.trial_template
    assert template.success_condition == (
        'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    )
    assert template.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert template.primary_pod_labels == {"training.kubeflow.org/job-role": "master"}


def test_explicit_conditions_are_not_overridden(kit) -> None:
    doc = kit.doc()
    doc["spec"]["trialTemplate"]["successCondition"] = "status.done"
    assert kit.load(doc).spec.trial_template.success_condition == "status.done"


def test_file_collector_defaults_path_kind_and_format(kit) -> None:
    experiment = kit.load(kit.doc(metricsCollectorSpec={"collector": {"kind": "File"}}))
    source = experiment.spec.metrics_collector_spec.source
    assert source is not None and source.file_system_path is not None
    assert source.file_system_path.path == "/var/log/katib/metrics.log"
    assert source.file_system_path.kind is FileSystemKind.FILE
    assert source.file_system_path.format is FileFormat.TEXT
