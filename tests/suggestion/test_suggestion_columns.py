"""The columnar decode of a request's trials equals the trial-by-trial one: on randomised
requests (every parameter type, every condition, missing, unavailable and non-finite
metrics, times, labels, assignments in another order, fields repeated or left out on the
wire), cold and warm, and it refuses malformed trials with the same message."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from suggestion.algorithms import TrialState, TrialTable
from suggestion.service import SuggestionEngine, TrialDecoder
from suggestion.service._convert import RequestError, trial_bytes
from suggestion.service._sessions import SuggestionRequest
from tuner.protos import api_pb2
from tuner.space import Direction, Parameter, SearchSpace

# The columns are what these tests check, also on requests of a few trials.
pytestmark = pytest.mark.usefixtures("columns_for_every_size")

SPACE = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="-1", max="1"),
        Parameter.from_wire("lr", "double", min="0.001", max="0.1", distribution="logUniform"),
        Parameter.from_wire("g", "double", min="0", max="1", step="0.25"),
        Parameter.from_wire("n", "int", min="1", max="9"),
        Parameter.from_wire("act", "categorical", values=["relu", "tanh", "gelu"]),
        Parameter.from_wire("bs", "discrete", values=["16", "32", "64"]),
    )
)
C = api_pb2.TrialStatus

good_value = {
    "x": st.floats(-1, 1).map(repr) | st.sampled_from(["0", "-1", "1.", ".5", "1e-3", " 0.5 "]),
    "lr": st.floats(0.001, 0.1).map(repr),
    "g": st.sampled_from(["0", "0.25", "0.5", "0.75", "1", "1.0", "0.250"]),
    "n": st.integers(1, 9).map(str),
    "act": st.sampled_from(["relu", "tanh", "gelu"]),
    "bs": st.sampled_from(["16", "32", "64"]),
}
bad_value = {
    "x": st.sampled_from(["2", "nan", "inf", "1_0", "", "x", "0.5\x00"]),
    "lr": st.sampled_from(["0", "0.5", "-0.01"]),
    "g": st.sampled_from(["0.3", "1.25"]),
    "n": st.sampled_from(["0", "10", "1.5"]),
    "act": st.sampled_from(["swish", ""]),
    "bs": st.sampled_from(["8"]),
}
metric_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["unavailable", " unavailable ", "nan", "inf", "-inf", "1e999", " 2.5", "3"]),
)
_GO_TIMES = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format,
    st.integers(0, 2100),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
)  # mostly valid, some not (month 13, 2026-02-29, hour 24, year 0...)
time_text = st.integers(0, 19).flatmap(
    lambda k: (
        _GO_TIMES
        if k == 0
        else st.sampled_from(
            [
                "",
                "2026-01-02T03:04:05Z",
                "2026-01-31T23:59:59.123456789Z",
                "2026-02-28T00:00:00+02:00",
            ]
        )
    )
)


@st.composite
def trial(draw: Any, i: int, unusual: bool) -> api_pb2.Trial:
    names = list(SPACE.names)
    if unusual and draw(st.booleans()):
        names = draw(st.permutations(names))
    assignments = [api_pb2.ParameterAssignment(name=n, value=draw(good_value[n])) for n in names]
    metrics = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["loss", "acc", "latency"]))
        metrics.append(api_pb2.Metric(name=name, value=draw(metric_text)))
    t = api_pb2.Trial(
        name=f"t{i}",
        spec=api_pb2.TrialSpec(
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(assignments=assignments)
        ),
        status=api_pb2.TrialStatus(
            condition=draw(st.sampled_from(list(C.TrialConditionType.values()))),
            completion_time=draw(time_text),
            start_time=draw(time_text),
            observation=api_pb2.Observation(metrics=metrics) if metrics else None,
        ),
    )
    if unusual and draw(st.integers(0, 9)) == 0:
        t.spec.labels["member"] = str(i)
    return t


def wire(t: api_pb2.Trial, odd: int) -> bytes:
    """``t`` serialised, or (``odd``) in an unusual but valid shape: fields repeated (the
    last counts), out of order, or an empty status left out."""
    data = t.SerializeToString()
    if odd == 1:  # the name twice: the first one is overridden
        return api_pb2.Trial(name="ignored").SerializeToString() + data
    if odd == 2:  # the status before the name and spec
        status = api_pb2.Trial(status=t.status).SerializeToString()
        rest = api_pb2.Trial(name=t.name, spec=t.spec).SerializeToString()
        return status + rest
    if odd == 3 and not t.status.ByteSize():
        return api_pb2.Trial(name=t.name, spec=t.spec).SerializeToString()
    return data


@st.composite
def requests(draw: Any, unusual: bool | None = None) -> list[bytes]:
    """Serialised trials; ``unusual`` (drawn when None): some trials with labels, their
    assignments in another order, or one trial of an unusual wire shape."""
    if unusual is None:
        unusual = draw(st.integers(0, 3)) == 0
    n = draw(st.integers(0, 30))
    trials = [draw(trial(i, unusual)) for i in range(n)]
    odd = draw(st.integers(0, 3)) if unusual else 0
    return [wire(t, odd if i == n // 2 else 0) for i, t in enumerate(trials)]


def reference(blobs: list[bytes], metrics: tuple[str, ...]) -> list[Any] | str:
    try:
        return list(TrialDecoder(SPACE, metrics).by_trial(blobs))
    except RequestError as e:
        return str(e)


def columnar(decoder: TrialDecoder, blobs: list[bytes]) -> list[Any] | str:
    try:
        return list(decoder.table(blobs))
    except RequestError as e:
        return str(e)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blobs=requests(),
    metrics=st.sampled_from([("loss",), ("loss", "acc")]),
    cut=st.integers(0, 30),
)
def test_the_columns_equal_the_trial_by_trial_decode_cold_and_warm(
    blobs: list[bytes], metrics: tuple[str, ...], cut: int
) -> None:
    expected = reference(blobs, metrics)
    assert columnar(TrialDecoder(SPACE, metrics), blobs) == expected
    warm = TrialDecoder(SPACE, metrics)
    columnar(warm, blobs[:cut])  # an earlier request: a prefix of this one
    assert columnar(warm, blobs) == expected
    assert columnar(warm, blobs) == expected  # the same request again


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs=requests(), data=st.data())
def test_a_malformed_trial_is_refused_with_the_trial_by_trial_message(
    blobs: list[bytes], data: Any
) -> None:
    if not blobs:
        return
    i = data.draw(st.integers(0, len(blobs) - 1))
    t = api_pb2.Trial.FromString(blobs[i])
    kind = data.draw(st.sampled_from(["value", "metric", "time", "missing", "unknown", "name"]))
    if kind == "value":
        p = data.draw(st.sampled_from(list(SPACE.names)))
        for a in t.spec.parameter_assignments.assignments:
            if a.name == p:
                a.value = data.draw(bad_value[p])
    elif kind == "metric":
        t.status.condition = C.SUCCEEDED
        t.status.observation.metrics.add(name="loss", value="fast")
    elif kind == "time":
        t.status.completion_time = data.draw(st.sampled_from(["yesterday", "2026-02-30T00:00:00Z"]))
    elif kind == "missing":
        del t.spec.parameter_assignments.assignments[0]
    elif kind == "unknown":
        t.spec.parameter_assignments.assignments.add(name="y", value="1")
    else:
        t.name = data.draw(st.sampled_from(["", "t0"]))
    blobs[i] = t.SerializeToString()
    expected = reference(blobs, ("loss",))
    if kind != "name" or i != 0:
        assert isinstance(expected, str), "the reference decode accepts the changed trial"
    assert columnar(TrialDecoder(SPACE, "loss"), blobs) == expected
    warm = TrialDecoder(SPACE, "loss")
    columnar(warm, blobs[:i])
    assert columnar(warm, blobs) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs=requests(unusual=False))
def test_a_well_formed_request_of_the_usual_shape_takes_the_columnar_path(
    blobs: list[bytes],
) -> None:
    assume(not isinstance(reference(blobs, ("loss", "acc")), str))  # times may be malformed
    decoder = TrialDecoder(SPACE, ("loss", "acc"))
    table = decoder._columnar(blobs)
    assert table is not None
    assert list(table) == list(TrialDecoder(SPACE, ("loss", "acc")).by_trial(blobs))


def test_a_request_of_the_usual_shape_is_read_by_columns(kit: Any) -> None:
    trials = [
        kit.trial(
            f"t{i}",
            {"x": repr(i / 10), "lr": "0.01", "g": "0.5", "n": "3", "act": "relu", "bs": "32"},
            value=float(i),
            completed_at="2026-01-02T03:04:05Z",
        )
        for i in range(5)
    ]
    trials.append(
        kit.trial(
            "t5",
            {"x": "0.5", "lr": "0.01", "g": "0.5", "n": "3", "act": "relu", "bs": "32"},
            condition=C.RUNNING,
        )
    )
    request = api_pb2.GetSuggestionsRequest(trials=trials)
    decoder = TrialDecoder(SPACE, "loss")
    table = decoder.table(trial_bytes(request))
    assert decoder._columnar(trial_bytes(request)) is not None  # not the trial-by-trial path
    assert table.columns["x"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert table.states == [TrialState.COMPLETED] * 5 + [TrialState.PENDING]
    assert table.values == [(0.0,), (1.0,), (2.0,), (3.0,), (4.0,), ()]
    assert "x" in table.float_columns and "lr" in table.float_columns
    assert table == TrialDecoder(SPACE, "loss").by_trial(trial_bytes(request))


def test_an_engine_answers_the_same_from_a_table_and_from_views(kit: Any) -> None:
    rows = [
        {
            "x": repr(math.sin(i)),
            "lr": "0.01",
            "g": ("0", "0.5", "1")[i % 3],
            "n": str(1 + i % 9),
            "act": ("relu", "tanh", "gelu")[i % 3],
            "bs": "32",
        }
        for i in range(40)
    ]
    trials = [kit.trial(f"t{i}", row, value=float(i % 7)) for i, row in enumerate(rows)]
    for algorithm in ("random", "grid", "sobol", "tpe", "multivariate-tpe"):
        space = SPACE
        if algorithm == "grid":  # stepped parameters only
            space = SearchSpace(tuple(p for p in SPACE.parameters if p.name not in ("x", "lr")))
        sent = [_only(t, space.names) for t in trials]
        table = TrialDecoder(space, "loss").table(
            trial_bytes(api_pb2.GetSuggestionsRequest(trials=sent))
        )
        assert isinstance(table, TrialTable)
        answers = []
        for sent_trials in (table, list(table)):
            engine = SuggestionEngine()
            request = SuggestionRequest(
                experiment="e",
                algorithm=algorithm,
                settings=(("random_state", "3"),),
                space=space,
                goal=Direction.MINIMIZE,
                trials=sent_trials,
                count=8,
            )
            first = engine.suggest(request).assignments
            again = engine.suggest(request).assignments  # warm: the first 8 are pending
            answers.append((first, again))
        assert answers[0] == answers[1], algorithm
        first, again = answers[0]
        points = [tuple(sorted(a.items())) for a in first]
        assert len(points) == 8 and len(set(points)) == 8, algorithm
        used = {tuple(sorted(v.assignment.items())) for v in table}
        assert not set(points) & used, algorithm
        assert not set(points) & {tuple(sorted(a.items())) for a in again}, algorithm


def _only(t: api_pb2.Trial, names: Sequence[str]) -> api_pb2.Trial:
    copy = api_pb2.Trial()
    copy.CopyFrom(t)
    kept = [a for a in copy.spec.parameter_assignments.assignments if a.name in names]
    del copy.spec.parameter_assignments.assignments[:]
    copy.spec.parameter_assignments.assignments.extend(kept)
    return copy


@pytest.mark.parametrize("trials", [0, 1, 7])
def test_an_empty_or_small_request(trials: int, kit: Any) -> None:
    rows = [
        kit.trial(
            f"t{i}",
            {"x": "0.5", "lr": "0.01", "g": "0", "n": "1", "act": "relu", "bs": "16"},
            value=1.0,
        )
        for i in range(trials)
    ]
    blobs = trial_bytes(api_pb2.GetSuggestionsRequest(trials=rows))
    assert list(TrialDecoder(SPACE, "loss").table(blobs)) == list(
        TrialDecoder(SPACE, "loss").by_trial(blobs)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs=requests(), data=st.data())
def test_deltas_applied_to_the_held_table_equal_the_full_request(
    blobs: list[bytes], data: Any
) -> None:
    """The server's trials after an offer and deltas (changed trials in place, new ones
    appended) equal the full request's, and their point keys each view's."""
    from suggestion.algorithms._points import PointSet
    from suggestion.service._deltas import OFFER, TrialLedger

    if isinstance(reference(blobs, ("loss",)), str):
        return  # malformed: refused like a full request (test_suggestion_deltas)
    first = data.draw(st.integers(0, len(blobs)))
    ledger = TrialLedger(lambda: 8)
    held, epoch = ledger.trials("e", SPACE, ("loss",), blobs[:first], OFFER, None)
    points = PointSet(SPACE)
    held.point_key_set(points)  # type: ignore[attr-defined]  # remembered, then carried along
    full = list(blobs[:first])
    rest = blobs[first:]
    while rest:
        step = data.draw(st.integers(1, len(rest)))
        new, rest = rest[:step], rest[step:]
        changed = data.draw(st.lists(st.integers(0, max(len(full) - 1, 0)), max_size=3))
        sent = []
        for i in dict.fromkeys(changed):
            if i < len(full):
                t = api_pb2.Trial.FromString(full[i])
                t.status.condition = C.SUCCEEDED
                t.status.observation.metrics.add(name="loss", value=repr(float(i)))
                if data.draw(st.booleans()):  # its point changed too (the key set is rebuilt)
                    for a in t.spec.parameter_assignments.assignments:
                        if a.name == "x":
                            a.value = repr(data.draw(st.floats(-1, 1)))
                full[i] = t.SerializeToString()
                sent.append(full[i])
        full += new
        sent += new
        held, epoch = ledger.trials("e", SPACE, ("loss",), sent, epoch, str(len(full)))
    expected = TrialDecoder(SPACE, "loss").by_trial(full)
    assert list(held) == list(expected)
    keys = [points.key(v.assignment) for v in expected]
    assert held.point_keys(points) == keys  # type: ignore[attr-defined]
    assert held.point_key_set(points) == set(keys)  # type: ignore[attr-defined]
