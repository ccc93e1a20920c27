"""Katib's Experiment validation rules (its admission webhook) plus the checks that let a spec
fail at load time instead of mid-run. Each function returns every issue it finds, with paths
relative to the model it checks; the models' validators raise them as one ``SpecError``.
The trial template's rules are in ``_template_rules``."""

from __future__ import annotations

import math
import posixpath
import re
from typing import TYPE_CHECKING

from tuner.space import ParameterType, SearchSpace
from tuner.spec import _template
from tuner.spec._annotations import MAX_OBSERVATIONS_ANNOTATION
from tuner.spec._issues import SpecIssue, child, duplicate_issues, listing, short_repr
from tuner.spec._katib import (
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_NAMESPACE_LENGTH,
    CollectorKind,
    FileFormat,
    FileSystemKind,
)

if TYPE_CHECKING:
    from tuner.spec._common import AlgorithmSpec, MetricsCollectorSpec, ObjectiveSpec, ObjectMeta
    from tuner.spec._experiment import ExperimentSpec, ParameterSpec

# Katib's experiment naming rule (a DNS-1035 label: it becomes part of Service names).
_EXPERIMENT_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def max_observations(annotations: dict[str, str]) -> int | None:
    """The cap the annotation sets, None when unset; `ValueError` naming the field and value
    when it is not a positive integer."""
    raw = annotations.get(MAX_OBSERVATIONS_ANNOTATION)
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise ValueError(
            f"{short_repr(raw)} is not a positive integer; set a whole number of reports per"
            ' metric such as "1000", or remove the annotation to store every report'
        )
    return int(text)


MAX_ANNOTATIONS_BYTES = 256 * 1024
"""Kubernetes' limit on an object's annotations, keys and values together (apimachinery's
``TotalAnnotationSizeLimitB``); the store keeps them with the experiment."""


