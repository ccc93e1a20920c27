"""Fuzzing the gRPC services over real gRPC on loopback ports: GetSuggestions and
ValidateAlgorithmSettings requests built from random specs and trials, and
ReportObservationLog requests to a DBManager over a real SQLite file. Every answer is a
reply or a refusal (INVALID_ARGUMENT naming a field, or NOT_FOUND for an unknown algorithm or
trial), never an internal error; a refused report writes nothing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from suggestion.service import create_server
from tuner.dbmanager import serve
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.store import Store

SCALE = 25 if os.environ.get("TUNER_FUZZ_PROFILE") == "fuzz" else 1
REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
FIELD_NAMED = re.compile(
    r"experiment|trials?\b|trials\[|current_request_number|total_request_number|algorithm"
    r"|parameter|search space|setting|trial_name|observation_log|metric|time_stamp|step"
    r"|tuner-|report|trial"
)
# Cheap algorithms mostly; the model-based ones are slow per call, so sampled less often.
ALGORITHMS = ["random", "grid", "sobol", "tpe", "cmaes", "random", "grid", "no-such", ""]

numbers_as_text = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "1e400", "-0", "0x10", " 3 ", "9" * 400]),
)
names = st.one_of(st.sampled_from(["x", "y", "lr"]), st.text(max_size=12))


@st.composite
def parameter_specs(draw: st.DrawFn) -> api_pb2.ParameterSpec:
    return api_pb2.ParameterSpec(
        name=draw(names),
        parameter_type=draw(st.sampled_from(api_pb2.ParameterType.values())),
        feasible_space=api_pb2.FeasibleSpace(
            min=draw(numbers_as_text),
            max=draw(numbers_as_text),
            step=draw(st.one_of(st.just(""), numbers_as_text)),
            list=draw(st.lists(st.one_of(numbers_as_text, st.text(max_size=6)), max_size=4)),
            distribution=draw(st.sampled_from(api_pb2.Distribution.values())),
        ),
    )


@st.composite
def experiments(draw: st.DrawFn) -> api_pb2.Experiment:
    settings_ = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["random_state", "n_startup_trials", "sigma", "x", ""]),
                st.one_of(numbers_as_text, st.text(max_size=8)),
            ),
            max_size=3,
        )
    )
    return api_pb2.Experiment(
        name=draw(st.text(max_size=10)),
        spec=api_pb2.ExperimentSpec(
            parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(
                parameters=draw(st.lists(parameter_specs(), max_size=3))
            ),
            objective=api_pb2.ObjectiveSpec(
                # proto3 enums are open: an out-of-range number on purpose.
                type=draw(st.integers(min_value=0, max_value=3)),  # type: ignore[arg-type]
                goal=draw(st.floats(allow_nan=True)),
                objective_metric_name=draw(st.sampled_from(["loss", "", "a=b"])),
            ),
            algorithm=api_pb2.AlgorithmSpec(
                algorithm_name=draw(st.sampled_from(ALGORITHMS)),
                algorithm_settings=[
                    api_pb2.AlgorithmSetting(name=n, value=v) for n, v in settings_
                ],
            ),
            parallel_trial_count=draw(st.integers(min_value=-3, max_value=5)),
            max_trial_count=draw(st.integers(min_value=-3, max_value=50)),
        ),
    )


@st.composite
def trials(draw: st.DrawFn) -> api_pb2.Trial:
    return api_pb2.Trial(
        name=draw(st.text(max_size=8)),
        spec=api_pb2.TrialSpec(
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(
                assignments=[
                    api_pb2.ParameterAssignment(name=n, value=v)
                    for n, v in draw(st.lists(st.tuples(names, numbers_as_text), max_size=3))
                ]
            )
        ),
        status=api_pb2.TrialStatus(
            # An out-of-range condition number on purpose (open enum).
            condition=draw(st.integers(min_value=0, max_value=8)),  # type: ignore[arg-type]
            start_time=draw(st.sampled_from(["", "2024-01-02T03:04:05Z", "yesterday"])),
            observation=api_pb2.Observation(
                metrics=[
                    api_pb2.Metric(name=n, value=v)
                    for n, v in draw(
                        st.lists(
                            st.tuples(st.sampled_from(["loss", "x"]), numbers_as_text), max_size=2
                        )
                    )
                ]
            ),
        ),
    )


@pytest.fixture(scope="module")
def suggestion_stub() -> Iterator[api_pb2_grpc.SuggestionStub]:
    server, port = create_server("127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield api_pb2_grpc.SuggestionStub(channel)
    finally:
        server.stop(None)


def _assert_refusal(error: grpc.RpcError) -> None:
    assert error.code() in REFUSALS, (error.code(), error.details())
    assert FIELD_NAMED.search(error.details() or ""), error.details()
    assert len(error.details() or "") <= 2_100


def _valid_experiment() -> api_pb2.Experiment:
    return api_pb2.Experiment(
        name="seed",
        spec=api_pb2.ExperimentSpec(
            parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(
                parameters=[
                    api_pb2.ParameterSpec(
                        name="x",
                        parameter_type=api_pb2.DOUBLE,
                        feasible_space=api_pb2.FeasibleSpace(min="0", max="1"),
                    )
                ]
            ),
            objective=api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE, objective_metric_name="loss"),
            algorithm=api_pb2.AlgorithmSpec(algorithm_name="random"),
        ),
    )


def _with_setting(value: str) -> api_pb2.Experiment:
    experiment = _valid_experiment()
    experiment.spec.algorithm.algorithm_settings.add(name="random_state", value=value)
    return experiment


@settings(max_examples=250 * SCALE)
# Seed: a 20 KB setting value once ended as RESOURCE_EXHAUSTED (issue 17).
@example(_with_setting("x" * 20_000), [], 1)
@given(experiments(), st.lists(trials(), max_size=4), st.integers(min_value=-2, max_value=8))
def test_get_suggestions_answers_or_refuses_naming_a_field(
    suggestion_stub: api_pb2_grpc.SuggestionStub,
    experiment: api_pb2.Experiment,
    trial_list: list[api_pb2.Trial],
    count: int,
) -> None:
    request = api_pb2.GetSuggestionsRequest(
        experiment=experiment,
        trials=trial_list,
        current_request_number=count,
        total_request_number=count + len(trial_list),
    )
    try:
        reply = suggestion_stub.GetSuggestions(request, timeout=60)
    except grpc.RpcError as e:
        _assert_refusal(e)
        return
    assert len(reply.parameter_assignments) <= max(count, 0)


@settings(max_examples=250 * SCALE)
@example(_with_setting("x" * 20_000))
@given(experiments())
def test_validate_algorithm_settings_answers_or_refuses_naming_a_field(
    suggestion_stub: api_pb2_grpc.SuggestionStub, experiment: api_pb2.Experiment
) -> None:
    request = api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment)
    try:
        suggestion_stub.ValidateAlgorithmSettings(request, timeout=60)
    except grpc.RpcError as e:
        _assert_refusal(e)


# -- DBManager ----------------------------------------------------------------------------

TRIALS = ("exp-a", "exp-b")


@pytest.fixture(scope="module")
def dbmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, object]]:
    path: Path = tmp_path_factory.mktemp("fuzz-db") / "tuner.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
        store.create_trials("exp", [(name, {"x": "1"}) for name in TRIALS])
        with serve(store) as address, grpc.insecure_channel(address) as channel:
            yield store, api_pb2_grpc.DBManagerStub(channel)


metric_logs = st.lists(
    st.builds(
        lambda stamp, name, value: api_pb2.MetricLog(
            time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value)
        ),
        st.sampled_from(["", "2024-01-02T03:04:05Z", "2024-13-45T99:00:00Z", "now", "1e9"]),
        st.one_of(st.sampled_from(["loss", "acc", ""]), st.text(max_size=10)),
        st.one_of(numbers_as_text, st.sampled_from(["unavailable", "NaN", "+Inf"])),
    ),
    max_size=4,
)


def _count(store: Store) -> int:
    return sum(len(store.get_observations(name)) for name in TRIALS)


@settings(max_examples=250 * SCALE)
# Found by this suite: a 20 KB metric value came back as RESOURCE_EXHAUSTED.
@example("exp-a", [api_pb2.MetricLog(metric=api_pb2.Metric(name="loss", value="x" * 20_000))], [])
@given(
    st.one_of(st.sampled_from([*TRIALS, "", "nope"]), st.text(max_size=10)),
    metric_logs,
    st.lists(
        st.tuples(
            st.sampled_from(["tuner-step", "tuner-report-id", "tuner-trial-token"]),
            st.one_of(
                st.sampled_from(["0", "-1", "1e3", "9" * 30, ""]),
                st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=8),
            ),
        ),
        max_size=2,
        unique_by=lambda kv: kv[0],
    ),
)
def test_report_observation_log_stores_or_refuses_and_writes_nothing(
    dbmanager: tuple[Store, api_pb2_grpc.DBManagerStub],
    trial: str,
    logs: list[api_pb2.MetricLog],
    metadata: list[tuple[str, str]],
) -> None:
    store, stub = dbmanager
    before = _count(store)
    request = api_pb2.ReportObservationLogRequest(
        trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)
    )
    try:
        stub.ReportObservationLog(request, metadata=metadata, timeout=60)
    except grpc.RpcError as e:
        _assert_refusal(e)
        assert _count(store) == before, "a refused report wrote observations"
        return
    assert _count(store) >= before
