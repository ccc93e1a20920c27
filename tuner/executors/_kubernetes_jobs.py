"""The trial object (a batch/v1 Job or any other kind), built without a cluster: what the
Kubernetes executor reads from the trial template, the object it creates, the reference it
stores, and the manifests that ``tuner run --executor kubernetes --dry-run`` prints."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.executors._base import InvalidReferenceError, LaunchError
from tuner.executors._kubernetes_conditions import Condition, parse_conditions
from tuner.executors._labels import LabelError, check_labels, dns1123_label_problem
from tuner.space import Value
from tuner.spec import (
    LABEL_EXPERIMENT,
    LABEL_TRIAL,
    CollectorKind,
    Experiment,
    TrialKind,
    find_containers,
    pod_templates,
    render_trial,
    trial_kind,
)

EXECUTOR_NAME = "kubernetes"
REFERENCE_VERSION = 1
JOB_API_VERSION, JOB_KIND = "batch/v1", "Job"
# The Job controller labels its pods with both keys (the unprefixed one before 1.27 only).
POD_JOB_NAME_LABEL = "job-name"
POD_RESTART_POLICIES = ("Never", "OnFailure")
_TEMPLATE = "spec.trialTemplate"


_JOB = trial_kind(JOB_API_VERSION, JOB_KIND)


@dataclass(frozen=True)
class JobSettings:
    """What the executor needs from one experiment's trial template (besides the object):
    ``kind`` is the trial object's kind (a batch/v1 Job or any other, see
    ``tuner.spec.TrialKind``)."""

    namespace: str
    experiment: str
    primary_container: str
    success: Condition
    failure: Condition
    primary_pod_labels: Mapping[str, str] = field(default_factory=dict)
    retain: bool = False
    kind: TrialKind = _JOB

    @property
    def is_job(self) -> bool:
        return (self.kind.api_version, self.kind.kind) == (JOB_API_VERSION, JOB_KIND)

    @classmethod
    def from_experiment(cls, experiment: Experiment) -> JobSettings:
        """Read and check the template; :class:`LaunchError` names the field that cannot run."""
        template = experiment.spec.trial_template
        trial_spec = template.trial_spec or {}
        kind = trial_kind(str(trial_spec.get("apiVersion")), str(trial_spec.get("kind")))
        collector = experiment.spec.metrics_collector_spec.collector.kind
        if collector is CollectorKind.FILE:
            # Katib injects a sidecar that reads the file inside the pod; tuner reads from
            # outside, and only logs leave a pod through the API.
            raise LaunchError(
                "spec.metricsCollectorSpec.collector.kind: 'File' cannot be read by the"
                " kubernetes executor (the file stays inside the trial's pod); print the"
                " metrics (StdOut) or report them to tuner (Push)"
            )
        success, failure = parse_conditions(template.success_condition, template.failure_condition)
        try:
            check_labels(template.primary_pod_labels, f"{_TEMPLATE}.primaryPodLabels")
        except LabelError as e:
            raise LaunchError(str(e)) from e
        settings = cls(
            namespace=experiment.metadata.namespace,
            experiment=experiment.metadata.name,
            primary_container=template.primary_container_name,
            primary_pod_labels=dict(template.primary_pod_labels),
            success=success,
            failure=failure,
            retain=template.retain,
            kind=kind,
        )
        settings.check_pod_spec(trial_spec, f"{_TEMPLATE}.trialSpec", rendered=False)
        return settings

    def check_pod_spec(self, job: Mapping[str, Any], path: str, *, rendered: bool = True) -> None:
        """The object must hold the primary container where its kind keeps containers (the
        error lists those there are), and a Job's pod template a restart policy a Job allows
        (an unrendered ``${trialParameters...}`` value is checked once rendered)."""
        if not self.is_job:
            found = [c.name for c in find_containers(job)]
            if found and self.primary_container not in found:  # none: defined elsewhere
                raise LaunchError(
                    f"{path}: no container of the {self.kind.kind} is named"
                    f" {self.primary_container!r} (primaryContainerName); found {found}"
                )
            return
        pod = _get(job, "spec", "template", "spec")
        containers = pod.get("containers") if isinstance(pod, Mapping) else None
        names = [c.get("name") for c in containers or () if isinstance(c, Mapping)]
        if self.primary_container not in names:
            raise LaunchError(
                f"{path}.spec.template.spec.containers: no container is named"
                f" {self.primary_container!r} (primaryContainerName); found {names}"
            )
        policy = pod.get("restartPolicy")
        if (rendered or not _is_placeholder(policy)) and policy not in POD_RESTART_POLICIES:
            raise LaunchError(
                f"{path}.spec.template.spec.restartPolicy: {policy!r} is not allowed in a Job;"
                f" set one of {', '.join(POD_RESTART_POLICIES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "experiment": self.experiment,
            "primary_container": self.primary_container,
            "primary_pod_labels": dict(self.primary_pod_labels),
            "success_condition": self.success.text,
            "failure_condition": self.failure.text,
            "retain": self.retain,
            "api_version": self.kind.api_version,
            "kind": self.kind.kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSettings:
        try:
            labels = dict(data.get("primary_pod_labels") or {})
            check_labels(labels, "reference.primary_pod_labels")
            success, failure = parse_conditions(
                data["success_condition"], data["failure_condition"], "reference"
            )
            settings = cls(
                namespace=_text(data, "namespace"),
                experiment=_text(data, "experiment"),
                primary_container=_text(data, "primary_container"),
                primary_pod_labels=labels,
                success=success,
                failure=failure,
                retain=bool(data.get("retain", False)),
                # References stored before other kinds ran are Jobs'.
                kind=trial_kind(
                    str(data.get("api_version", JOB_API_VERSION)), str(data.get("kind", JOB_KIND))
                ),
            )
        except (KeyError, TypeError, LaunchError, LabelError) as e:
            raise InvalidReferenceError(f"reference: not a kubernetes trial reference: {e}") from e
        return settings


@dataclass(frozen=True)
class JobReference:
    """What the controller stores per launched trial: enough to find and judge the Job after a
    restart without the experiment (``uid`` tells a re-created Job of the same name apart)."""

    trial_name: str
    settings: JobSettings
    uid: str | None = None

    @property
    def job_name(self) -> str:
        return self.trial_name  # render_trial names the Job after the trial

    def to_dict(self) -> dict[str, Any]:
        return {
            "executor": EXECUTOR_NAME,
            "version": REFERENCE_VERSION,
            "trial_name": self.trial_name,
            "uid": self.uid,
            **self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobReference:
        if data.get("executor") != EXECUTOR_NAME:
            raise InvalidReferenceError(
                f"reference.executor: {data.get('executor')!r} is not {EXECUTOR_NAME!r}; this"
                " trial was launched by another executor"
            )
        if data.get("version") != REFERENCE_VERSION:
            raise InvalidReferenceError(
                f"reference.version: {data.get('version')!r} is not supported (expected"
                f" {REFERENCE_VERSION})"
            )
        uid = data.get("uid")
        if uid is not None and not isinstance(uid, str):
            raise InvalidReferenceError(f"reference.uid: {uid!r} is not a string")
        try:
            trial_name = _text(data, "trial_name")
        except (KeyError, TypeError) as e:
            raise InvalidReferenceError(f"reference: not a kubernetes trial reference: {e}") from e
        return cls(trial_name, JobSettings.from_dict(data), uid)


def job_manifest(
    manifest: Mapping[str, Any], settings: JobSettings, trial_name: str
) -> dict[str, Any]:
    """The object to create for a rendered trial: ``manifest`` (from ``render_trial``) with
    the experiment and trial labels also on every pod template it has (and, for a Job,
    ``primaryPodLabels`` too), so that pods can be listed by trial and the primary pod
    found. Raises :class:`LaunchError`."""
    job = copy.deepcopy(dict(manifest))
    kind = settings.kind
    path = f"trial {trial_name!r}: {kind.kind}"
    if (problem := dns1123_label_problem(trial_name)) is not None:
        raise LaunchError(f"{path} metadata.name: {trial_name!r} {problem}")
    if (job.get("apiVersion"), job.get("kind")) != (kind.api_version, kind.kind):
        raise LaunchError(
            f"{path}: {job.get('apiVersion')!r} {job.get('kind')!r} is not the experiment's"
            f" {kind.api_version} {kind.kind}"
        )
    metadata = job.setdefault("metadata", {})
    if metadata.get("name") != trial_name or metadata.get("namespace") != settings.namespace:
        raise LaunchError(
            f"{path} metadata: name/namespace {metadata.get('name')!r}/"
            f"{metadata.get('namespace')!r} are not {trial_name!r}/{settings.namespace!r}"
        )
    identity = {LABEL_EXPERIMENT: settings.experiment, LABEL_TRIAL: trial_name}
    metadata["labels"] = {**(metadata.get("labels") or {}), **identity}
    if settings.is_job:
        job.setdefault("spec", {}).setdefault("template", {})
    # A Job has one pod template, so its pods are all primary; a training job's replicas
    # tell theirs apart by the labels their operator sets (primaryPodLabels select them).
    extra = dict(settings.primary_pod_labels) if settings.is_job else {}
    for template in pod_templates(job) if not settings.is_job else [job["spec"]["template"]]:
        pod_metadata = template.setdefault("metadata", {})
        pod_metadata["labels"] = {**(pod_metadata.get("labels") or {}), **extra, **identity}
    try:
        check_labels(metadata["labels"], f"{path} metadata.labels")
        for template in pod_templates(job):
            check_labels(template["metadata"]["labels"], f"{path} pod template metadata.labels")
    except LabelError as e:
        raise LaunchError(str(e)) from e
    settings.check_pod_spec(job, path)
    return job


def render_job_manifests(
    experiment: Experiment, trials: Mapping[str, Mapping[str, Value]]
) -> list[dict[str, Any]]:
    """The objects the kubernetes executor would create for ``trials`` (trial name →
    parameter assignment), in order, without contacting a cluster: for ``--dry-run``.

    Raises :class:`LaunchError` when the template cannot run and ``SpecError`` when an
    assignment does not fit the experiment's parameters.
    """
    settings = JobSettings.from_experiment(experiment)
    return [
        job_manifest(render_trial(experiment, name, assignment).manifest, settings, name)
        for name, assignment in trials.items()
    ]


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj if obj is not None else {}


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key}: {value!r} is not a non-empty string")
    return value
