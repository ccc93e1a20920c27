"""The trial kinds Katib runs, in one table: where each keeps its containers, the conditions
and primary pod labels Katib defaults for it, the API resource (plural) it is served under
and the label its controller puts on its pods. A kind not listed is a custom kind: its
containers are every ``containers`` list, its conditions are the user's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.spec._issues import child
from tuner.spec._katib import (
    DEFAULT_JOB_FAILURE_CONDITION,
    DEFAULT_JOB_SUCCESS_CONDITION,
    DEFAULT_KUBEFLOW_JOB_FAILURE_CONDITION,
    DEFAULT_KUBEFLOW_JOB_PRIMARY_POD_LABELS,
    DEFAULT_KUBEFLOW_JOB_SUCCESS_CONDITION,
    DEFAULT_TRAINJOB_FAILURE_CONDITION,
    DEFAULT_TRAINJOB_PRIMARY_POD_LABELS,
    DEFAULT_TRAINJOB_SUCCESS_CONDITION,
    LABEL_TRIAL,
)


@dataclass(frozen=True)
class Container:
    """A container of a trial object: ``path`` in the object, ``name`` as its pods call it
    (Argo's main container is always ``main``, a Tekton step ``step-<name>``), and the
    container's own mapping (image, command, args, env...)."""

    path: str
    name: str
    body: dict[str, Any]


ContainerFinder = Callable[[Mapping[str, Any]], list[Container]]


def any_containers(value: Any, path: str = "") -> list[Container]:
    """Every ``containers`` list of an object, in document order (``initContainers`` are not
    counted): a Job's pod template and the replica specs of Kubeflow training jobs alike."""
    found: list[Container] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            item_path = child(path, str(key))
            if key == "containers" and isinstance(item, list):
                found += [
                    Container(child(item_path, i), str(c.get("name")), c)
                    for i, c in enumerate(item)
                    if isinstance(c, dict)
                ]
            else:
                found += any_containers(item, item_path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += any_containers(item, child(path, i))
    return found


# The replica types the training operators make the primary ("master") pod; without one,
# worker 0 is. The local executor runs the primary replica's container.
PRIMARY_REPLICA_TYPES = ("master", "chief", "launcher")


def _training_containers(obj: Mapping[str, Any]) -> list[Container]:
    """Every container of a training job, those of the primary replica type first."""

    def secondary(container: Container) -> bool:
        parts = container.path.split(".")
        return not any(
            parts[i].endswith("ReplicaSpecs") and parts[i + 1].lower() in PRIMARY_REPLICA_TYPES
            for i in range(len(parts) - 1)
        )

    return sorted(any_containers(obj), key=secondary)


# The container name Kubeflow Trainer's runtimes give the trainer node (Katib's example uses
# primaryContainerName: node).
TRAINJOB_CONTAINER = "node"
ARGO_MAIN_CONTAINER = "main"
TEKTON_STEP_PREFIX = "step-"


def _trainjob_containers(obj: Mapping[str, Any]) -> list[Container]:
    trainer = _dig(obj, "spec", "trainer")
    if not isinstance(trainer, dict):
        return []
    return [Container("spec.trainer", TRAINJOB_CONTAINER, trainer)]


def _argo_containers(obj: Mapping[str, Any]) -> list[Container]:
    found = []
    for i, template in _items(_dig(obj, "spec", "templates")):
        for key in ("container", "script"):
            body = template.get(key)
            if isinstance(body, dict):
                path = f"spec.templates[{i}].{key}"
                found.append(Container(path, ARGO_MAIN_CONTAINER, body))
        container_set = _dig(template, "containerSet", "containers")
        for j, body in _items(container_set):
            path = f"spec.templates[{i}].containerSet.containers[{j}]"
            found.append(Container(path, str(body.get("name")), body))
    return found


def _tekton_steps(task_spec: Any, path: str) -> Iterator[Container]:
    for i, step in _items(_dig(task_spec, "steps")):
        yield Container(f"{path}.steps[{i}]", f"{TEKTON_STEP_PREFIX}{step.get('name')}", step)


def _tekton_containers(obj: Mapping[str, Any]) -> list[Container]:
    found = list(_tekton_steps(_dig(obj, "spec", "taskSpec"), "spec.taskSpec"))  # a TaskRun
    for section in ("tasks", "finally"):
        for i, task in _items(_dig(obj, "spec", "pipelineSpec", section)):
            path = f"spec.pipelineSpec.{section}[{i}].taskSpec"
            found += _tekton_steps(task.get("taskSpec"), path)
    return found


@dataclass(frozen=True, eq=False)
class TrialKind:
    """What tuner knows of one kind. ``pod_name_label``: the label whose value is the trial
    object's name on every pod its controller creates (None: tuner puts the trial label on
    the pod templates it finds, and selects pods by that). ``single_primary``: one container
    holds the whole training, so the local executor can run it as a process."""

    api_version: str
    kind: str
    plural: str
    containers: ContainerFinder = any_containers
    success_condition: str = ""
    failure_condition: str = ""
    primary_pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_name_label: str | None = None
    single_primary: bool = True

    @property
    def key(self) -> tuple[str, str, str]:
        """apiVersion, kind and plural: what tells two kinds apart."""
        return (self.api_version, self.kind, self.plural)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrialKind) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def is_job(self) -> bool:
        return (self.api_version, self.kind) == ("batch/v1", "Job")

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


def _training(kind: str, plural: str, api_version: str = "kubeflow.org/v1") -> TrialKind:
    return TrialKind(
        api_version,
        kind,
        plural,
        containers=_training_containers,
        success_condition=DEFAULT_KUBEFLOW_JOB_SUCCESS_CONDITION,
        failure_condition=DEFAULT_KUBEFLOW_JOB_FAILURE_CONDITION,
        primary_pod_labels=DEFAULT_KUBEFLOW_JOB_PRIMARY_POD_LABELS,
        pod_name_label="training.kubeflow.org/job-name",
    )


TRIAL_KINDS: tuple[TrialKind, ...] = (
    TrialKind(
        "batch/v1",
        "Job",
        "jobs",
        success_condition=DEFAULT_JOB_SUCCESS_CONDITION,
        failure_condition=DEFAULT_JOB_FAILURE_CONDITION,
        pod_name_label="job-name",
    ),
    _training("TFJob", "tfjobs"),
    _training("PyTorchJob", "pytorchjobs"),
    _training("MPIJob", "mpijobs"),
    _training("MPIJob", "mpijobs", "kubeflow.org/v2beta1"),  # the MPI Operator's own
    _training("XGBoostJob", "xgboostjobs"),
    _training("JAXJob", "jaxjobs"),
    _training("PaddleJob", "paddlejobs"),
    TrialKind(
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
        "trainjobs",
        containers=_trainjob_containers,
        success_condition=DEFAULT_TRAINJOB_SUCCESS_CONDITION,
        failure_condition=DEFAULT_TRAINJOB_FAILURE_CONDITION,
        primary_pod_labels=DEFAULT_TRAINJOB_PRIMARY_POD_LABELS,
        pod_name_label="jobset.sigs.k8s.io/jobset-name",
    ),
    TrialKind(
        "argoproj.io/v1alpha1",
        "Workflow",
        "workflows",
        containers=_argo_containers,
        pod_name_label="workflows.argoproj.io/workflow",
        single_primary=False,
    ),
    TrialKind(
        "tekton.dev/v1",
        "PipelineRun",
        "pipelineruns",
        containers=_tekton_containers,
        pod_name_label="tekton.dev/pipelineRun",
        single_primary=False,
    ),
    TrialKind(
        "tekton.dev/v1beta1",
        "PipelineRun",
        "pipelineruns",
        containers=_tekton_containers,
        pod_name_label="tekton.dev/pipelineRun",
        single_primary=False,
    ),
)
_BY_KEY = {(k.api_version, k.kind): k for k in TRIAL_KINDS}
# Katib defaults conditions by kind alone, whatever the apiVersion.
_DEFAULTED_KINDS = {k.kind: k for k in TRIAL_KINDS if k.success_condition}
_BY_GROUP_KIND = {(k.group, k.kind): k for k in TRIAL_KINDS}


def trial_kind(api_version: str, kind: str) -> TrialKind:
    """The table's entry for ``apiVersion``/``kind``; another version of a listed kind keeps
    its behaviour, an unlisted kind is a custom one (plural guessed as Kubernetes does)."""
    found = _BY_KEY.get((api_version, kind))
    if found is not None:
        return found
    group = api_version.rpartition("/")[0]
    like = _BY_GROUP_KIND.get((group, kind)) or _DEFAULTED_KINDS.get(kind)
    if like is not None:
        return TrialKind(
            api_version,
            kind,
            like.plural,
            like.containers,
            like.success_condition,
            like.failure_condition,
            like.primary_pod_labels,
            like.pod_name_label,
            like.single_primary,
        )
    return TrialKind(api_version, kind, guess_plural(kind))


def of(trial_spec: Mapping[str, Any]) -> TrialKind:
    """The kind of a trial object (an object without a string kind counts as a custom one)."""
    return trial_kind(str(trial_spec.get("apiVersion") or ""), str(trial_spec.get("kind") or ""))


def guess_plural(kind: str) -> str:
    """The resource name of a kind as apimachinery's ``UnsafeGuessKindToResource`` guesses it
    (CRDs nearly always follow it)."""
    lower = kind.lower()
    if not lower:
        return lower
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def pod_templates(value: Any) -> Iterator[dict[str, Any]]:
    """Every pod template of an object (a mapping under a ``template`` key whose ``spec``
    has containers), where labels set in its metadata reach the pods."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (
                key == "template"
                and isinstance(item, dict)
                and isinstance(_dig(item, "spec", "containers"), list)
            ):
                yield item
            yield from pod_templates(item)
    elif isinstance(value, list):
        for item in value:
            yield from pod_templates(item)


def trial_pod_label(kind: TrialKind) -> str:
    """The pod label whose value is the trial object's name."""
    return kind.pod_name_label or LABEL_TRIAL


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, dict))
