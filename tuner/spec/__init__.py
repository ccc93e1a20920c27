"""The Katib ``kubeflow.org/v1beta1`` Experiment: typed model, validation, loading, rendering.

Load YAML with ``load_file``/``loads`` or build an ``Experiment`` in Python (snake_case
names); either way defaults are applied as Katib's webhook does and a broken spec raises
``SpecError`` listing every ``SpecIssue``. ``render_trial`` fills the trial template for one
parameter assignment.

Exports load on first use, like ``tuner``'s: naming a constant (``tuner --help`` does) does
not build the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner.space import Distribution, ParameterType
    from tuner.spec._annotations import MAX_OBSERVATIONS_ANNOTATION
    from tuner.spec._common import (
        AdditionalObjective,
        AlgorithmSetting,
        AlgorithmSpec,
        CollectorSpec,
        EarlyStoppingSetting,
        EarlyStoppingSpec,
        FileSystemPath,
        FilterSpec,
        MetricsCollectorSpec,
        MetricStrategy,
        ObjectiveSpec,
        ObjectMeta,
        SourceSpec,
    )
    from tuner.spec._experiment import (
        Experiment,
        ExperimentSpec,
        FeasibleSpace,
        ParameterSpec,
        TrialParameterSpec,
        TrialTemplate,
    )
    from tuner.spec._issues import SpecError, SpecIssue
    from tuner.spec._katib import (
        API_VERSION,
        KIND,
        LABEL_EXPERIMENT,
        LABEL_TRIAL,
        CollectorKind,
        FileFormat,
        FileSystemKind,
        MetricStrategyType,
        ResumePolicy,
    )
    from tuner.spec._kinds import TRIAL_KINDS, Container, TrialKind, pod_templates, trial_kind
    from tuner.spec._loading import load_file, loads
    from tuner.spec._rendering import RenderedTrial, find_containers, render_trial

# Exported name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    **dict.fromkeys(("Distribution", "ParameterType"), "tuner.space"),
    **dict.fromkeys(("MAX_OBSERVATIONS_ANNOTATION",), "tuner.spec._annotations"),
    **dict.fromkeys(
        (
            "AdditionalObjective",
            "AlgorithmSetting",
            "AlgorithmSpec",
            "CollectorSpec",
            "EarlyStoppingSetting",
            "EarlyStoppingSpec",
            "FileSystemPath",
            "FilterSpec",
            "MetricStrategy",
            "MetricsCollectorSpec",
            "ObjectMeta",
            "ObjectiveSpec",
            "SourceSpec",
        ),
        "tuner.spec._common",
    ),
    **dict.fromkeys(
        (
            "Experiment",
            "ExperimentSpec",
            "FeasibleSpace",
            "ParameterSpec",
            "TrialParameterSpec",
            "TrialTemplate",
        ),
        "tuner.spec._experiment",
    ),
    **dict.fromkeys(("SpecError", "SpecIssue"), "tuner.spec._issues"),
    **dict.fromkeys(
        (
            "API_VERSION",
            "KIND",
            "LABEL_EXPERIMENT",
            "LABEL_TRIAL",
            "CollectorKind",
            "FileFormat",
            "FileSystemKind",
            "MetricStrategyType",
            "ResumePolicy",
        ),
        "tuner.spec._katib",
    ),
    **dict.fromkeys(
        ("TRIAL_KINDS", "Container", "TrialKind", "pod_templates", "trial_kind"),
        "tuner.spec._kinds",
    ),
    **dict.fromkeys(("load_file", "loads"), "tuner.spec._loading"),
    **dict.fromkeys(("RenderedTrial", "find_containers", "render_trial"), "tuner.spec._rendering"),
}

__all__ = [
    "API_VERSION",
    "KIND",
    "LABEL_EXPERIMENT",
    "LABEL_TRIAL",
    "MAX_OBSERVATIONS_ANNOTATION",
    "AdditionalObjective",
    "TRIAL_KINDS",
    "AlgorithmSetting",
    "Container",
    "AlgorithmSpec",
    "CollectorKind",
    "CollectorSpec",
    "Distribution",
    "EarlyStoppingSetting",
    "EarlyStoppingSpec",
    "Experiment",
    "ExperimentSpec",
    "FeasibleSpace",
    "FileFormat",
    "FileSystemKind",
    "FileSystemPath",
    "FilterSpec",
    "MetricStrategy",
    "MetricStrategyType",
    "MetricsCollectorSpec",
    "ObjectMeta",
    "ObjectiveSpec",
    "ParameterSpec",
    "ParameterType",
    "RenderedTrial",
    "ResumePolicy",
    "SourceSpec",
    "SpecError",
    "SpecIssue",
    "TrialKind",
    "TrialParameterSpec",
    "TrialTemplate",
    "load_file",
    "find_containers",
    "loads",
    "pod_templates",
    "render_trial",
    "trial_kind",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
