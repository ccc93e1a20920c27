"""pbt over real gRPC: Katib's settings and validator rules, its labels, exploit and explore
between generations, retries of failed members, and a population rebuilt from the trials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from suggestion.service import create_server
from tuner.protos import api_pb2, api_pb2_grpc

GENERATION = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT = "pbt.suggestion.katib.kubeflow.org/parent"
MEMBER = "tuner/pbt-member"
SETTINGS = {
    "suggestion_trial_dir": "/var/log/katib/checkpoints/",
    "n_population": "5",
    "truncation_threshold": "0.2",
    "random_state": "7",
}


@pytest.fixture
def serve() -> Iterator[Callable[[], api_pb2_grpc.SuggestionStub]]:
    """Starts fresh servers (nothing in memory) on loopback ports; each call, one more."""
    servers: list[Any] = []
    channels: list[grpc.Channel] = []

    def start() -> api_pb2_grpc.SuggestionStub:
        server, port = create_server("127.0.0.1:0")
        servers.append(server)
        channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return api_pb2_grpc.SuggestionStub(channels[-1])

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(None)


def experiment(kit: Any, **settings: str) -> api_pb2.Experiment:
    return kit.experiment(
        "pbt",
        [
            kit.param("lr", "double", min="0.01", max="1.0", step="0.01"),
            kit.param("opt", "categorical", values=["sgd", "adam", "rmsprop"]),
        ],
        settings={**SETTINGS, **settings},
        goal="maximize",
        metric="acc",
    )


def member(
    kit: Any,
    name: str,
    assignment: dict[str, str],
    generation: int,
    value: float | None,
    *,
    index: int,
    parent: str | None = None,
    condition: int = api_pb2.TrialStatus.SUCCEEDED,
) -> api_pb2.Trial:
    labels = {GENERATION: str(generation), MEMBER: str(index)}
    if parent is not None:
        labels[PARENT] = parent
    return kit.trial(
        name,
        assignment,
        value=value,
        metric="acc",
        condition=condition,
        labels=labels,
        completed_at=f"2024-01-01T00:00:{index:02d}Z",
    )


def generation_zero(kit: Any) -> list[api_pb2.Trial]:
    """Five completed members; g0-4 (acc 0.9) is the best, g0-0 (acc 0.1) the worst."""
    lrs = ["0.5", "0.2", "0.3", "0.4", "0.1"]
    accs = [0.1, 0.5, 0.6, 0.7, 0.9]
    return [
        member(kit, f"g0-{i}", {"lr": lrs[i], "opt": "adam"}, 0, accs[i], index=i) for i in range(5)
    ]


def ask(suggestions: Any, kit: Any, exp: Any, trials: list[Any], count: int) -> list[Any]:
    reply = suggestions.GetSuggestions(kit.request(exp, trials, count))
    return [
        ({a.name: a.value for a in p.assignments}, dict(p.labels))
        for p in reply.parameter_assignments
    ]


def test_generation_zero_is_random_members_labelled_as_katib_does(
    kit: Any, suggestions: Any
) -> None:
    replies = ask(suggestions, kit, experiment(kit), [], 7)
    assert [labels[GENERATION] for _, labels in replies] == ["0"] * 7
    assert [labels[MEMBER] for _, labels in replies] == [str(i) for i in range(7)]
    assert all(PARENT not in labels for _, labels in replies)
    assert len({tuple(sorted(a.items())) for a, _ in replies}) > 1


def test_the_next_generation_exploits_the_bottom_and_explores_the_rest(
    kit: Any, suggestions: Any
) -> None:
    pool = generation_zero(kit)
    children = ask(suggestions, kit, experiment(kit), pool, 5)
    assert [labels[GENERATION] for _, labels in children] == ["1"] * 5
    by_parent = {labels[PARENT]: assignment for assignment, labels in children}
    # Every pool member has one child; truncation 0.2 of 5: one exploits.
    assert sorted(by_parent) == [f"g0-{i}" for i in range(5)]
    # Katib's exploit: the worst member continues with the best member's hyperparameters.
    assert by_parent["g0-0"] == {"lr": "0.1", "opt": "adam"}
    # Explore: the others perturb lr by 0.8 or 1.2 and move opt to a neighbouring entry.
    parents_lr = {"g0-1": 0.2, "g0-2": 0.3, "g0-3": 0.4, "g0-4": 0.1}
    for parent, lr in parents_lr.items():
        child = by_parent[parent]
        assert float(child["lr"]) in (pytest.approx(lr * 0.8), pytest.approx(lr * 1.2))
        assert child["opt"] in ("sgd", "rmsprop")


@pytest.mark.parametrize(("probability", "resampled"), [("0", False), ("1", True)])
def test_resample_probability_decides_between_keeping_and_resampling(
    kit: Any, suggestions: Any, probability: str, resampled: bool
) -> None:
    pool = generation_zero(kit)
    exp = experiment(kit, resample_probability=probability, truncation_threshold="0")
    children = ask(suggestions, kit, exp, pool, 5)
    kept = {labels[PARENT]: a for a, labels in children}
    originals = {
        t.name: {a.name: a.value for a in t.spec.parameter_assignments.assignments} for t in pool
    }
    same = [kept[name] == originals[name] for name in originals]
    assert (not any(same)) if resampled else all(same)


def test_a_failed_member_is_retried_with_its_hyperparameters_and_parent(
    kit: Any, suggestions: Any
) -> None:
    pool = generation_zero(kit)
    failed = member(
        kit,
        "g1-0",
        {"lr": "0.33", "opt": "sgd"},
        1,
        None,
        index=0,
        parent="g0-3",
        condition=api_pb2.TrialStatus.FAILED,
    )
    retry, following = ask(suggestions, kit, experiment(kit), [*pool, failed], 2)
    assert retry == ({"lr": "0.33", "opt": "sgd"}, {GENERATION: "1", MEMBER: "0", PARENT: "g0-3"})
    assert following[1][MEMBER] == "1" and following[1][GENERATION] == "1"


def test_a_cold_server_rebuilds_the_population_from_the_trials_labels(kit: Any, serve: Any) -> None:
    pool = generation_zero(kit)
    exp = experiment(kit)
    first = serve()
    warm = ask(first, kit, exp, pool, 3)
    trials = [
        *pool,
        *(
            member(kit, f"g1-{i}", a, 1, 0.5 + i, index=int(labels[MEMBER]), parent=labels[PARENT])
            for i, (a, labels) in enumerate(warm)
        ),
    ]
    assert ask(first, kit, exp, trials, 4) == ask(serve(), kit, exp, trials, 4)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_population": "4"}, "n_population': '4' is not an integer >= 5"),
        ({"n_population": "many"}, "n_population': 'many' is not an integer"),
        (
            {"truncation_threshold": "1.01"},
            "truncation_threshold': '1.01' is not a number between 0",
        ),
        ({"resample_probability": "2"}, "resample_probability': '2' is not a number between 0"),
        ({"suggestion_trial_dir": "ckpt"}, "suggestion_trial_dir': 'ckpt' is not an absolute path"),
        ({"eta": "3"}, "'eta': '3' is not a setting of pbt"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    kit: Any, suggestions: Any, settings: dict[str, str], message: str
) -> None:
    request = api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment(kit, **settings))
    with pytest.raises(grpc.RpcError) as caught:
        suggestions.ValidateAlgorithmSettings(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


def test_katibs_required_settings_are_required(kit: Any, suggestions: Any) -> None:
    exp = experiment(kit)
    del exp.spec.algorithm.algorithm_settings[:]
    exp.spec.algorithm.algorithm_settings.add(name="n_population", value="8")
    with pytest.raises(grpc.RpcError) as caught:
        suggestions.ValidateAlgorithmSettings(
            api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "missing: suggestion_trial_dir, truncation_threshold" in (caught.value.details() or "")


def test_proposals_for_an_earlier_experiment_of_the_same_name_do_not_derail_it(
    kit: Any, serve: Any
) -> None:
    stub, exp = serve(), experiment(kit)
    ask(stub, kit, exp, generation_zero(kit), 5)  # handed out, never came back as trials
    # The experiment was deleted and created again under its name: no trials yet.
    fresh = ask(stub, kit, exp, [], 3)
    assert [labels[GENERATION] for _, labels in fresh] == ["0", "0", "0"]
