"""The shortcuts of the columnar decode give what protobuf and ``float`` give, or decline:
the assignments checked by re-encoding them (`_wire.assigned_values`), the stepless doubles
read as one pass (`TrialDecoder._spans`), and the grid indices taken from the columns
(`TrialTable.grid_indices`), and the trials read from the request's received bytes."""

from __future__ import annotations

import math
from concurrent import futures
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from suggestion.algorithms._points import PointSet
from suggestion.service import SuggestionEngine, TrialDecoder, _wire, create_server
from suggestion.service._convert import RequestError, trial_bytes
from suggestion.service._suggestion import SuggestionServicer
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.space import Parameter, SearchSpace

# The columns are what these tests check, also on requests of a few trials.
pytestmark = pytest.mark.usefixtures("columns_for_every_size")

NAMES = ("x", "lr", "a-much-longer-parameter-name")
Assignments = api_pb2.TrialSpec.ParameterAssignments

texts = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.text(max_size=8),
    st.text(alphabet="0123456789.eE+-_ xabcfinINF", max_size=12),
    st.sampled_from(["", "\x00", "0.5\x00", "1" * 130, "1" * 120, "é"]),
)


def _group(draw: Any) -> bytes:
    """One trial's ``ParameterAssignments`` on the wire: usually the names in order, else
    reordered, missing, repeated or unknown names, or a field added."""
    names = list(NAMES)
    shape = draw(st.integers(0, 9))
    if shape == 1:
        names = draw(st.permutations(names))
    elif shape == 2:
        names = draw(st.lists(st.sampled_from([*NAMES, "y"]), max_size=5))
    data = Assignments(
        assignments=[api_pb2.ParameterAssignment(name=n, value=draw(texts)) for n in names]
    ).SerializeToString()
    if shape == 3:  # an assignment with its value before its name
        value = api_pb2.ParameterAssignment(value="0.5").SerializeToString()
        name = api_pb2.ParameterAssignment(name=NAMES[0]).SerializeToString()
        item = value + name
        data = bytes([0x0A, len(item)]) + item + data
    return data


@st.composite
def groups(draw: Any) -> list[bytes]:
    return [_group(draw) for _ in range(draw(st.integers(0, 6)))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs=groups())
def test_assigned_values_are_protobufs_or_declined(blobs: list[bytes]) -> None:
    wire_names = [n.encode() for n in NAMES]
    found = _wire.assigned_values(blobs, wire_names)
    parsed = [Assignments.FromString(b).assignments for b in blobs]
    usual = all([a.name for a in p] == list(NAMES) for p in parsed)
    if found is None:
        # Declined only where the shape is not the usual one, or a value is long or has
        # a NUL byte (which the check by re-encoding leaves to the general path).
        assert (
            not usual
            or any(
                len(a.value.encode()) >= 90 or "\x00" in a.value or not a.value
                for p in parsed
                for a in p
            )
            or any(b"\x00" in b for b in blobs)
        )
        return
    assert usual
    assert found == [a.value.encode() for p in parsed for a in p]


def test_assigned_values_take_the_usual_shape() -> None:
    blobs = [
        Assignments(
            assignments=[
                api_pb2.ParameterAssignment(name=n, value=repr(i / 7 + j))
                for j, n in enumerate(NAMES)
            ]
        ).SerializeToString()
        for i in range(50)
    ]
    found = _wire.assigned_values(blobs, [n.encode() for n in NAMES])
    assert found == [repr(i / 7 + j).encode() for i in range(50) for j in range(len(NAMES))]


# -- stepless doubles read at once -----------------------------------------------------

DOUBLES = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="-1", max="1"),
        Parameter.from_wire("y", "double", min="0.001", max="1000", distribution="logUniform"),
        Parameter.from_wire("z", "double", min="-1e300", max="1e300"),
    )
)
MIXED = SearchSpace(
    (
        *DOUBLES.parameters,
        Parameter.from_wire("n", "int", min="1", max="9"),
        Parameter.from_wire("g", "double", min="0", max="1", step="0.25"),
    )
)
number_text = st.one_of(
    st.floats(-1, 1).map(repr),
    st.floats(0.001, 1000).map(lambda v: f"{v:.6e}"),
    st.floats(-1e300, 1e300).map(repr),
    st.sampled_from(
        [
            "0", "-0", "+0.5", ".5", "5.", "1e-3", "1E-3", "0.1e1", "00.5", "-1", "1",
            " 0.5", "0.5 ", "0_5", "1_000", "inf", "-inf", "nan", "Infinity", "0x1p-1",
            "1e999", "-1e999", "1e-400", "1.2.3", "e5", "1e", ".", "-", "+", "", "0.5\x00",
            "٣", "0.25",
        ]
    ),
)  # fmt: skip


