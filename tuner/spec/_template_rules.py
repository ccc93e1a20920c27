"""Katib's rules for the trial template (its webhook's ``validateTrialTemplate``), plus what
our executors rely on: the primary container exists and its command, args and env are
strings. Paths are relative to ``spec.trialTemplate``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuner.spec import _kinds, _template
from tuner.spec._issues import (
    SpecIssue,
    child,
    duplicate_issues,
    join_path,
    listing,
    short_repr,
)

if TYPE_CHECKING:
    from tuner.spec._experiment import TrialTemplate

_JOB_RESTART_POLICIES = ("Never", "OnFailure")


def trial_template_issues(template: TrialTemplate) -> list[SpecIssue]:
    issues = []
    kind = _kinds.of(template.trial_spec or {})
    if not template.primary_container_name:
        issues.append(SpecIssue("primaryContainerName", "required"))
    for field, value in (
        ("successCondition", template.success_condition),
        ("failureCondition", template.failure_condition),
    ):
        if not value:
            issues.append(
                SpecIssue(
                    field,
                    f"required for kind {short_repr(kind.kind)}: Katib sets a default only"
                    " for batch/v1 Job, the Kubeflow training jobs (TFJob, PyTorchJob, MPIJob,"
                    " XGBoostJob, JAXJob, PaddleJob) and TrainJob",
                )
            )
    if template.trial_spec is None:
        issues.append(SpecIssue("trialSpec", "required"))
        return issues
    issues += _trial_parameter_issues(template)
    issues += [issue.under("trialSpec") for issue in _object_issues(template.trial_spec)]
    if template.primary_container_name:
        issues += _primary_container_issues(template)
    return issues


def _trial_parameter_issues(template: TrialTemplate) -> list[SpecIssue]:
    assert template.trial_spec is not None
    issues = []
    names = [p.name for p in template.trial_parameters]
    used = set()
    for path, text in _template.walk_strings(template.trial_spec, "trialSpec"):
        for match in _template.PLACEHOLDER.finditer(text):
            used.add(match.group(1))
            if match.group(1) not in names:
                issues.append(
                    SpecIssue(
                        path,
                        f"{match.group(0)} is not defined in spec.trialTemplate.trialParameters"
                        f" (defined: {listing(names)})",
                    )
                )
    meta = _template.object_meta(template.trial_spec)
    for i, parameter in enumerate(template.trial_parameters):
        at = f"trialParameters[{i}]"
        if not parameter.name or "{" in parameter.name or "}" in parameter.name:
            issues.append(
                SpecIssue(
                    f"{at}.name",
                    f"{short_repr(parameter.name)}: a name is required and must not contain"
                    " '{' or '}'",
                )
            )
        elif parameter.name not in used:
            issues.append(
                SpecIssue(
                    f"{at}.name",
                    f"{short_repr(parameter.name)} is not used: trialSpec has no"
                    f" ${{trialParameters.{parameter.name}}}",
                )
            )
        if not parameter.reference:
            issues.append(SpecIssue(f"{at}.reference", "required"))
        elif _template.is_meta_syntax(parameter.reference):
            issues += _meta_reference_issues(parameter.reference, meta, f"{at}.reference")
    issues += duplicate_issues(names, "trialParameters", suffix="name")
    references = [p.reference for p in template.trial_parameters if p.reference]
    issues += duplicate_issues(references, "trialParameters", suffix="reference")
    return issues


def _meta_reference_issues(reference: str, meta: Mapping[str, Any], path: str) -> list[SpecIssue]:
    ref = _template.parse_meta_reference(reference)
    if ref is None:
        return [
            SpecIssue(
                path,
                f"{short_repr(reference)} is not a trial metadata reference; use one of"
                f" {_template.META_FORMS}",
            )
        ]
    if ref.index is not None:
        table = meta.get(ref.key.lower())
        if not isinstance(table, Mapping) or ref.index not in table:
            return [
                SpecIssue(
                    path,
                    f"{short_repr(reference)}: trialSpec.metadata.{ref.key.lower()} has no key"
                    f" {short_repr(ref.index)}",
                )
            ]
    return []


def _object_issues(trial_spec: Mapping[str, Any]) -> list[SpecIssue]:
    issues = []
    for field in ("apiVersion", "kind"):
        if not isinstance(trial_spec.get(field), str) or not trial_spec.get(field):
            issues.append(SpecIssue(field, "required: trialSpec must be a Kubernetes object"))
    meta = trial_spec.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        issues.append(SpecIssue("metadata", f"{short_repr(meta)} is not a mapping"))
    for field in ("name", "namespace"):
        if isinstance(meta, Mapping) and meta.get(field):
            issues.append(
                SpecIssue(
                    f"metadata.{field}",
                    f"{short_repr(meta[field])} must be omitted: each trial's object gets its"
                    f" own {field}",
                )
            )
    if trial_spec.get("apiVersion") == "batch/v1" and trial_spec.get("kind") == "Job":
        policy = _dig(trial_spec, "spec", "template", "spec", "restartPolicy")
        if policy not in _JOB_RESTART_POLICIES:
            shown = "required" if policy is None else f"{short_repr(policy)} is not valid"
            issues.append(
                SpecIssue(
                    "spec.template.spec.restartPolicy",
                    f"{shown}: a Job's pods need restartPolicy Never or OnFailure",
                )
            )
    issues += _deadline_issues(trial_spec)
    return issues


_MAX_DEADLINE_SECONDS = 2**63 - 1  # Kubernetes holds it as int64


def _deadline_issues(trial_spec: Mapping[str, Any]) -> list[SpecIssue]:
    """``activeDeadlineSeconds`` of the object's spec and of its pod template: Kubernetes
    wants an integer >= 1 (a ``${trialParameters.x}`` placeholder is checked when rendered)."""
    issues = []
    for path in (("spec",), ("spec", "template", "spec")):
        value = _dig(trial_spec, *path, "activeDeadlineSeconds")
        if value is None or (isinstance(value, str) and _template.PLACEHOLDER.search(value)):
            continue
        valid = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 1 <= value <= _MAX_DEADLINE_SECONDS
        )
        if not valid:
            issues.append(
                SpecIssue(
                    ".".join((*path, "activeDeadlineSeconds")),
                    f"{short_repr(value)} is not a whole number of seconds >= 1",
                )
            )
    return issues


def _primary_container_issues(template: TrialTemplate) -> list[SpecIssue]:
    name = template.primary_container_name
    assert template.trial_spec is not None
    found = _template.find_primary_container(template.trial_spec, name)
    kind = _kinds.of(template.trial_spec)
    if found is None and not _template.find_containers(template.trial_spec) and not kind.is_job:
        # Containers defined elsewhere (a Tekton pipelineRef, an Argo workflowTemplateRef, a
        # TrainJob's runtime): there is nothing to check here, as in Katib.
        return []
    if found is None:
        names = list(dict.fromkeys(c.name for c in _template.find_containers(template.trial_spec)))
        return [
            SpecIssue(
                "primaryContainerName",
                f"{short_repr(name)} names no container of the {kind.kind}"
                f" (its containers, as its pods name them: {listing(names)})",
            )
        ]
    path, container = join_path("trialSpec", found.path), found.body
    issues = []
    for field in ("command", "args"):
        issues += _string_list_issues(container.get(field), child(path, field))
    env = container.get("env")
    if env is not None:
        if not isinstance(env, list):
            issues.append(SpecIssue(child(path, "env"), f"{short_repr(env)} is not a list"))
        else:
            for i, entry in enumerate(env):
                issues += _env_issues(entry, child(child(path, "env"), i))
    working_dir = container.get("workingDir")
    if working_dir is not None and not isinstance(working_dir, str):
        issues.append(
            SpecIssue(child(path, "workingDir"), f"{short_repr(working_dir)} is not a string")
        )
    return issues


def _env_issues(entry: Any, path: str) -> list[SpecIssue]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        return [SpecIssue(path, "an env entry needs a string name")]
    value = entry.get("value")
    if value is not None and not isinstance(value, str):
        return [SpecIssue(child(path, "value"), f"{short_repr(value)} is not a string; quote it")]
    return []


def _string_list_issues(value: Any, path: str) -> list[SpecIssue]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [SpecIssue(path, f"{short_repr(value)} is not a list of strings")]
    return [
        SpecIssue(child(path, i), f"{short_repr(item)} is not a string; Kubernetes needs it quoted")
        for i, item in enumerate(value)
        if not isinstance(item, str)
    ]


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
