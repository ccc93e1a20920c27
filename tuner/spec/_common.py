"""Spec models shared with Katib's ``common/v1beta1`` API: object metadata, objective,
algorithm and early stopping, metrics collector."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from tuner.space import Direction
from tuner.spec import _rules
from tuner.spec._base import KatibString, SpecModel
from tuner.spec._issues import SpecError, SpecIssue, raise_if_any
from tuner.spec._katib import (
    DEFAULT_FILE_METRICS_PATH,
    DEFAULT_NAMESPACE,
    IGNORED_OBJECT_META_FIELDS,
    CollectorKind,
    FileFormat,
    FileSystemKind,
    MetricStrategyType,
)


def not_supported(hint: str) -> SpecError:
    """The error for a Katib field tuner refuses rather than silently ignores."""
    return SpecError([SpecIssue("", f"not supported by tuner: {hint}")])


class ObjectMeta(SpecModel):
    """The part of Kubernetes object metadata an Experiment uses. Server-set fields of a
    ``kubectl get -o yaml`` dump (uid, creationTimestamp, ...) are accepted and dropped."""

    name: str
    namespace: str = DEFAULT_NAMESPACE
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in IGNORED_OBJECT_META_FIELDS}
        return data

    @model_validator(mode="after")
    def _check(self) -> ObjectMeta:
        raise_if_any(_rules.metadata_issues(self))
        return self


class MetricStrategy(SpecModel):
    """How one metric's reported values reduce to the trial's value (min, max or latest)."""

    name: str
    value: MetricStrategyType


class ObjectiveSpec(SpecModel):
    """What to optimize. ``metric_strategies`` is completed as Katib's webhook does: every
    metric without an entry gets ``min`` when minimizing and ``max`` when maximizing (the
    additional metrics included). ``goal`` unset means: run until the budget is spent."""

    type: Direction
    goal: float | None = None
    objective_metric_name: str
    additional_metric_names: list[str] = Field(default_factory=list)
    metric_strategies: list[MetricStrategy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _defaults_and_check(self) -> ObjectiveSpec:
        raise_if_any(_rules.objective_issues(self))
        have = {strategy.name for strategy in self.metric_strategies}
        default = (
            MetricStrategyType.MIN
            if self.type is Direction.MINIMIZE
            else MetricStrategyType.MAX
        )
        missing = [name for name in self.metric_names if name not in have]
        self.metric_strategies = self.metric_strategies + [
            MetricStrategy(name=name, value=default) for name in missing
        ]
        return self

    @property
    def metric_names(self) -> list[str]:
        """The objective metric first, then the additional metrics."""
        return [self.objective_metric_name, *self.additional_metric_names]

    def strategy(self, metric_name: str) -> MetricStrategyType:
        """The strategy of one of ``metric_names`` (KeyError for another name)."""
        for strategy in self.metric_strategies:
            if strategy.name == metric_name:
                return strategy.value
        raise KeyError(metric_name)


class AlgorithmSetting(SpecModel):
    """One ``{name, value}`` setting of a suggestion or early-stopping algorithm; numbers in
    the YAML are kept as Katib's strings. The algorithm itself validates them."""

    name: str
    value: KatibString = ""


EarlyStoppingSetting = AlgorithmSetting


class AlgorithmSpec(SpecModel):
    """The suggestion algorithm by name (e.g. ``random``, ``tpe``) and its settings."""

    algorithm_name: str
    algorithm_settings: list[AlgorithmSetting] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> AlgorithmSpec:
        raise_if_any(_rules.algorithm_issues(self))
        return self

    @property
    def settings(self) -> dict[str, str]:
        """The settings as a name -> value mapping (names are unique once validated)."""
        return {setting.name: setting.value for setting in self.algorithm_settings}


class EarlyStoppingSpec(AlgorithmSpec):
    """The early-stopping algorithm (e.g. ``medianstop``) and its settings."""


class CollectorSpec(SpecModel):
    """Which metrics collector reads the trial's metrics: any of Katib's kinds. Whether tuner
    has a collector of that kind, for the chosen executor, is checked before a run (the
    metrics collectors' registry knows; ``tuner validate`` asks it too)."""

    kind: CollectorKind = CollectorKind.STDOUT
    custom_collector: dict[str, Any] | None = None

    @field_validator("custom_collector")
    @classmethod
    def _no_custom(cls, value: Any) -> Any:
        if value is not None:
            raise not_supported("custom metrics collector containers")
        return value


class FilterSpec(SpecModel):
    """Regular expressions that find ``(name)`` and ``(value)`` in text metrics output."""

    metrics_format: list[str] = Field(default_factory=list)


class FileSystemPath(SpecModel):
    """Where a File collector reads metrics, and their format."""

    path: str = ""
    kind: FileSystemKind | None = None
    format: FileFormat | None = None


class SourceSpec(SpecModel):
    """Where metrics come from: a file (File collector) and the text filter."""

    file_system_path: FileSystemPath | None = None
    filter: FilterSpec | None = None
    http_get: dict[str, Any] | None = None

    @field_validator("http_get")
    @classmethod
    def _no_http(cls, value: Any) -> Any:
        if value is not None:
            raise not_supported("httpGet metrics sources (PrometheusMetric collector)")
        return value


class MetricsCollectorSpec(SpecModel):
    """How trial metrics are collected; Katib's default is the StdOut collector. For the File
    collector, path, kind and format default as in Katib (``/var/log/katib/metrics.log``,
    ``File``, ``TEXT``)."""

    source: SourceSpec | None = None
    collector: CollectorSpec = Field(default_factory=CollectorSpec)

    @model_validator(mode="after")
    def _defaults_and_check(self) -> MetricsCollectorSpec:
        if self.collector.kind is CollectorKind.FILE:
            source = self.source or SourceSpec()
            given = source.file_system_path or FileSystemPath()
            self.source = source.model_copy(
                update={
                    "file_system_path": given.model_copy(
                        update={
                            "path": given.path or DEFAULT_FILE_METRICS_PATH,
                            "kind": given.kind or FileSystemKind.FILE,
                            "format": given.format or FileFormat.TEXT,
                        }
                    )
                }
            )
        raise_if_any(_rules.metrics_collector_issues(self))
        return self
