"""Bounded work per call: the request cap, cancellation, per-experiment admission, SIGTERM.

The waits here are liveness checks with generous timeouts (a server that answers at all),
never speed assertions: the latency lives in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from suggestion import algorithms
from suggestion.service import (
    MAX_SUGGESTIONS_PER_REQUEST,
    SuggestionEngine,
    SuggestionRequest,
    create_server,
)
from tuner.protos import api_pb2_grpc
from tuner.space import Direction, Parameter, SearchSpace

LIVENESS_SECONDS = 5.0  # generous: answering at all is the point, not answering fast
DIMS = 6


def heavy_request(kit: Any, name: str, trials: int = 1000, count: int = 64) -> Any:
    """A GP call that computes for seconds (minutes with scikit-optimize's refits)."""
    params = [kit.param(f"x{i}", "double", min="0", max="1") for i in range(DIMS)]
    experiment = kit.experiment(
        "bayesianoptimization", params, settings={"random_state": "3"}, name=name
    )
    xs = np.random.default_rng(0).random((trials, DIMS))
    history = [
        kit.trial(
            f"t{i}",
            {f"x{j}": repr(float(v)) for j, v in enumerate(x)},
            value=float(np.sum((x - 0.3) ** 2)),
        )
        for i, x in enumerate(xs)
    ]
    return kit.request(experiment, history, count)


def random_request(kit: Any, name: str, count: int) -> Any:
    experiment = kit.experiment("random", [kit.param("x", "double", min="0", max="1")], name=name)
    return kit.request(experiment, [], count)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[grpc.Server] = []

    def start(**kwargs: Any) -> tuple[grpc.Channel, int]:
        server, port = create_server("127.0.0.1:0", **kwargs)
        started.append(server)
        return grpc.insecure_channel(f"127.0.0.1:{port}"), port

    yield start
    for server in started:
        server.stop(None)


def healthy(channel: grpc.Channel) -> bool:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=LIVENESS_SECONDS
    )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.parametrize("count", [MAX_SUGGESTIONS_PER_REQUEST + 1, 2**31 - 1])
def test_a_count_above_the_cap_is_refused_naming_the_field(
    count: int, kit: Any, suggestions: Any
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        suggestions.GetSuggestions(random_request(kit, f"cap-{count}", count), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "current_request_number" in caught.value.details()
    assert str(MAX_SUGGESTIONS_PER_REQUEST) in caught.value.details()


def test_a_count_at_the_cap_is_served_in_full(kit: Any, suggestions: Any) -> None:
    reply = suggestions.GetSuggestions(
        random_request(kit, "cap-exact", MAX_SUGGESTIONS_PER_REQUEST), timeout=60
    )
    points = {tuple(sorted(a.items())) for a in kit.assignments(reply)}
    assert len(points) == MAX_SUGGESTIONS_PER_REQUEST


REQUIRED_SETTINGS = {
    "pbt": (
        ("suggestion_trial_dir", "/ckpt"),
        ("n_population", "5"),
        ("truncation_threshold", "0.2"),
    ),
}


@pytest.mark.parametrize(
    "name", [n for n in algorithms.names() if algorithms.get(n).general_purpose]
)
def test_every_algorithm_stops_when_its_caller_stops_waiting(name: str) -> None:
    space = SearchSpace(
        tuple(Parameter.from_wire(n, "double", min="0", max="1", step="0.1") for n in ("a", "b"))
    )
    request = SuggestionRequest(
        experiment=f"stop-{name}",
        algorithm=name,
        settings=(("random_state", "1"), *REQUIRED_SETTINGS.get(name, ())),
        space=space,
        goal=Direction.MINIMIZE,
        trials=(),
        count=4,
        should_stop=lambda: True,
    )
    with pytest.raises(algorithms.CancelledError):
        SuggestionEngine().suggest(request)


def test_a_cancelled_bayesian_call_frees_its_worker(kit: Any, serve: Any) -> None:
    # One worker thread: the health check can only run once the cancelled call let go.
    channel, _ = serve(max_workers=1)
    stub = api_pb2_grpc.SuggestionStub(channel)
    assert healthy(channel)
    call = stub.GetSuggestions.future(heavy_request(kit, "cancel-me"))
    time.sleep(0.5)  # let it start computing
    call.cancel()
    assert healthy(channel)
    with pytest.raises(grpc.FutureCancelledError):
        call.result()


def test_one_experiment_cannot_take_every_thread(kit: Any, serve: Any) -> None:
    """Issue 17: 16 calls for one experiment left no thread for health or anyone else."""
    channel, _ = serve()
    stub = api_pb2_grpc.SuggestionStub(channel)
    request = heavy_request(kit, "greedy")
    calls: list[Future[Any]] = [stub.GetSuggestions.future(request) for _ in range(16)]
    try:
        time.sleep(0.5)
        assert healthy(channel)
        other = stub.GetSuggestions(random_request(kit, "other", 2), timeout=LIVENESS_SECONDS)
        assert len(other.parameter_assignments) == 2
        refused = [c for c in calls if c.done() and not c.cancelled() and c.exception() is not None]
        assert refused and all(
            c.exception().code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[union-attr]
            for c in refused
        )
    finally:
        for c in calls:
            c.cancel()


def test_sigterm_stops_a_busy_server_within_its_grace_period(kit: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "suggestion.service", "--address", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert healthy(channel)
            stub = api_pb2_grpc.SuggestionStub(channel)
            with ThreadPoolExecutor(max_workers=4) as pool:
                pending = [
                    pool.submit(stub.GetSuggestions, heavy_request(kit, f"busy-{i}"), timeout=60)
                    for i in range(4)
                ]
                time.sleep(1.0)
                process.terminate()
                # STOP_GRACE_SECONDS is 5: the server may let calls run that long, no longer.
                assert process.wait(timeout=5.0 + 10.0) == 0
                for f in pending:
                    f.exception()  # the calls ended one way or another
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
