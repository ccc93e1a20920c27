"""What a small request (a delta of a trial or two, the controller's usual call) is spared:
the columnar decode (decoded trial by trial, with the same table), reading the experiment
again (remembered by its bytes), and seeding a generator for random fill-ins never drawn."""

from __future__ import annotations

import math
from typing import Any

import grpc
import numpy as np
import pytest

from suggestion.algorithms._points import PointSet
from suggestion.service import TrialDecoder, _trial_decoder
from suggestion.service._convert import RequestError
from tuner.space import Parameter, SearchSpace

SPACE = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="-5", max="5"),
        Parameter.from_wire("n", "int", min="0", max="9"),
    )
)


def _blobs(kit: Any, count: int, start: int = 0) -> list[bytes]:
    return [
        kit.trial(
            f"t{i}",
            {"x": repr(math.sin(i) * 4.9), "n": str(i % 10)},
            value=i / 7,
            completed_at="2024-01-02T03:04:05Z",
        ).SerializeToString()
        for i in range(start, start + count)
    ]


def _refuse_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: TrialDecoder, blobs: list[bytes]) -> None:
        raise AssertionError(f"decoded {len(blobs)} trials as columns")

    monkeypatch.setattr(TrialDecoder, "_columnar", refuse)


@pytest.mark.parametrize("remember", [True, False])
def test_a_small_request_is_decoded_trial_by_trial_to_the_same_table(
    kit: Any, monkeypatch: pytest.MonkeyPatch, remember: bool
) -> None:
    blobs = _blobs(kit, 3)  # a delta of a few trials
    columns = TrialDecoder(SPACE, "loss")._columnar(blobs)
    _refuse_columns(monkeypatch)
    table = TrialDecoder(SPACE, "loss").table(blobs, remember=remember)
    assert columns is not None and list(table) == list(columns)
    points = PointSet(SPACE)
    assert table.point_keys(points) == columns.point_keys(points)
    assert table.columns == columns.columns


def test_a_larger_or_warm_request_keeps_the_columns(
    kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoder = TrialDecoder(SPACE, "loss")
    seen: list[int] = []
    columnar = TrialDecoder._columnar

    def counting(self: TrialDecoder, blobs: list[bytes]) -> Any:
        seen.append(len(blobs))
        return columnar(self, blobs)

    monkeypatch.setattr(TrialDecoder, "_columnar", counting)
    blobs = _blobs(kit, _trial_decoder.SMALL_REQUEST + 1)
    decoder.table(blobs)
    decoder.table(blobs + _blobs(kit, 1, start=len(blobs)))  # warm: the new trial only
    assert seen == [len(blobs), 1]


def test_a_small_malformed_request_is_refused_naming_the_trial(
    kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = _blobs(kit, 2)
    blobs.append(kit.trial("bad", {"x": "7.5", "n": "1"}, value=1.0).SerializeToString())
    _refuse_columns(monkeypatch)
    with pytest.raises(RequestError, match=r"trials\[2\] \(bad\).*x='7.5'"):
        TrialDecoder(SPACE, "loss").table(blobs, remember=False)


def test_the_experiment_is_read_again_when_it_changes(kit: Any, suggestions: Any) -> None:
    """The servicer remembers what an experiment says by its bytes: the same name with
    another space or a broken spec is read anew, and a refused one is not remembered."""
    name = "small-requests-space"
    wide = kit.experiment("random", [kit.param("x", "double", min="0", max="1")], name=name)
    narrow = kit.experiment("random", [kit.param("x", "double", min="5", max="5.001")], name=name)
    broken = kit.experiment("random", [kit.param("x", "double", min="3", max="1")], name=name)
    for experiment, low, high in [(wide, 0, 1), (narrow, 5, 5.001), (wide, 0, 1)]:
        for _ in range(2):
            reply = suggestions.GetSuggestions(kit.request(experiment, [], 3))
            xs = [float(a["x"]) for a in kit.assignments(reply)]
            assert len(xs) == 3 and all(low <= x <= high for x in xs)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as refused:
            suggestions.GetSuggestions(kit.request(broken, [], 1))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_fill_in_generator_is_made_only_when_a_point_is_missing() -> None:
    points = PointSet(SPACE)
    made: list[int] = []

    def generator() -> np.random.Generator:
        made.append(1)
        return np.random.default_rng(7)

    first = {"x": 1.5, "n": 3}
    used = points.trial_key_set([])
    assert points.complete([first], 1, set(used), generator) == [first]
    assert made == []
    repeated = points.complete([first, first], 2, set(used), generator)
    assert made == [1] and len(repeated) == 2 and repeated[0] == first
    drawn = points.complete([first, first], 2, set(used), np.random.default_rng(7))
    assert drawn == repeated  # the same generator, made late or given
