"""Katib's enumerations, names and default values, spelled exactly as in Katib's Go API
(``pkg/apis/controller/{common,experiments}/v1beta1``) so YAML written for Katib reads unchanged."""

from __future__ import annotations

import enum

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"

# Katib refuses longer names: the suggestion Service name is "<experiment>-<algorithm>" and
# must fit in 63 characters (kubeflow/katib#2454, #2468).
MAX_EXPERIMENT_NAME_LENGTH = 40
MAX_NAMESPACE_LENGTH = 63

DEFAULT_NAMESPACE = "default"
DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_FILE_METRICS_PATH = "/var/log/katib/metrics.log"

DEFAULT_JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
DEFAULT_JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
DEFAULT_KUBEFLOW_JOB_SUCCESS_CONDITION = (
    'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
)
DEFAULT_KUBEFLOW_JOB_FAILURE_CONDITION = DEFAULT_JOB_FAILURE_CONDITION
DEFAULT_KUBEFLOW_JOB_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
# Kubeflow Trainer's TrainJob (trainer.kubeflow.org/v1alpha1): its JobSet's Jobs have the
# Job conditions; the primary pod is the first node.
DEFAULT_TRAINJOB_SUCCESS_CONDITION = DEFAULT_JOB_SUCCESS_CONDITION
DEFAULT_TRAINJOB_FAILURE_CONDITION = DEFAULT_JOB_FAILURE_CONDITION
DEFAULT_TRAINJOB_PRIMARY_POD_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}

LABEL_EXPERIMENT = "katib.kubeflow.org/experiment"
LABEL_TRIAL = "katib.kubeflow.org/trial"

# Kubernetes object metadata that a `kubectl get -o yaml` dump carries and that we accept
# without interpreting.
IGNORED_OBJECT_META_FIELDS = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "finalizers",
        "ownerReferences",
        "selfLink",
        "generateName",
    }
)


class MetricStrategyType(str, enum.Enum):
    """Which of a trial's reported values of a metric counts: the lowest, highest or last."""

    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class CollectorKind(str, enum.Enum):
    """Katib's metrics collector kinds. Which ones tuner implements is the metrics
    collectors' registry's to say (``tuner.metrics.collector_kinds``), not the spec's."""

    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS_METRIC = "PrometheusMetric"
    CUSTOM = "Custom"
    NONE = "None"
    PUSH = "Push"


class FileSystemKind(str, enum.Enum):
    """Whether ``metricsCollectorSpec.source.fileSystemPath.path`` is a file or a directory."""

    FILE = "File"
    DIRECTORY = "Directory"


class FileFormat(str, enum.Enum):
    """Format of a metrics file: Katib's text lines (``name=value``) or JSON lines."""

    TEXT = "TEXT"
    JSON = "JSON"


class ResumePolicy(str, enum.Enum):
    """What may happen after an experiment has finished.

    ``NEVER``: it cannot be resumed. ``LONG_RUNNING`` and ``FROM_VOLUME``: raising
    ``maxTrialCount`` resumes it. Katib keeps suggestion state in a volume for ``FromVolume``;
    tuner keeps all state in its store, so both resumable policies behave the same.
    """

    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"

    @property
    def is_resumable(self) -> bool:
        return self is not ResumePolicy.NEVER
