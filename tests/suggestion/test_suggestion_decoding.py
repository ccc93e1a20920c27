"""Trials are decoded once per experiment: a warm decode sees every change a cold one sees
and refuses the same malformed trials with the same message."""

from __future__ import annotations

from typing import Any

import pytest

from suggestion.algorithms import TrialState
from suggestion.service import TrialDecoder
from suggestion.service._convert import RequestError
from tuner.protos import api_pb2
from tuner.space import Parameter, SearchSpace

SPACE = SearchSpace(
    (
        Parameter.from_wire("lr", "double", min="0", max="1", step="0.25"),
        Parameter.from_wire("act", "categorical", values=["relu", "tanh"]),
    )
)


def test_a_warm_decode_sees_a_running_trial_complete(kit: Any) -> None:
    decoder = TrialDecoder(SPACE, "loss")
    running = kit.trial("t0", {"lr": "0.25", "act": "relu"}, condition=api_pb2.TrialStatus.RUNNING)
    first = decoder.decode([running])
    assert first[0].state is TrialState.PENDING
    done = kit.trial("t0", {"lr": "0.25", "act": "relu"}, value=0.5)
    second = decoder.decode([done, kit.trial("t1", {"lr": "0.5", "act": "tanh"}, value=1.0)])
    cold = TrialDecoder(SPACE, "loss").decode(
        [done, kit.trial("t1", {"lr": "0.5", "act": "tanh"}, value=1.0)]
    )
    assert second == cold
    assert second[0].state is TrialState.COMPLETED and second[0].value == 0.5


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ({"lr": "0.3", "act": "relu"}, "lr='0.3' not in the experiment's search space"),
        ({"lr": "x", "act": "relu"}, "'x'"),
        ({"lr": "0.25"}, "missing parameter 'act'"),
    ],
)
def test_a_remembered_value_does_not_hide_a_bad_trial(
    assignment: dict[str, str], message: str, kit: Any
) -> None:
    decoder = TrialDecoder(SPACE, "loss")
    decoder.decode([kit.trial("ok", {"lr": "0.25", "act": "relu"}, value=1.0)])
    bad = kit.trial("bad", assignment, value=1.0)
    for fresh in (decoder, TrialDecoder(SPACE, "loss")):
        with pytest.raises(RequestError, match="trials\\[0\\] \\(bad\\)") as caught:
            fresh.decode([bad])
        assert message in str(caught.value)
    ok = kit.trial("ok", {"lr": "0.25", "act": "relu"}, value=1.0)
    with pytest.raises(RequestError, match="trials\\[1\\].name: 'ok' appears twice"):
        decoder.decode([ok, ok])


DOUBLES = SearchSpace((Parameter.from_wire("x", "double", min="0", max="1"),))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5", "x='1.5' not in the experiment's search space"),
        ("nan", "'nan' is not a finite number"),
        ("1_0", "'1_0' is not a number"),
    ],
)
def test_a_stepless_double_read_inline_is_refused_like_the_general_path(
    text: str, message: str, kit: Any
) -> None:
    decoder = TrialDecoder(DOUBLES, "loss")
    with pytest.raises(RequestError, match="trials\\[0\\] \\(bad\\)") as caught:
        decoder.decode([kit.trial("bad", {"x": text}, value=1.0)])
    assert message in str(caught.value)
    assert decoder.decode([kit.trial("ok", {"x": " 0.5 "}, value=1.0)])[0].assignment == {"x": 0.5}


def test_a_warm_decode_reuses_the_finished_prefix_and_reads_what_changed(kit: Any) -> None:
    decoder = TrialDecoder(DOUBLES, "loss")
    first = [kit.trial(f"t{i}", {"x": f"0.{i}"}, value=float(i)) for i in range(5)]
    first.append(kit.trial("t5", {"x": "0.5"}, condition=api_pb2.TrialStatus.RUNNING))
    decoder.decode(first)
    # t5 finished, t2's value rewritten (a different size), t6 added; the prefix t0, t1 holds.
    second = list(first[:2])
    second.append(kit.trial("t2", {"x": "0.2"}, value=22.0))
    second += first[3:5]
    second.append(kit.trial("t5", {"x": "0.5"}, value=5.0))
    second.append(kit.trial("t6", {"x": "0.6"}, value=6.0))
    warm = decoder.decode(second)
    assert warm == TrialDecoder(DOUBLES, "loss").decode(second)
    assert [v.value for v in warm] == [0.0, 1.0, 22.0, 3.0, 4.0, 5.0, 6.0]
    # A shorter request (trials reordered) is decoded as a cold one would.
    assert decoder.decode(second[::-1]) == TrialDecoder(DOUBLES, "loss").decode(second[::-1])
