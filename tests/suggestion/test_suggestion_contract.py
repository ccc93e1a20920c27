"""Katib's request contract: no repeated parameter sets (concurrent calls, pending trials,
a restarted server), exhaustion of finite spaces, and determinism for a fixed seed.

The general tests run every algorithm of the registry (`suggestion.algorithms.names()`), so
a new algorithm module plus its registry line is tested without editing this file; SEEDED
only makes the known ones cheaper. Tests of one algorithm's own behaviour name it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from suggestion.algorithms import get, names
from suggestion.service import EXHAUSTED_METADATA, create_server
from tuner.protos import api_pb2_grpc

SEEDED = {
    "random": {"random_state": "3"},
    "grid": {},
    "sobol": {"random_state": "3"},
    "tpe": {"n_startup_trials": "4", "random_state": "3"},
    "multivariate-tpe": {"n_startup_trials": "4", "random_state": "3"},
    "cmaes": {"random_state": "3"},
    "bayesianoptimization": {
        "n_initial_points": "4",
        "acq_optimizer": "sampling",
        "random_state": "3",
    },
    "pbt": {
        "suggestion_trial_dir": "/var/log/katib/checkpoints",
        "n_population": "5",
        "truncation_threshold": "0.2",
    },
}
# Algorithms that need settings naming parts of the space (hyperband) have their own tests.
ALGORITHMS = [n for n in names() if get(n).general_purpose]


def seeded(algorithm: str) -> dict[str, str]:
    """A fixed seed where the algorithm takes one, plus the cheaper settings above."""
    takes_seed = any(s.name == "random_state" for s in get(algorithm).settings_spec)
    return {**({"random_state": "3"} if takes_seed else {}), **SEEDED.get(algorithm, {})}


def mixed_space(kit: Any) -> list[Any]:
    """3 x 4 x 3 = 36 points: small enough for repeats to be likely if not prevented."""
    return [
        kit.param("units", "int", min="16", max="64", step="24"),
        kit.param("lr", "double", min="0.1", max="0.4", step="0.1"),
        kit.param("act", "categorical", values=["relu", "tanh", "gelu"]),
    ]


def objective(point: dict[str, Any]) -> float:
    return (point["units"] - 40) ** 2 / 100 + (point["lr"] - 0.2) ** 2 + len(point["act"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_eight_concurrent_calls_for_one_experiment_never_repeat(
    algorithm: str, kit: Any, run: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(algorithm, mixed_space(kit), settings=seeded(algorithm))
    driver = run(suggestions, experiment, objective)
    driver.ask(4)  # a few completed trials first, so model-based algorithms use their model
    request = kit.request(experiment, driver.trials, 3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: suggestions.GetSuggestions(request), range(8)))
    points = [
        (kit.key(a, driver.space), tuple(sorted(p.labels.items())))
        for r in replies
        for a, p in zip(kit.assignments(r), r.parameter_assignments, strict=True)
    ]
    points += driver.member_keys()
    if not get(algorithm).repeats_points:  # pbt's trials differ by their labels only
        points = [point for point, _ in points]
    assert len(points) == 8 * 3 + 4
    assert len(set(points)) == len(points)


def test_grid_returns_all_twelve_points_once_then_reports_exhaustion(
    kit: Any, run: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(
        "grid",
        [
            kit.param("a", "int", min="1", max="3"),
            kit.param("b", "categorical", values=["x", "y"]),
            kit.param("c", "double", min="0", max="0.5", step="0.5"),
        ],
    )
    driver = run(suggestions, experiment)
    assert len(driver.ask(5)) == 5 and not driver.exhausted_marked
    assert len(driver.ask(5, pending=True)) == 5  # running trials are taken points too
    last = driver.ask(5)
    assert len(last) == 2 and driver.exhausted_marked
    assert driver.ask(3) == [] and driver.exhausted_marked
    space = driver.space
    assert sorted(driver.keys()) == sorted(tuple(p.values()) for p in space.grid())
    assert len(set(driver.keys())) == 12


def test_grid_walks_the_space_in_order(kit: Any, run: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "grid",
        [kit.param("a", "int", min="1", max="2"), kit.param("b", "discrete", values=["0.5", "2"])],
    )
    driver = run(suggestions, experiment)
    assert driver.ask(4) == [
        {"a": "1", "b": "0.5"},
        {"a": "1", "b": "2"},
        {"a": "2", "b": "0.5"},
        {"a": "2", "b": "2"},
    ]


@pytest.mark.parametrize("algorithm", ["random", "sobol", "tpe", "cmaes", "bayesianoptimization"])
def test_a_used_up_finite_space_is_reported_as_exhausted(
    algorithm: str, kit: Any, run: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(
        algorithm,
        [kit.param("a", "int", min="0", max="1"), kit.param("b", "int", min="0", max="2")],
        settings=seeded(algorithm),
    )
    driver = run(suggestions, experiment, lambda p: p["a"] + p["b"])
    first = driver.ask(4)
    assert len(first) == 4 and not driver.exhausted_marked
    rest = driver.ask(4)
    assert len(rest) == 2 and driver.exhausted_marked
    assert len(set(driver.keys())) == 6


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_restarted_server_continues_without_error_or_repeat(
    algorithm: str, kit: Any, run: Any
) -> None:
    experiment = kit.experiment(algorithm, mixed_space(kit), settings=seeded(algorithm))
    first, port = create_server("127.0.0.1:0")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        driver = run(api_pb2_grpc.SuggestionStub(channel), experiment, objective)
        driver.ask(3)
        driver.ask(3)
        driver.ask(2, pending=True)  # still running when the server goes away
    first.stop(None)

    second, port = create_server("127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            driver.stub = api_pb2_grpc.SuggestionStub(channel)
            assert len(driver.ask(3)) == 3
            assert len(driver.ask(3)) == 3
    finally:
        second.stop(None)
    keys = driver.member_keys() if get(algorithm).repeats_points else driver.keys()
    assert len(keys) == 14 and len(set(keys)) == 14


def sequence(algorithm: str, kit: Any, run: Any, suggestions: Any, name: str) -> list[Any]:
    experiment = kit.experiment(algorithm, mixed_space(kit), settings=seeded(algorithm), name=name)
    driver = run(suggestions, experiment, objective)
    for count in (3, 2, 3):
        driver.ask(count)
    driver.ask(2, pending=True)
    driver.ask(2)
    return driver.suggested


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_and_requests_give_the_same_suggestions(
    algorithm: str, kit: Any, run: Any, suggestions: Any, request: Any
) -> None:
    base = request.node.name
    assert sequence(algorithm, kit, run, suggestions, f"{base}-a") == sequence(
        algorithm, kit, run, suggestions, f"{base}-b"
    )


@pytest.mark.parametrize(
    "algorithm",
    ["random", "sobol", "grid", "tpe", "multivariate-tpe", "cmaes", "bayesianoptimization", "pbt"],
)
def test_a_cold_server_answers_like_a_warm_one(
    algorithm: str, kit: Any, run: Any, suggestions: Any, request: Any
) -> None:
    # The warm experiment has served the calls that built its trials; a new experiment
    # name (no cached session) gets the same request and must draw the same points.
    experiment = kit.experiment(
        algorithm, mixed_space(kit), settings=seeded(algorithm), name=f"{request.node.name}-w"
    )
    warm = run(suggestions, experiment, objective)
    for count in (3, 3, 2):
        warm.ask(count)
    last = kit.request(experiment, warm.trials, 3)
    cold_experiment = type(experiment)()
    cold_experiment.CopyFrom(experiment)
    cold_experiment.name = f"{request.node.name}-c"
    cold = kit.request(cold_experiment, warm.trials, 3)
    warm_reply, cold_reply = suggestions.GetSuggestions(last), suggestions.GetSuggestions(cold)
    assert kit.assignments(warm_reply) == kit.assignments(cold_reply)
    assert [dict(p.labels) for p in warm_reply.parameter_assignments] == [
        dict(p.labels) for p in cold_reply.parameter_assignments
    ]


def test_the_exhaustion_marker_is_trailing_metadata(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("grid", [kit.param("a", "int", min="1", max="2")])
    reply, call = suggestions.GetSuggestions.with_call(kit.request(experiment, [], 5))
    assert len(reply.parameter_assignments) == 2
    assert EXHAUSTED_METADATA in tuple(call.trailing_metadata())
