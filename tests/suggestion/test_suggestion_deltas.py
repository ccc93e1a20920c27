"""The server's side of incremental GetSuggestions requests (suggestion/README.md,
"Incremental requests"), over real gRPC: what it answers to an offer, a delta it holds the
base of, and a delta it cannot apply."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tuner.protos import api_pb2, api_pb2_grpc

RUNNING = api_pb2.TrialStatus.RUNNING


def experiment(kit: Any) -> api_pb2.Experiment:
    return kit.experiment(
        "random", [kit.param("x", "double", min="0", max="1")], settings={"random_state": "1"}
    )


def ask(
    stub: api_pb2_grpc.SuggestionStub,
    kit: Any,
    exp: api_pb2.Experiment,
    trials: list[api_pb2.Trial],
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[list[dict[str, str]], dict[str, str]]:
    reply, call = stub.GetSuggestions.with_call(
        kit.request(exp, trials, 1), metadata=metadata, timeout=30
    )
    return kit.assignments(reply), dict(call.trailing_metadata() or ())


def refusal(stub: api_pb2_grpc.SuggestionStub, kit: Any, exp: Any, trials: list, metadata: Any):  # noqa: ANN001, ANN201
    with pytest.raises(grpc.RpcError) as err:
        ask(stub, kit, exp, trials, metadata)
    return err.value.code(), dict(err.value.trailing_metadata() or ()), err.value.details()


def test_a_request_without_the_offer_gets_no_epoch(suggestions: Any, kit: Any) -> None:
    _, trailing = ask(suggestions, kit, experiment(kit), [])
    assert "tuner-trials-epoch" not in trailing


def test_an_offer_is_answered_with_an_epoch_and_the_trials_held(suggestions: Any, kit: Any) -> None:
    exp = experiment(kit)
    trials = [kit.trial(f"t{i}", {"x": f"0.{i}"}, value=float(i)) for i in range(1, 4)]
    _, trailing = ask(suggestions, kit, exp, trials, (("tuner-trials-delta", "offer"),))
    assert trailing["tuner-trials-epoch"]
    assert trailing["tuner-trials-held"] == "3"


def test_a_delta_replaces_changed_trials_and_adds_new_ones(suggestions: Any, kit: Any) -> None:
    exp = experiment(kit)
    first = [kit.trial("a", {"x": "0.1"}, condition=RUNNING), kit.trial("b", {"x": "0.2"})]
    first_points, trailing = ask(suggestions, kit, exp, first, (("tuner-trials-delta", "offer"),))
    epoch = trailing["tuner-trials-epoch"]
    # "a" ended, "c" is new: the server now holds a, b, c.
    delta = [kit.trial("a", {"x": "0.1"}, value=0.5), kit.trial("c", {"x": "0.3"})]
    metadata = (("tuner-trials-delta", epoch), ("tuner-trials-count", "3"))
    points, trailing = ask(suggestions, kit, exp, delta, metadata)
    assert trailing["tuner-trials-epoch"] == epoch and trailing["tuner-trials-held"] == "3"
    # A twin experiment asked the same in full gets the same answers.
    twin = experiment(kit)
    assert ask(suggestions, kit, twin, first)[0] == first_points
    assert ask(suggestions, kit, twin, [delta[0], first[1], delta[1]])[0] == points


def test_a_delta_under_an_unknown_epoch_asks_for_a_full_request(suggestions: Any, kit: Any) -> None:
    metadata = (("tuner-trials-delta", "restarted.1"), ("tuner-trials-count", "1"))
    code, trailing, details = refusal(
        suggestions, kit, experiment(kit), [kit.trial("a", {"x": "0.1"})], metadata
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert trailing["tuner-trials-resend"] == "full"
    assert "restarted.1" in details


def test_a_delta_that_does_not_add_up_is_refused_and_the_epoch_dropped(
    suggestions: Any, kit: Any
) -> None:
    exp = experiment(kit)
    _, trailing = ask(
        suggestions, kit, exp, [kit.trial("a", {"x": "0.1"})], (("tuner-trials-delta", "offer"),)
    )
    epoch = trailing["tuner-trials-epoch"]
    wrong = (("tuner-trials-delta", epoch), ("tuner-trials-count", "5"))
    code, trailing, details = refusal(suggestions, kit, exp, [], wrong)
    assert code is grpc.StatusCode.FAILED_PRECONDITION and trailing["tuner-trials-resend"] == "full"
    assert "tuner-trials-count" in details and "'5'" in details
    # What it held is gone: even a delta that adds up now needs a full request first.
    right = (("tuner-trials-delta", epoch), ("tuner-trials-count", "1"))
    code, trailing, _ = refusal(suggestions, kit, exp, [], right)
    assert code is grpc.StatusCode.FAILED_PRECONDITION


def test_a_malformed_trial_in_a_delta_is_refused_naming_it(suggestions: Any, kit: Any) -> None:
    exp = experiment(kit)
    _, trailing = ask(suggestions, kit, exp, [], (("tuner-trials-delta", "offer"),))
    metadata = (("tuner-trials-delta", trailing["tuner-trials-epoch"]), ("tuner-trials-count", "1"))
    code, _, details = refusal(suggestions, kit, exp, [kit.trial("bad", {"x": "7"})], metadata)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "trials[0] (bad)" in details and "x='7'" in details
