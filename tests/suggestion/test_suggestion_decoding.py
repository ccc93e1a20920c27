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