def metadata_issues(meta: ObjectMeta) -> list[SpecIssue]:
    issues = []
    size = sum(len(k.encode()) + len(v.encode()) for k, v in meta.annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        issues.append(
            SpecIssue(
                "annotations",
                f"{size} bytes of keys and values; Kubernetes allows at most"
                f" {MAX_ANNOTATIONS_BYTES} (256 KiB): keep large data out of annotations",
            )
        )
    try:
        max_observations(meta.annotations)
    except ValueError as e:
        issues.append(SpecIssue(child("annotations", MAX_OBSERVATIONS_ANNOTATION), str(e)))
    if not meta.name:
        issues.append(SpecIssue("name", "required"))
    elif not _EXPERIMENT_NAME.fullmatch(meta.name):
        issues.append(
            SpecIssue(
                "name",
                f"{short_repr(meta.name)} must consist of lower case letters, digits or '-',"
                " start with a letter and end with a letter or digit (e.g. 'my-experiment')",
            )
        )
    elif len(meta.name) > MAX_EXPERIMENT_NAME_LENGTH:
        issues.append(
            SpecIssue(
                "name",
                f"{short_repr(meta.name)} is {len(meta.name)} characters long; Katib allows at most"
                f" {MAX_EXPERIMENT_NAME_LENGTH}",
            )
        )
    if not _DNS1123_LABEL.fullmatch(meta.namespace) or len(meta.namespace) > MAX_NAMESPACE_LENGTH:
        issues.append(
            SpecIssue(
                "namespace",
                f"{short_repr(meta.namespace)} is not a Kubernetes namespace name (lower case"
                f" letters, digits or '-', at most {MAX_NAMESPACE_LENGTH} characters)",
            )
        )
    return issues


def objective_issues(objective: ObjectiveSpec) -> list[SpecIssue]:
    issues = []
    if objective.goal is not None and not math.isfinite(objective.goal):
        issues.append(SpecIssue("goal", f"{short_repr(objective.goal)} is not a finite number"))
    if objective.goal is not None and objective.additional_objectives:
        issues.append(
            SpecIssue(
                "goal",
                f"{short_repr(objective.goal)} is set, but with additionalObjectives the"
                " experiment has several objectives and no single value that reaching ends it;"
                " remove goal and bound the run with maxTrialCount",
            )
        )
    if not objective.objective_metric_name:
        issues.append(SpecIssue("objectiveMetricName", "required"))
    named = (
        [("objectiveMetricName", objective.objective_metric_name)]
        + [
            (f"additionalObjectives[{i}].metricName", o.metric_name)
            for i, o in enumerate(objective.additional_objectives)
        ]
        + [
            (f"additionalMetricNames[{i}]", name)
            for i, name in enumerate(objective.additional_metric_names)
        ]
    )
    seen: dict[str, str] = {}
    for path, name in named:
        if not name:
            if path.startswith("additionalObjectives"):
                issues.append(SpecIssue(path, "required"))
            continue
        if _UNPARSEABLE_METRIC_NAME.search(name):
            issues.append(
                SpecIssue(
                    path,
                    f"{short_repr(name)} holds '=' or white space, so no metrics line"
                    " ('name=value') can ever report it; rename the metric",
                )
            )
        if name in seen:
            issues.append(SpecIssue(path, f"{short_repr(name)} repeats {seen[name]}"))
        else:
            seen[name] = path
    known = objective.metric_names
    for i, strategy in enumerate(objective.metric_strategies):
        if strategy.name not in known:
            issues.append(
                SpecIssue(
                    f"metricStrategies[{i}].name",
                    f"{short_repr(strategy.name)} is not a metric of this objective; known metrics:"
                    f" {listing(known)}",
                )
            )
    issues += duplicate_issues(
        [strategy.name for strategy in objective.metric_strategies],
        "metricStrategies",
        suffix="name",
    )
    return issues


def algorithm_issues(algorithm: AlgorithmSpec) -> list[SpecIssue]:
    # Only the shape: whether the algorithm exists and accepts these settings is for the
    # suggestion service to say (ValidateAlgorithmSettings).
    issues = []
    if not algorithm.algorithm_name:
        issues.append(SpecIssue("algorithmName", "required"))
    names = [setting.name for setting in algorithm.algorithm_settings]
    for i, name in enumerate(names):
        if not name:
            issues.append(SpecIssue(f"algorithmSettings[{i}].name", "required"))
    issues += duplicate_issues(names, "algorithmSettings", suffix="name")
    return issues


def metrics_collector_issues(spec: MetricsCollectorSpec) -> list[SpecIssue]:
    issues = []
    source = spec.source
    if spec.collector.kind is CollectorKind.FILE:
        assert source is not None and source.file_system_path is not None  # set by defaults
        fs = source.file_system_path
        if fs.kind is not FileSystemKind.FILE:
            issues.append(
                SpecIssue(
                    "source.fileSystemPath.kind",
                    f"{fs.kind.value if fs.kind else None!r} is not valid for collector kind"
                    " File; use File",
                )
            )
        if not posixpath.isabs(fs.path):
            issues.append(
                SpecIssue(
                    "source.fileSystemPath.path",
                    f"{short_repr(fs.path)} is not an absolute path; the File collector needs the"
                    " absolute path of the metrics file (e.g. /var/log/katib/metrics.log)",
                )
            )
        if fs.format is FileFormat.JSON and source.filter is not None:
            issues.append(
                SpecIssue("source.filter", "must be omitted when fileSystemPath.format is JSON")
            )
    if source is not None and source.filter is not None:
        for i, pattern in enumerate(source.filter.metrics_format):
            issues += _filter_issues(pattern, f"source.filter.metricsFormat[{i}]")
    return issues


def _filter_issues(pattern: str, path: str) -> list[SpecIssue]:
    try:
        groups = re.compile(pattern).groups
    except re.error as e:
        return [SpecIssue(path, f"'{pattern}' is not a valid regular expression: {e}")]
    if groups < 2:
        # Katib requires two top subexpressions: the first is the metric name, the second
        # its value (its own default format has more groups, nested in the value).
        return [
            SpecIssue(
                path,
                f"'{pattern}' has {groups} group(s); it needs at least two: (name) then (value)",
            )
        ]
    return []


INT32_MAX = 2**31 - 1

# Katib's metrics lines are `name=value` separated by white space.
_UNPARSEABLE_METRIC_NAME = re.compile(r"[=\s]")


def count_issues(field: str, value: int | None) -> list[SpecIssue]:
    """The bound of one trial count alone (path relative to the field)."""
    least = 0 if field == "max_failed_trial_count" else 1
    if value is not None and value < least:
        return [SpecIssue("", f"{short_repr(value)} is less than {least}")]
    if value is not None and value > INT32_MAX:
        # Katib's wire format (and its CRD) holds these counts as int32.
        return [
            SpecIssue(
                "",
                f"{short_repr(value)} is greater than {INT32_MAX}, the largest"
                " count Katib's API holds (int32)",
            )
        ]
    return []


def space_issues(parameters: list[ParameterSpec]) -> list[SpecIssue]:
    """Rules of the parameter list as a whole (paths relative to ``spec.parameters``): at
    least one parameter, unique names."""
    space = SearchSpace(tuple(p.parameter for p in parameters))
    issues = [SpecIssue(p.field.removeprefix("parameters"), p.message) for p in space.problems()]
    if issues:
        return issues
    for i, parameter in enumerate(space.parameters):
        # The documented rule is min < max; a double range of one point is a discrete list.
        if parameter.type is ParameterType.DOUBLE and parameter.min == parameter.max:
            issues.append(
                SpecIssue(
                    f"[{i}].feasibleSpace.min",
                    f"{parameter.min!r} is not less than max {parameter.max!r}; a double range"
                    " needs min < max (for one fixed value use parameterType discrete)",
                )
            )
    return issues


def spec_issues(spec: ExperimentSpec) -> list[SpecIssue]:
    """Rules across the spec: the budget, and every parameter reaching the trial through a
    trialParameters reference (Katib fails such trials at run time; we refuse up front)."""
    issues = _budget_issues(spec)
    parameter_names = [p.name for p in spec.parameters]
    referenced = set()
    for i, trial_parameter in enumerate(spec.trial_template.trial_parameters):
        reference = trial_parameter.reference
        if not reference or _template.is_meta_syntax(reference):
            continue
        referenced.add(reference)
        if reference not in parameter_names:
            issues.append(
                SpecIssue(
                    f"trialTemplate.trialParameters[{i}].reference",
                    f"{short_repr(reference)} is not a parameter of spec.parameters"
                    f" ({listing(parameter_names)}) nor trial metadata"
                    f" ({_template.META_FORMS})",
                )
            )
    for i, name in enumerate(parameter_names):
        if name not in referenced:
            issues.append(
                SpecIssue(
                    f"parameters[{i}].name",
                    f"{short_repr(name)} is not referenced by any"
                    " spec.trialTemplate.trialParameters, so its value would never reach the trial",
                )
            )
    return issues


def _budget_issues(spec: ExperimentSpec) -> list[SpecIssue]:
    """parallelTrialCount and maxFailedTrialCount may not exceed maxTrialCount."""
    issues = []
    most = spec.max_trial_count
    if most is not None and most >= 1:
        for field, value in (
            ("parallelTrialCount", spec.parallel_trial_count),
            ("maxFailedTrialCount", spec.max_failed_trial_count),
        ):
            if value is not None and value > most:
                issues.append(SpecIssue(field, f"{value} is greater than maxTrialCount {most}"))
    return issues
