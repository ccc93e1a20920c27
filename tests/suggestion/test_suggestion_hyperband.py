"""hyperband over real gRPC: Katib's validation rules, its state returned in
``GetSuggestionsReply.algorithm`` in Katib's names, a rung that still runs answered with a
wait (no exhaustion marker), and the end marked once the last bracket is out."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from suggestion.service import EXHAUSTED_METADATA
from tuner.protos import api_pb2, api_pb2_grpc

KATIB_STATE = {
    "eta",
    "s_max",
    "r_l",
    "b_l",
    "r",
    "n",
    "current_s",
    "current_i",
    "resource_name",
    "evaluating_trials",
}


def katib_example(
    kit: Any, settings: dict[str, str] | None = None, *, parallel: int = 2
) -> api_pb2.Experiment:
    """Katib's examples/v1beta1/hp-tuning/hyperband.yaml as its controller sends it."""
    experiment = kit.experiment(
        "hyperband",
        [
            kit.param("lr", "double", min="0.01", max="0.05"),
            kit.param("momentum", "double", min="0.5", max="0.9"),
            kit.param("num-epochs", "int", min="1", max="1"),
        ],
        settings={"resource_name": "num-epochs", "eta": "2", "r_l": "2", **(settings or {})},
    )
    experiment.spec.parallel_trial_count = parallel
    return experiment


def refusal(suggestions: api_pb2_grpc.SuggestionStub, experiment: api_pb2.Experiment) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        suggestions.ValidateAlgorithmSettings(
            api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.details()


def test_katibs_example_is_valid(kit: Any, suggestions: api_pb2_grpc.SuggestionStub) -> None:
    suggestions.ValidateAlgorithmSettings(
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=katib_example(kit))
    )


def test_parallel_trial_count_must_hold_the_largest_bracket(
    kit: Any, suggestions: api_pb2_grpc.SuggestionStub
) -> None:
    # r_l 9, eta 3: s_max 2, the first bracket starts 3 ** 2 = 9 trials at once.
    message = refusal(suggestions, katib_example(kit, {"r_l": "9", "eta": "3"}, parallel=8))
    assert "parallelTrialCount: 8 is less than 9" in message


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"r_l": ""}, "r_l"),
        ({"r_l": "0.5"}, "r_l"),
        ({"eta": "1"}, "eta"),
        ({"eta": "2.5"}, "eta"),
        ({"resource_name": "epochs"}, "'epochs' is not a parameter"),
        ({"current_s": "two"}, "current_s"),
        ({"bracket": "1"}, "bracket"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(
    kit: Any, suggestions: api_pb2_grpc.SuggestionStub, settings: dict[str, str], named: str
) -> None:
    assert named in refusal(suggestions, katib_example(kit, settings))


def test_missing_r_l_is_refused(kit: Any, suggestions: api_pb2_grpc.SuggestionStub) -> None:
    experiment = kit.experiment(
        "hyperband",
        [
            kit.param("lr", "double", min="0.01", max="0.05"),
            kit.param("e", "int", min="1", max="9"),
        ],
        settings={"resource_name": "e"},
    )
    experiment.spec.parallel_trial_count = 9
    assert "r_l" in refusal(suggestions, experiment)


def ask(
    suggestions: api_pb2_grpc.SuggestionStub,
    experiment: api_pb2.Experiment,
    trials: list[api_pb2.Trial],
    count: int,
) -> tuple[list[dict[str, str]], dict[str, str], bool]:
    reply, call = suggestions.GetSuggestions.with_call(
        api_pb2.GetSuggestionsRequest(
            experiment=experiment, trials=trials, current_request_number=count
        )
    )
    assignments = [{a.name: a.value for a in p.assignments} for p in reply.parameter_assignments]
    state = {s.name: s.value for s in reply.algorithm.algorithm_settings}
    return assignments, state, EXHAUSTED_METADATA in tuple(call.trailing_metadata() or ())


def send_back(experiment: api_pb2.Experiment, state: dict[str, str]) -> api_pb2.Experiment:
    """What a controller sends next: the spec's settings overridden by the returned ones."""
    settings = {s.name: s.value for s in experiment.spec.algorithm.algorithm_settings} | state
    sent = api_pb2.Experiment()
    sent.CopyFrom(experiment)
    del sent.spec.algorithm.algorithm_settings[:]
    sent.spec.algorithm.algorithm_settings.extend(
        api_pb2.AlgorithmSetting(name=k, value=v) for k, v in settings.items()
    )
    return sent


def test_a_running_rung_is_a_wait_and_the_last_bracket_the_end(
    kit: Any, suggestions: api_pb2_grpc.SuggestionStub
) -> None:
    experiment = katib_example(kit)  # s_max 1: bracket 1 (2 @1, then 1 @2), bracket 0 (2 @2)
    first, state, end = ask(suggestions, experiment, [], 2)
    assert [a["num-epochs"] for a in first] == ["1", "1"] and not end
    assert set(state) == KATIB_STATE and state["evaluating_trials"] == "2"

    experiment = send_back(experiment, state)
    running = [
        kit.trial("t0", first[0], value=0.5),
        kit.trial("t1", first[1], condition=api_pb2.TrialStatus.RUNNING),
    ]
    waiting, same, end = ask(suggestions, experiment, running, 1)
    # The same state (r read back as an integer, as Katib's image does), no end marker.
    assert waiting == [] and same == {**state, "r": "1"} and not end

    done = [kit.trial("t0", first[0], value=0.5), kit.trial("t1", first[1], value=0.2)]
    promoted, state, end = ask(suggestions, experiment, done, 2)
    assert promoted == [{**first[1], "num-epochs": "2"}] and not end  # the better one, at 2

    experiment = send_back(experiment, state)
    done.append(kit.trial("t2", promoted[0], value=0.1))
    last, state, end = ask(suggestions, experiment, done, 2)
    assert [a["num-epochs"] for a in last] == ["2", "2"] and state["current_s"] == "-1"

    experiment = send_back(experiment, state)
    done += [kit.trial(f"t{3 + i}", a, value=0.3) for i, a in enumerate(last)]
    nothing, _, end = ask(suggestions, experiment, done, 2)
    assert nothing == [] and end


def test_katibs_own_state_format_is_read(
    kit: Any, suggestions: api_pb2_grpc.SuggestionStub
) -> None:
    # The settings Katib's image returns after its first call for this example.
    katib = {
        "eta": "2.0",
        "s_max": "1",
        "r_l": "2.0",
        "b_l": "4.0",
        "r": "1.0",
        "n": "2",
        "current_s": "1",
        "current_i": "0",
        "resource_name": "num-epochs",
        "evaluating_trials": "2",
    }
    experiment = send_back(katib_example(kit), katib)
    trials = [
        kit.trial("a", {"lr": "0.02", "momentum": "0.6", "num-epochs": "1"}, value=0.9),
        kit.trial("b", {"lr": "0.04", "momentum": "0.7", "num-epochs": "1"}, value=0.1),
    ]
    promoted, state, _ = ask(suggestions, experiment, trials, 2)
    assert promoted == [{"lr": "0.04", "momentum": "0.7", "num-epochs": "2"}]
    assert (state["current_s"], state["current_i"]) == ("0", "0")


def test_settings_that_say_the_run_ended_get_the_end(
    kit: Any, suggestions: api_pb2_grpc.SuggestionStub
) -> None:
    # Katib's last state: current_s -1 and nothing else computed.
    experiment = katib_example(kit, {"current_s": "-1", "n": "-1", "r": "-1"})
    nothing, _, end = ask(suggestions, experiment, [], 2)
    assert nothing == [] and end
