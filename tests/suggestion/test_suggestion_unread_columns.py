"""Stepless doubles whose texts show they lie inside the space are held unread
(`TrialTable` texts): the check by their first digits (`_texts.surely_inside`) passes
only texts that ``float`` reads inside the bounds, the unread keys (`UnreadKeys`) answer as
the set of point keys does, and the values read later are ``float``'s."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suggestion.algorithms import TrialTable
from suggestion.algorithms._points import PointSet
from suggestion.algorithms._table import UnreadKeys
from suggestion.service import TrialDecoder
from suggestion.service._convert import trial_bytes
from suggestion.service._texts import surely_inside
from tuner.protos import api_pb2
from tuner.space import Parameter, SearchSpace

# The columns are what these tests check, also on requests of a few trials.
pytestmark = pytest.mark.usefixtures("columns_for_every_size")

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
Assignments = api_pb2.TrialSpec.ParameterAssignments

SPACE = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="-2.5", max="3.5"),
        Parameter.from_wire("n", "int", min="0", max="3"),
        Parameter.from_wire("y", "double", min="0", max="1"),
        Parameter.from_wire("c", "categorical", values=["a", "b"]),
    )
)

text = st.one_of(
    st.floats(-20, 20).map(repr),
    st.floats(allow_nan=False).map(repr),
    st.integers(-30, 30).map(str),
    st.from_regex(r"-?[0-9]{0,17}\.[0-9]{0,20}", fullmatch=True),
    st.sampled_from(
        ["-0.0", "0.0", "1.0", "3.5", "3.50000000000000001", "-2.5000000000000001", "-.5",
         "5.", "1-2.0", "--1.0", "1.2.3", "1e3", "0.5\x00", "", "."]
    ),
)  # fmt: skip
bound = st.one_of(st.floats(-30, 30), st.sampled_from([0.0, 1.0, -2.5, 3.5, math.inf]))


@settings(max_examples=500, deadline=None)
@given(
    texts=st.lists(text, min_size=1, max_size=12), bounds=st.lists(bound, min_size=2, max_size=2)
)
def test_texts_are_surely_inside_only_when_float_reads_them_inside(
    texts: list[str], bounds: list[float]
) -> None:
    lo, hi = sorted(bounds)
    data = [t.encode() for t in texts]
    inside = surely_inside(data, np.full(len(data), lo), np.full(len(data), hi))
    read = [float(t) if _DECIMAL.fullmatch(t) else None for t in texts]
    expected = all(v is not None and math.isfinite(v) and lo <= v <= hi for v in read)
    if inside:
        assert expected
    shaped = all(re.fullmatch(r"-?[0-9]{1,15}\.[0-9]+", t) for t in texts)
    if shaped and expected:  # what it is for: every such text is settled, first digits or not
        assert inside


def test_usual_texts_are_settled_without_reading_most_of_them() -> None:
    rng = random.Random(3)
    texts = [repr(rng.uniform(-2.5, 3.5)).encode() for _ in range(500)] + [b"3.5", b"-2.5"]
    lows, highs = np.full(len(texts), -2.5), np.full(len(texts), 3.5)
    assert surely_inside(texts, lows, highs)
    assert not surely_inside([*texts, b"3.5000001"], np.full(503, -2.5), np.full(503, 3.5))


def _blobs(rows: list[dict[str, str]]) -> list[bytes]:
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
            status=api_pb2.TrialStatus(condition=api_pb2.TrialStatus.RUNNING),
        )
        for i, row in enumerate(rows)
    ]
    return trial_bytes(api_pb2.GetSuggestionsRequest(trials=trials))


def _row(rng: random.Random) -> dict[str, str]:
    return {
        "x": repr(rng.uniform(-2.5, 3.5)),
        "n": str(rng.randint(0, 3)),
        "y": repr(rng.random()),
        "c": rng.choice("ab"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), size=st.integers(1, 40), repeats=st.booleans())
def test_unread_keys_answer_as_the_set_of_point_keys(seed: int, size: int, repeats: bool) -> None:
    rng = random.Random(seed)
    rows = [_row(rng) for _ in range(size)]
    if repeats:  # a point twice, and another sharing only its first value
        rows.append(dict(rows[0]))
        rows.append({**rows[-1], "y": repr(rng.random())})
    blobs = _blobs(rows)
    points = PointSet(SPACE)
    table = TrialDecoder(SPACE, "loss").table(blobs)
    reference = set(TrialDecoder(SPACE, "loss").by_trial(blobs).point_keys(points))
    keys = table.point_key_set(points)
    assert isinstance(keys, UnreadKeys) != repeats  # repeated first values: the plain set
    assert bool(table._data[1]) != repeats  # unread still, unless the plain set read them
    probes: list[Any] = list(reference)
    for key in list(reference)[:5]:
        probes += [(key[0], *key[1:-1], "b" if key[-1] == "a" else "a"), (key[0], 9, *key[2:])]
        probes.append((rng.uniform(-2.5, 3.5), *key[1:]))
    for probe in probes:
        assert (probe in keys) == (probe in reference)
    grown = keys.copy()
    new = (0.125, 1, 0.5, "a")
    grown.add(new)
    assert new in grown and new not in keys
    assert len(keys) == len(reference) and set(keys) == reference
    assert keys == reference and reference == keys


def test_unread_columns_stay_unread_warm_and_read_as_float() -> None:
    rng = random.Random(5)
    rows = [_row(rng) for _ in range(30)]
    decoder = TrialDecoder(SPACE, "loss")
    cold = decoder.table(_blobs(rows))
    rows.append(_row(rng))
    warm = decoder.table(_blobs(rows))
    assert set(cold._data[1]) == set(warm._data[1]) == {"x", "y"}
    reference = TrialDecoder(SPACE, "loss").by_trial(_blobs(rows))
    assert warm.columns == reference.columns and list(warm.columns) == list(SPACE.names)
    assert warm.columns["x"] == [float(row["x"]) for row in rows]
    assert warm == reference and not warm._data[1]
    assert isinstance(warm, TrialTable)
