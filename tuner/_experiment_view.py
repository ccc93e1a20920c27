"""A stored experiment as the read-only faces (`tuner get`/`describe`/`best`, the dashboard)
show it: its record plus what the stored spec says about objective and parameters, read
tolerantly, since a store may hold specs written by another version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tuner.space import Direction, Parameter, SpaceError, Value
from tuner.spec import ParameterSpec, SpecError
from tuner.store import ExperimentRecord

_View = TypeVar("_View", bound="ExperimentView")


@dataclass(frozen=True)
class ExperimentView:
    """An experiment record with what its stored spec says about objective and parameters."""

    record: ExperimentRecord
    parameters: dict[str, Parameter] = field(default_factory=dict)

    @classmethod
    def of(cls: type[_View], record: ExperimentRecord) -> _View:
        # Parameter by parameter, so that one the current model refuses (a spec stored by
        # another version) leaves only that parameter's values as wire strings.
        parsed: dict[str, Parameter] = {}
        for raw in record.spec.get("parameters") or []:
            try:
                spec = ParameterSpec.model_validate(raw)
            except (SpecError, ValueError):
                continue
            parsed[spec.name] = spec.parameter
        return cls(record, parsed)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def objective(self) -> dict[str, Any]:
        return dict(self.record.spec.get("objective") or {})

    @property
    def direction(self) -> Direction | None:
        return self.record.direction

    @property
    def metric_name(self) -> str | None:
        return self.objective.get("objectiveMetricName")

    def typed(self, wire: Mapping[str, str]) -> dict[str, Value]:
        """A trial's parameters with their types; a value that does not parse stays a string."""
        out: dict[str, Value] = {}
        for name, text in wire.items():
            parameter = self.parameters.get(name)
            try:
                out[name] = text if parameter is None else parameter.parse(text)
            except SpaceError:
                out[name] = text
        return out
