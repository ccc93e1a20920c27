"""Multi-objective experiments through the command line: `tuner run` over real gRPC with the
local executor finds the Pareto front of a problem whose front the test knows, `tuner best`
prints it, and a suggestion service that cannot serve several objectives is refused."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import support
import yaml
from support import HANG_GUARD_SECONDS, int_parameter

from tuner.protos import api_pb2, api_pb2_grpc

# loss = x^2 + y, latency = (5 - x)^2 + y over x, y in 0..5: y > 0 only adds to both, and
# x trades one against the other, so the front is exactly the six points with y = 0.
TRIAL = (
    "import sys; x, y = int(sys.argv[1]), int(sys.argv[2]);"
    " print(f'loss={x * x + y}'); print(f'latency={(5 - x) ** 2 + y}')"
)


def objectives(x: int, y: int) -> tuple[int, int]:
    return x * x + y, (5 - x) ** 2 + y


def non_dominated(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """The names whose point no other point dominates (both minimised), by brute force."""
    return {
        name
        for name, p in points.items()
        if not any(
            q[0] <= p[0] and q[1] <= p[1] and q != p for other, q in points.items() if other != name
        )
    }


def document(algorithm: str = "random", max_trials: int = 36, **spec: Any) -> dict[str, Any]:
    return support.experiment_document(
        "pareto",
        command=[sys.executable, "-c", TRIAL, "${trialParameters.x}", "${trialParameters.y}"],
        parameters=[int_parameter("x", 0, 5), int_parameter("y", 0, 5)],
        algorithm=algorithm,
        settings={"random_state": "7"},
        parallel=6,
        max_trials=max_trials,
        objective={
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalObjectives": [{"metricName": "latency", "type": "minimize"}],
        },
        **spec,
    )


def tuner(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*support.tuner_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def test_a_two_objective_run_returns_the_known_pareto_front(tmp_path: Path) -> None:
    # 36 trials over the 36 points: random never repeats a point, so every point runs.
    ran = support.tuner_run(tmp_path, document())
    assert ran.returncode == 0, ran.stderr

    out = tuner(tmp_path, "best", "pareto", "--db", "sqlite:///tuner.db", "-o", "json")
    assert out.returncode == 0, out.stderr
    front = json.loads(out.stdout)
    trials = json.loads(
        tuner(
            tmp_path, "get", "trials", "pareto", "--db", "sqlite:///tuner.db", "-o", "json"
        ).stdout
    )
    points = {t["name"]: objectives(t["parameters"]["x"], t["parameters"]["y"]) for t in trials}
    assert len(points) == 36 and len(set(points.values())) == 36
    # Computed here from the parameters alone, and known in closed form.
    assert {t["name"] for t in front} == non_dominated(points)
    assert sorted((t["parameters"]["x"], t["parameters"]["y"]) for t in front) == [
        (x, 0) for x in range(6)
    ]
    for t in front:
        x, y = t["parameters"]["x"], t["parameters"]["y"]
        assert t["values"] == {"loss": x * x + y, "latency": (5 - x) ** 2 + y}


def test_run_output_and_best_table_hold_the_front(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(document(max_trials=12)))
    ran = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "run", "exp.yaml", "--db", "sqlite:///tuner.db"]
        + ["--no-progress", "--poll-interval", "0.05", "--output", "result.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["objective"]["additionalObjectives"] == [
        {"metricName": "latency", "type": "minimize"}
    ]
    points = {}
    trials = json.loads(
        tuner(
            tmp_path, "get", "trials", "pareto", "--db", "sqlite:///tuner.db", "-o", "json"
        ).stdout
    )
    for t in trials:
        points[t["name"]] = objectives(t["parameters"]["x"], t["parameters"]["y"])
    assert len(points) == 12
    front = {t["name"]: t for t in result["paretoFront"]}
    assert set(front) == non_dominated(points)
    assert f"Pareto front: {len(front)} trial(s); 'tuner best pareto'" in ran.stdout + ran.stderr
    # The best trial (Katib's: best in objectiveMetricName) is one end of the front.
    assert result["bestTrial"]["name"] in front

    described = tuner(tmp_path, "describe", "experiment", "pareto", "--db", "sqlite:///tuner.db")
    assert "minimize loss, minimize latency" in described.stdout

    table = tuner(tmp_path, "best", "pareto", "--db", "sqlite:///tuner.db")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "LOSS", "LATENCY", "X", "Y"]
    assert {row.split()[0] for row in rows} == set(front)
    for row in rows:
        name, loss, latency, x, y = row.split()
        assert (float(loss), float(latency)) == objectives(int(x), int(y))
        assert front[name]["values"] == {"loss": float(loss), "latency": float(latency)}


@pytest.mark.parametrize("algorithm", ["nsga2", "tpe", "multivariate-tpe"])
def test_multi_objective_algorithms_run_to_a_correct_front(tmp_path: Path, algorithm: str) -> None:
    ran = support.tuner_run(tmp_path, document(algorithm, max_trials=14))
    assert ran.returncode == 0, ran.stderr
    trials = json.loads(
        tuner(
            tmp_path, "get", "trials", "pareto", "--db", "sqlite:///tuner.db", "-o", "json"
        ).stdout
    )
    assert len(trials) == 14 and all(t["status"] == "Succeeded" for t in trials)
    points = {t["name"]: objectives(t["parameters"]["x"], t["parameters"]["y"]) for t in trials}
    front = json.loads(
        tuner(tmp_path, "best", "pareto", "--db", "sqlite:///tuner.db", "-o", "json").stdout
    )
    assert {t["name"] for t in front} == non_dominated(points)


def test_an_algorithm_of_one_objective_is_refused_by_name(tmp_path: Path) -> None:
    ran = support.tuner_run(tmp_path, document("cmaes"))
    assert ran.returncode == 2
    assert "algorithm 'cmaes' optimises a single objective" in ran.stderr
    assert "nsga2" in ran.stderr and "tpe" in ran.stderr


class KatibLikeSuggestion(api_pb2_grpc.SuggestionServicer):
    """What a Katib suggestion image answers: any settings valid, no word on objectives."""

    def ValidateAlgorithmSettings(self, request: Any, context: Any) -> Any:
        return api_pb2.ValidateAlgorithmSettingsReply()


@pytest.fixture
def katib_like_address() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_SuggestionServicer_to_server(KatibLikeSuggestion(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_an_external_service_that_does_not_read_the_objectives_is_refused(
    tmp_path: Path, katib_like_address: str, suggestion_address: str
) -> None:
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(document()))

    def run(address: str) -> subprocess.CompletedProcess[str]:
        return tuner(
            tmp_path, "run", "exp.yaml", "--db", "sqlite:///tuner.db", "--no-progress",
            "--suggestion-address", address, "--dry-run",
        )  # fmt: skip

    refused = run(katib_like_address)
    assert refused.returncode == 2
    assert "spec.objective.additionalObjectives" in refused.stderr
    assert f"suggestion service at {katib_like_address} does not serve several" in refused.stderr
    # tuner's own server at an address of its own serves it.
    accepted = run(suggestion_address)
    assert accepted.returncode == 0, accepted.stderr
    assert not (tmp_path / "tuner.db").exists()


def test_the_same_problem_in_itertools_has_the_expected_front() -> None:
    # The test's own front computation, checked on the whole grid.
    points = {f"{x},{y}": objectives(x, y) for x, y in itertools.product(range(6), range(6))}
    assert non_dominated(points) == {f"{x},0" for x in range(6)}


def test_validate_refuses_several_objectives_for_an_algorithm_of_one(tmp_path: Path) -> None:
    (tmp_path / "cmaes.yaml").write_text(yaml.safe_dump(document("cmaes")))
    (tmp_path / "nsga2.yaml").write_text(yaml.safe_dump(document("nsga2")))
    out = tuner(tmp_path, "validate", "cmaes.yaml", "nsga2.yaml")
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert lines[0].startswith(
        "cmaes.yaml: spec.algorithm.algorithmName: algorithm 'cmaes' optimises a single objective"
    )
    assert "nsga2.yaml: valid" in lines
