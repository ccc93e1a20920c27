"""The ``kubeflow.org/v1beta1`` Experiment model: search space, trial template, budget."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuner.space import Distribution, Parameter, ParameterType, SearchSpace
from tuner.spec import _kinds, _rules, _template_rules
from tuner.spec._base import KatibString, SpecModel
from tuner.spec._common import (
    AlgorithmSpec,
    EarlyStoppingSpec,
    MetricsCollectorSpec,
    ObjectiveSpec,
    ObjectMeta,
    not_supported,
)
from tuner.spec._issues import SpecError, SpecIssue, raise_if_any, short_repr
from tuner.spec._katib import (
    API_VERSION,
    DEFAULT_PARALLEL_TRIAL_COUNT,
    KIND,
    ResumePolicy,
)


class FeasibleSpace(SpecModel):
    """The values a parameter may take, in Katib's string form (YAML numbers are accepted and
    kept as strings); ``ParameterSpec.parameter`` holds them parsed. The YAML key of
    ``values`` is ``list``."""

    min: KatibString | None = None
    max: KatibString | None = None
    step: KatibString | None = None
    values: list[KatibString] = Field(default_factory=list, alias="list")
    distribution: Distribution | None = None


class ParameterSpec(SpecModel):
    """One search-space parameter. An int parameter without a step gets step ``"1"``."""

    name: str
    parameter_type: ParameterType
    feasible_space: FeasibleSpace = Field(default_factory=FeasibleSpace)
    _parameter: Parameter = PrivateAttr()

    @model_validator(mode="after")
    def _parse_and_check(self) -> ParameterSpec:
        space = self.feasible_space
        if self.parameter_type is ParameterType.INT and space.step is None:
            space = self.feasible_space = space.model_copy(update={"step": "1"})
        self._parameter = Parameter.from_wire(
            self.name,
            self.parameter_type,
            min=space.min,
            max=space.max,
            step=space.step,
            values=space.values,
            distribution=space.distribution,
        )
        raise_if_any([SpecIssue(p.field, p.message) for p in self._parameter.problems()])
        return self

    @property
    def parameter(self) -> Parameter:
        """The parameter with its numbers parsed (the form algorithms and the store use)."""
        return self._parameter


class TrialParameterSpec(SpecModel):
    """A ``${trialParameters.<name>}`` placeholder of the trial template and what fills it:
    a search-space parameter name or a trial metadata reference such as ``${trialSpec.Name}``."""

    name: str = ""
    description: str = ""
    reference: str = ""


class TrialTemplate(SpecModel):
    """How each trial runs: a Kubernetes object (``trial_spec``, kept as a plain dict) whose
    container ``primary_container_name`` does the training. Success and failure conditions
    (and primary pod labels) default as in Katib for ``batch/v1`` Job, the Kubeflow training
    jobs and Kubeflow Trainer's TrainJob (``tuner.spec._kinds``)."""

    primary_container_name: str = ""
    primary_pod_labels: dict[str, str] = Field(default_factory=dict)
    success_condition: str = ""
    failure_condition: str = ""
    retain: bool = False
    trial_parameters: list[TrialParameterSpec] = Field(default_factory=list)
    trial_spec: dict[str, Any] | None = None
    config_map: dict[str, Any] | None = None

    @field_validator("config_map")
    @classmethod
    def _no_config_map(cls, value: Any) -> Any:
        if value is not None:
            raise not_supported("trial templates in a ConfigMap; put the template under trialSpec")
        return value

    @model_validator(mode="after")
    def _defaults_and_check(self) -> TrialTemplate:
        kind = _kinds.of(self.trial_spec or {})
        success, failure = kind.success_condition, kind.failure_condition
        if success and not self.primary_pod_labels:  # Katib: with the conditions, as a set
            self.primary_pod_labels = dict(kind.primary_pod_labels)
        self.success_condition = self.success_condition or success
        self.failure_condition = self.failure_condition or failure
        raise_if_any(_template_rules.trial_template_issues(self))
        return self


class ExperimentSpec(SpecModel):
    """The experiment proper. Budget: ``max_trial_count`` None (Katib's unset) means no trial
    limit, so the experiment runs until the goal is reached or the search space is exhausted;
    ``max_failed_trial_count`` None means failed trials never stop it."""

    objective: ObjectiveSpec
    algorithm: AlgorithmSpec
    early_stopping: EarlyStoppingSpec | None = None
    parallel_trial_count: StrictInt = DEFAULT_PARALLEL_TRIAL_COUNT
    max_trial_count: StrictInt | None = None
    max_failed_trial_count: StrictInt | None = None
    parameters: list[ParameterSpec] = Field(default_factory=list)
    trial_template: TrialTemplate
    metrics_collector_spec: MetricsCollectorSpec = Field(default_factory=MetricsCollectorSpec)
    resume_policy: ResumePolicy = ResumePolicy.NEVER
    nas_config: dict[str, Any] | None = None

    @field_validator("nas_config")
    @classmethod
    def _no_nas(cls, value: Any) -> Any:
        if value is not None:
            raise not_supported("neural architecture search (nasConfig); use spec.parameters")
        return value

    @field_validator("parameters")
    @classmethod
    def _space(cls, parameters: list[ParameterSpec]) -> list[ParameterSpec]:
        raise_if_any(_rules.space_issues(parameters))
        return parameters

    @field_validator("parallel_trial_count", "max_trial_count", "max_failed_trial_count")
    @classmethod
    def _count_bound(cls, value: int | None, info: ValidationInfo) -> int | None:
        raise_if_any(_rules.count_issues(str(info.field_name), value))
        return value

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        raise_if_any(_rules.spec_issues(self))
        return self

    def search_space(self) -> SearchSpace:
        """The parameters as a ``tuner.space.SearchSpace``, in spec order."""
        return SearchSpace(tuple(p.parameter for p in self.parameters))


class Experiment(SpecModel):
    """A Katib ``kubeflow.org/v1beta1`` Experiment, validated and with Katib's defaults
    applied. Build it from YAML with ``tuner.spec.loads``/``load_file``, or in Python with
    snake_case names; either way a broken spec raises ``SpecError`` listing every issue.
    ``status`` (present in ``kubectl get -o yaml`` output) is accepted and dropped."""

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ExperimentSpec

    @model_validator(mode="before")
    @classmethod
    def _drop_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and "status" in data:
            return {k: v for k, v in data.items() if k != "status"}
        return data

    @field_validator("api_version")
    @classmethod
    def _known_api_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise SpecError(
                [SpecIssue("", f"{short_repr(value)} is not supported; use {API_VERSION}")]
            )
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value != KIND:
            raise SpecError(
                [SpecIssue("", f"{short_repr(value)} is not an {KIND}; expected kind {KIND}")]
            )
        return value

    def search_space(self) -> SearchSpace:
        """The parameters as a ``tuner.space.SearchSpace``, in spec order."""
        return self.spec.search_space()

    @property
    def max_observations_per_metric(self) -> int | None:
        """The cap on each trial's stored reports of each metric (the annotation
        ``tuner.kubeflow.org/max-observations-per-metric``); None: every report is stored."""
        return _rules.max_observations(self.metadata.annotations)