@st.composite
def double_trials(draw: Any, space: SearchSpace) -> list[bytes]:
    values: dict[str, Any] = {"n": st.integers(1, 9).map(str), "g": st.sampled_from(["0", "0.5"])}
    trials = []
    for i in range(draw(st.integers(1, 12))):
        assignments = [
            api_pb2.ParameterAssignment(name=p.name, value=draw(values.get(p.name, number_text)))
            for p in space.parameters
        ]
        trials.append(
            api_pb2.Trial(
                name=f"t{i}",
                spec=api_pb2.TrialSpec(parameter_assignments=Assignments(assignments=assignments)),
                status=api_pb2.TrialStatus(
                    condition=api_pb2.TrialStatus.SUCCEEDED,
                    observation=api_pb2.Observation(
                        metrics=[api_pb2.Metric(name="loss", value=draw(number_text))]
                    ),
                ),
            )
        )
    return trial_bytes(api_pb2.GetSuggestionsRequest(trials=trials))


def _decoded(space: SearchSpace, blobs: list[bytes], by_trial: bool) -> Any:
    decoder = TrialDecoder(space, "loss")
    try:
        table = decoder.by_trial(blobs) if by_trial else decoder.table(blobs)
    except RequestError as e:
        return str(e)
    # Compared by their bits: -0.0 and 0.0 are equal floats, not the same value.
    views = [
        (v.name, {k: (type(x), repr(x)) for k, x in v.assignment.items()}, v.state, v.values)
        for v in table
    ]
    return views, sorted(table.float_columns)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), space=st.sampled_from([DOUBLES, MIXED]))
@example(data=None, space=DOUBLES)
def test_doubles_read_at_once_equal_float_or_fall_back(data: Any, space: SearchSpace) -> None:
    if data is None:  # every text a usual decimal: the one-pass read
        blobs = trial_bytes(
            api_pb2.GetSuggestionsRequest(
                trials=[
                    api_pb2.Trial(
                        name=f"t{i}",
                        spec=api_pb2.TrialSpec(
                            parameter_assignments=Assignments(
                                assignments=[
                                    api_pb2.ParameterAssignment(name=p.name, value=repr(-i / 9))
                                    for p in space.parameters
                                ]
                            )
                        ),
                    )
                    for i in range(9)
                ]
            )
        )
        spans, unread = TrialDecoder(space, "loss")._spans(_values(blobs), 9, 3)
        assert set(spans) == {"x", "z"}  # y's bounds, from 0.001, exclude every value here
        assert not unread  # held unread only when every column is surely inside
    else:
        blobs = data.draw(double_trials(space))
    assert _decoded(space, blobs, by_trial=False) == _decoded(space, blobs, by_trial=True)


def _values(blobs: list[bytes]) -> list[bytes]:
    trials = [api_pb2.Trial.FromString(b) for b in blobs]
    return [a.value.encode() for t in trials for a in t.spec.parameter_assignments.assignments]


@settings(max_examples=200, deadline=None)
@given(st.lists(number_text, min_size=1, max_size=20))
def test_one_pass_values_are_floats_bit_for_bit(texts: list[str]) -> None:
    space = SearchSpace((Parameter.from_wire("z", "double", min="-1e308", max="1e308"),))
    decoder = TrialDecoder(space, "loss")
    columns, unread = decoder._spans([t.encode() for t in texts], len(texts), 1)
    if unread:  # held as texts, read by `TrialTable.columns`
        assert unread["z"] == [t.encode() for t in texts]
        columns = {"z": list(map(float, unread["z"]))}
    if not columns:
        return  # declined: the general path reads them (the test above compares it)
    expected = [float(t) for t in texts]
    assert all(math.isfinite(v) and -1e308 <= v <= 1e308 for v in expected)
    assert [(type(v), repr(v)) for v in columns["z"]] == [(float, repr(v)) for v in expected]


# -- grid indices from the columns -----------------------------------------------------

GRID = SearchSpace(
    (
        Parameter.from_wire("g", "double", min="-0.3", max="0.9", step="0.3"),
        Parameter.from_wire("n", "int", min="-2", max="7", step="3"),
        Parameter.from_wire("c", "categorical", values=["a", "b", "c"]),
        Parameter.from_wire("d", "discrete", values=["1", "2.5", "4"]),
    )
)
grid_value = {
    "g": st.sampled_from(["-0.3", "0", "0.3", "0.6", "0.9", "0.30", "6e-1", "-0.0"]),
    "n": st.sampled_from(["-2", "1", "4", "7"]),
    "c": st.sampled_from(["a", "b", "c"]),
    "d": st.sampled_from(["1", "2.5", "4", "4.0", "1.0"]),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries(grid_value), max_size=15))
