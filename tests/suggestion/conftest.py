"""Builders and a real gRPC server (127.0.0.1, port 0, one per test module) for the
suggestion tests. The suite runs with ``--import-mode=importlib``, so the builders reach
the tests as the ``kit`` fixture rather than as an importable module."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import grpc
import pytest

from suggestion.service import EXHAUSTED_METADATA, create_server
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.space import Parameter, SearchSpace

_TYPES = {
    "double": api_pb2.DOUBLE,
    "int": api_pb2.INT,
    "discrete": api_pb2.DISCRETE,
    "categorical": api_pb2.CATEGORICAL,
}
_DISTRIBUTION_NAMES = {
    "uniform": "UNIFORM",
    "logUniform": "LOG_UNIFORM",
    "normal": "NORMAL",
    "logNormal": "LOG_NORMAL",
}
_counter = itertools.count()


@pytest.fixture(scope="module")
def columns_for_every_size() -> Iterator[None]:
    """Decode even the smallest requests as columns (`SMALL_REQUEST` 0), for the tests that
    check the columns against the trial-by-trial decode (module-scoped: hypothesis tests)."""
    from suggestion.service import _trial_decoder

    small = _trial_decoder.SMALL_REQUEST
    _trial_decoder.SMALL_REQUEST = 0
    try:
        yield
    finally:
        _trial_decoder.SMALL_REQUEST = small


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "quality: sample-efficiency checks of the algorithms (seconds, not milliseconds)",
    )


class Kit:
    """Katib-shaped protobuf messages built from plain Python values."""

    Condition = api_pb2.TrialStatus.TrialConditionType

    @staticmethod
    def wire_has_distribution() -> bool:
        return "distribution" in api_pb2.FeasibleSpace.DESCRIPTOR.fields_by_name

    @staticmethod
    def param(
        name: str,
        kind: str,
        *,
        min: str = "",
        max: str = "",
        step: str = "",
        values: Sequence[str] = (),
        distribution: str | None = None,
    ) -> api_pb2.ParameterSpec:
        fs = api_pb2.FeasibleSpace(min=min, max=max, step=step, list=list(values))
        if distribution is not None:
            if not Kit.wire_has_distribution():
                pytest.skip("proto/api.proto lacks Katib's FeasibleSpace.distribution field")
            enum = api_pb2.FeasibleSpace.DESCRIPTOR.fields_by_name["distribution"].enum_type
            fs.distribution = enum.values_by_name[_DISTRIBUTION_NAMES[distribution]].number
        return api_pb2.ParameterSpec(name=name, parameter_type=_TYPES[kind], feasible_space=fs)

    @staticmethod
    def experiment(
        algorithm: str,
        params: Sequence[api_pb2.ParameterSpec],
        *,
        settings: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        name: str | None = None,
        goal: str = "minimize",
        metric: str = "loss",
        early_stopping: str = "",
        early_stopping_settings: Mapping[str, str] = {},  # noqa: B006 - read only
    ) -> api_pb2.Experiment:
        pairs = settings.items() if isinstance(settings, Mapping) else settings
        return api_pb2.Experiment(
            name=name or f"exp-{next(_counter)}",
            spec=api_pb2.ExperimentSpec(
                parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=list(params)),
                objective=api_pb2.ObjectiveSpec(
                    type=api_pb2.MAXIMIZE if goal == "maximize" else api_pb2.MINIMIZE,
                    objective_metric_name=metric,
                ),
                algorithm=api_pb2.AlgorithmSpec(
                    algorithm_name=algorithm,
                    algorithm_settings=[
                        api_pb2.AlgorithmSetting(name=k, value=v) for k, v in pairs
                    ],
                ),
                early_stopping=api_pb2.EarlyStoppingSpec(
                    algorithm_name=early_stopping,
                    algorithm_settings=[
                        api_pb2.EarlyStoppingSetting(name=k, value=v)
                        for k, v in early_stopping_settings.items()
                    ],
                ),
            ),
        )

    @staticmethod
    def trial(
        name: str,
        assignment: Mapping[str, str],
        *,
        condition: int = api_pb2.TrialStatus.SUCCEEDED,
        value: float | None = None,
        metric: str = "loss",
        completed_at: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> api_pb2.Trial:
        metrics = [] if value is None else [api_pb2.Metric(name=metric, value=repr(value))]
        return api_pb2.Trial(
            name=name,
            spec=api_pb2.TrialSpec(
                parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(
                    assignments=[
                        api_pb2.ParameterAssignment(name=k, value=v) for k, v in assignment.items()
                    ]
                ),
                labels=dict(labels or {}),
            ),
            status=api_pb2.TrialStatus(
                condition=condition,  # type: ignore[arg-type]
                completion_time=completed_at,
                observation=api_pb2.Observation(metrics=metrics),
            ),
        )

    @staticmethod
    def request(
        experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial], count: int
    ) -> api_pb2.GetSuggestionsRequest:
        return api_pb2.GetSuggestionsRequest(
            experiment=experiment, trials=list(trials), current_request_number=count
        )

    @staticmethod
    def assignments(reply: api_pb2.GetSuggestionsReply) -> list[dict[str, str]]:
        return [{a.name: a.value for a in p.assignments} for p in reply.parameter_assignments]

    @staticmethod
    def space(experiment: api_pb2.Experiment) -> SearchSpace:
        """The domain space of an experiment, to check replies with `tuner.space`."""
        params = []
        for p in experiment.spec.parameter_specs.parameters:
            kind = {v: k for k, v in _TYPES.items()}[p.parameter_type]
            fs = p.feasible_space
            params.append(
                Parameter.from_wire(
                    p.name, kind, min=fs.min, max=fs.max, step=fs.step, values=list(fs.list)
                )
            )
        return SearchSpace(tuple(params))

    @staticmethod
    def key(assignment: Mapping[str, str], space: SearchSpace) -> tuple[Any, ...]:
        """A parameter set as typed values, so "1" and "1.0" of a double are one point."""
        parsed = space.parse(assignment)
        return tuple(parsed[n] for n in space.names)


class Run:
    """Drives one experiment through GetSuggestions the way a controller does: every call
    carries all trials so far, with the labels the reply gave them; new trials are
    completed with ``objective`` unless told to stay pending."""

    def __init__(
        self,
        stub: api_pb2_grpc.SuggestionStub,
        experiment: api_pb2.Experiment,
        objective: Callable[[dict[str, float | int | str]], float] | None = None,
    ) -> None:
        self.stub = stub
        self.experiment = experiment
        self.space = Kit.space(experiment)
        self.objective = objective or (lambda a: 0.0)
        self.trials: list[api_pb2.Trial] = []
        self.suggested: list[dict[str, str]] = []
        self.labels: list[dict[str, str]] = []
        self.exhausted_marked = False

    def ask(self, count: int, *, pending: bool = False) -> list[dict[str, str]]:
        reply, call = self.stub.GetSuggestions.with_call(
            Kit.request(self.experiment, self.trials, count)
        )
        self.exhausted_marked = EXHAUSTED_METADATA in tuple(call.trailing_metadata() or ())
        new = Kit.assignments(reply)
        labels = [dict(p.labels) for p in reply.parameter_assignments]
        for assignment, trial_labels in zip(new, labels, strict=True):
            name = f"{self.experiment.name}-t{len(self.trials)}"
            if pending:
                trial = Kit.trial(
                    name, assignment, condition=api_pb2.TrialStatus.RUNNING, labels=trial_labels
                )
            else:
                value = self.objective(self.space.parse(assignment))
                trial = Kit.trial(name, assignment, value=value, labels=trial_labels)
            self.trials.append(trial)
        self.suggested.extend(new)
        self.labels.extend(labels)
        return new

    def keys(self) -> list[tuple[Any, ...]]:
        return [Kit.key(a, self.space) for a in self.suggested]

    def member_keys(self) -> list[tuple[Any, ...]]:
        """Each suggested trial as its point and labels: what distinguishes pbt's trials."""
        return [
            (Kit.key(a, self.space), tuple(sorted(labels.items())))
            for a, labels in zip(self.suggested, self.labels, strict=True)
        ]

    def values(self) -> list[float]:
        return [
            float(t.status.observation.metrics[0].value)
            for t in self.trials
            if t.status.observation.metrics
        ]


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


@pytest.fixture(scope="session")
def run() -> type[Run]:
    return Run


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    server, port = create_server("127.0.0.1:0")
    yield port
    server.stop(None)


@pytest.fixture(scope="module")
def channel(server_port: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server_port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def suggestions(channel: grpc.Channel) -> api_pb2_grpc.SuggestionStub:
    return api_pb2_grpc.SuggestionStub(channel)


@pytest.fixture(scope="module")
def early_stopping(channel: grpc.Channel) -> api_pb2_grpc.EarlyStoppingStub:
    return api_pb2_grpc.EarlyStoppingStub(channel)