def test_grid_indices_from_the_columns_equal_each_points_index(rows: list[dict[str, str]]) -> None:
    trials = [
        api_pb2.Trial(
            name=f"t{i}",
            spec=api_pb2.TrialSpec(
                parameter_assignments=Assignments(
                    assignments=[
                        api_pb2.ParameterAssignment(name=k, value=v) for k, v in row.items()
                    ]
                )
            ),
        )
        for i, row in enumerate(rows)
    ]
    table = TrialDecoder(GRID, "loss").table(
        trial_bytes(api_pb2.GetSuggestionsRequest(trials=trials))
    )
    points = PointSet(GRID)
    expected = [points.index(points.key(v.assignment)) for v in table]
    assert PointSet(GRID).trial_indices(list(table)) == expected
    if rows:
        assert table.grid_indices(points) == expected
    assert points.trial_indices(table) == expected


# -- the trials read from the received bytes -------------------------------------------


def _servers() -> list[tuple[grpc.Server, int]]:
    """Our server (GetSuggestions given the request's bytes) and the same servicer
    registered by the generated code (given the parsed request only)."""
    generated = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_SuggestionServicer_to_server(SuggestionServicer(SuggestionEngine()), generated)
    port = generated.add_insecure_port("127.0.0.1:0")
    generated.start()
    return [create_server("127.0.0.1:0", engine=SuggestionEngine()), (generated, port)]


def _call(port: int, data: bytes) -> tuple[Any, ...]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/api.v1.beta1.Suggestion/GetSuggestions",
            request_serializer=lambda raw: raw,
            response_deserializer=api_pb2.GetSuggestionsReply.FromString,
        )
        try:
            return ("ok", call(data, timeout=30).SerializeToString())
        except grpc.RpcError as e:
            return (e.code(), e.details())


def test_trials_read_from_the_received_bytes_answer_as_from_the_parsed_request(kit: Any) -> None:
    exp = kit.experiment(
        "random",
        [kit.param("x", "double", min="0", max="1"), kit.param("n", "int", min="1", max="3")],
        settings={"random_state": "5"},
    )
    trials = [kit.trial(f"t{i}", {"x": repr(i / 9), "n": "2"}, value=i / 3) for i in range(6)]
    usual = kit.request(exp, trials, 4).SerializeToString()
    odd_trial = (  # the name twice (the last counts), the status before the spec
        api_pb2.Trial(name="ignored").SerializeToString()
        + api_pb2.Trial(name="t6", status=trials[0].status).SerializeToString()
        + api_pb2.Trial(spec=kit.trial("t6", {"x": "0.5", "n": "1"}).spec).SerializeToString()
    )
    odd = usual + b"\x12" + bytes([len(odd_trial)]) + odd_trial
    bad_value = (
        usual
        + api_pb2.GetSuggestionsRequest(
            trials=[kit.trial("t7", {"x": "2", "n": "1"})]
        ).SerializeToString()
    )
    servers = _servers()
    try:
        for data in (usual, odd, bad_value, b"\x12\x05abc", b"\x0a\x80"):
            ours, generated = (_call(port, data) for _, port in servers)
            assert ours == generated, data[-40:]
        assert _call(servers[0][1], odd)[0] == "ok"
        assert _call(servers[0][1], bad_value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        for server, _ in servers:
            server.stop(None)


def test_metrics_reported_alike_by_every_trial_are_read_without_grouping(
    kit: Any, monkeypatch: Any
) -> None:
    space = SearchSpace((Parameter.from_wire("x", "double", min="0", max="1"),))
    trials = []
    for i in range(8):
        t = kit.trial(f"t{i}", {"x": repr(i / 8)}, value=i / 3, metric="acc")
        t.status.observation.metrics.add(name="loss", value=repr(1 - i / 3))
        t.status.observation.metrics.add(name="latency", value="unavailable" if i == 5 else "3")
        trials.append(t)
    trials[6].status.condition = api_pb2.TrialStatus.RUNNING
    blobs = trial_bytes(api_pb2.GetSuggestionsRequest(trials=trials))
    objectives = [("loss",), ("acc", "loss"), ("loss", "latency")]
    expected = [list(TrialDecoder(space, m).by_trial(blobs)) for m in objectives]

    def no_grouping(*args: Any) -> None:
        raise AssertionError("the metrics were grouped trial by trial")

    monkeypatch.setattr(_wire, "groups", no_grouping)
    for metrics, views in zip(objectives, expected, strict=True):
        decoder = TrialDecoder(space, metrics)
        table = decoder._columnar(blobs)
        assert table is not None and list(table) == views
    assert [v.state.name for v in expected[2]][5] == "FAILED"  # its latency is unavailable
