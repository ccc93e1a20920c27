"""Incremental GetSuggestions between the suggestion client and tuner's server (real gRPC on
loopback): the same answers as full requests over a long run, a restarted server falling
back to a full request, and full requests always to a service that does not negotiate."""

from __future__ import annotations

import dataclasses
import gc
import socket
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import datetime, timezone
from typing import Any

import grpc
import pytest
import support

from suggestion.service import ServerError, create_server
from tuner.controller import SuggestionClient
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.spec import Experiment
from tuner.store import MetricSummary, TrialRecord, TrialStatus

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def make_experiment(algorithm: str = "tpe", name: str = "delta-test") -> Experiment:
    return support.experiment(
        name,
        command=["run", "${trialParameters.x}", "${trialParameters.y}"],
        parameters=[support.double_parameter("x", -5, 5), support.int_parameter("y", 0, 50)],
        algorithm=algorithm,
        settings={"random_state": "3", **({"n_startup_trials": "4"} if algorithm == "tpe" else {})},
        max_trials=1000,
        image="x",
    )


def running(name: str, parameters: dict[str, str]) -> TrialRecord:
    return support.trial_record(
        name,
        TrialStatus.RUNNING,
        experiment_name="delta-test",
        parameters=parameters,
        created_at=NOW,
        started_at=NOW,
    )


def finished(trial: TrialRecord, step: int) -> TrialRecord:
    """The trial ended: failed every seventh, else succeeded with a loss of its point."""
    if step % 7 == 0:
        return dataclasses.replace(trial, status=TrialStatus.FAILED, completed_at=NOW)
    loss = (float(trial.parameters["x"]) - 1) ** 2 + int(trial.parameters["y"]) / 10
    return dataclasses.replace(
        trial,
        status=TrialStatus.SUCCEEDED,
        objective_value=loss,
        metrics_summary={"loss": MetricSummary(loss, loss, loss)},
        completed_at=NOW,
    )


class Recorder(grpc.UnaryUnaryClientInterceptor):
    """Records each GetSuggestions attempt: how many trials it carried, and its metadata."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, str]]] = []

    def intercept_unary_unary(self, continuation, details, request):  # noqa: ANN001, ANN201
        if isinstance(request, api_pb2.GetSuggestionsRequest):
            self.calls.append((len(request.trials), dict(details.metadata or ())))
        return continuation(details, request)


class Run:
    """An experiment's trials as a controller keeps them: each reply's points are stored
    Running, then the oldest running trials end, one record replaced per change."""

    def __init__(self, client: SuggestionClient, experiment: Experiment) -> None:
        self.client = client
        self.experiment = experiment
        self.trials: dict[str, TrialRecord] = {}
        self.step = 0

    def call(self, count: int) -> list[dict[str, str]]:
        trials = list(self.trials.values())
        reply = self.client.suggest(self.experiment, trials, count, len(trials) + count)
        for assignment in reply.assignments:
            name = f"t{len(self.trials)}"
            self.trials[name] = running(name, assignment)
        return reply.assignments

    def end_oldest(self, how_many: int) -> None:
        live = [t for t in self.trials.values() if t.status is TrialStatus.RUNNING]
        for trial in live[:how_many]:
            self.step += 1
            self.trials[trial.name] = finished(trial, self.step)


def run_side_by_side(
    steps: int,
    full: Run,
    incremental: Run,
    between: Callable[[int], None] = lambda step: None,
) -> None:
    for step in range(steps):
        between(step)
        count = 1 + step % 3
        assert incremental.call(count) == full.call(count), f"step {step}"
        full.end_oldest(1 + step % 2)
        incremental.end_oldest(1 + step % 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers() -> Iterator[Callable[[], int]]:
    started: list[grpc.Server] = []

    def start(port: int = 0) -> int:
        server, bound = create_server(f"127.0.0.1:{port}")
        started.append(server)
        return bound

    start.servers = started  # type: ignore[attr-defined]
    yield start
    for server in started:
        server.stop(None)


def test_incremental_requests_give_the_answers_of_full_requests(servers: Any) -> None:
    experiment = make_experiment("tpe")
    recorder = Recorder()
    with (
        SuggestionClient(f"127.0.0.1:{servers()}", incremental=False) as plain,
        SuggestionClient(f"127.0.0.1:{servers()}", interceptors=[recorder]) as delta,
    ):
        full, incremental = Run(plain, experiment), Run(delta, experiment)
        run_side_by_side(60, full, incremental)
    assert full.trials == incremental.trials
    # The first request carries every trial (none) with the offer, the later ones only the
    # trials that are new or changed: at most the last reply's points and the ended trials.
    assert recorder.calls[0][1]["tuner-trials-delta"] == "offer"
    later = recorder.calls[1:]
    assert all(metadata["tuner-trials-delta"] != "offer" for _, metadata in later)
    assert max(sent for sent, _ in later) <= 3 + 2
    assert sum(sent for sent, _ in later) < len(incremental.trials) * 3


def test_a_restarted_server_gets_the_trials_in_full_and_answers_the_same(servers: Any) -> None:
    experiment = make_experiment("tpe")
    port = servers(free_port())
    recorder = Recorder()

    def start_again() -> bool:
        try:
            servers(port)
        except ServerError:  # the old socket may linger a moment
            return False
        return True

    def restart(step: int) -> None:
        if step == 30:
            old = servers.servers.pop(0)
            old.stop(None).wait()
            del old
            gc.collect()  # gRPC lets the port go with the server object
            support.wait_until(start_again, f"a new server on port {port}")

    with (
        SuggestionClient(f"127.0.0.1:{servers()}", incremental=False) as plain,
        SuggestionClient(f"127.0.0.1:{port}", interceptors=[recorder]) as delta,
    ):
        full, incremental = Run(plain, experiment), Run(delta, experiment)
        run_side_by_side(50, full, incremental, between=restart)
    assert full.trials == incremental.trials
    offers = [
        i
        for i, (_, metadata) in enumerate(recorder.calls)
        if metadata.get("tuner-trials-delta") == "offer"
    ]
    # The first call and the one after the refused delta of the restarted server.
    assert len(offers) == 2
    refused = offers[1] - 1
    assert recorder.calls[refused][1]["tuner-trials-delta"] != "offer"
    assert recorder.calls[offers[1]][0] == int(recorder.calls[refused][1]["tuner-trials-count"])


def test_a_server_evicting_the_experiment_gets_the_trials_in_full(servers: Any) -> None:
    from suggestion.service import SuggestionEngine

    server, port = create_server("127.0.0.1:0", engine=SuggestionEngine(max_experiments=1))
    servers.servers.append(server)
    recorder = Recorder()
    with (
        SuggestionClient(f"127.0.0.1:{servers()}", incremental=False) as plain,
        SuggestionClient(f"127.0.0.1:{port}", interceptors=[recorder]) as delta,
        SuggestionClient(f"127.0.0.1:{port}") as other,
    ):
        full = Run(plain, make_experiment("random"))
        incremental = Run(delta, make_experiment("random"))
        intruder = Run(other, make_experiment("random", name="another"))

        def intrude(step: int) -> None:
            if step == 10:  # the server keeps one experiment: this one evicts ours
                intruder.call(1)

        run_side_by_side(20, full, incremental, between=intrude)
    assert full.trials == incremental.trials
    offers = [m for _, m in recorder.calls if m.get("tuner-trials-delta") == "offer"]
    assert len(offers) == 2


class KatibLike(api_pb2_grpc.SuggestionServicer):
    """A suggestion service that knows nothing of deltas (as Katib's images): one point per
    request, numbered by the trials it was sent."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def GetSuggestions(self, request, context):  # noqa: ANN001, ANN201, N802
        self.sent.append(len(request.trials))
        return api_pb2.GetSuggestionsReply(
            parameter_assignments=[
                api_pb2.GetSuggestionsReply.ParameterAssignments(
                    assignments=[
                        api_pb2.ParameterAssignment(name="x", value=str(len(request.trials))),
                        api_pb2.ParameterAssignment(name="y", value="1"),
                    ]
                )
            ]
        )


def test_a_service_that_does_not_negotiate_gets_every_trial_every_time() -> None:
    servicer = KatibLike()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_SuggestionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with SuggestionClient(f"127.0.0.1:{port}") as client:
            run = Run(client, make_experiment("random"))
            for _ in range(8):
                run.call(1)
                run.end_oldest(1)
    finally:
        server.stop(None)
    assert servicer.sent == list(range(8))


def test_the_changed_trials_are_those_not_sent_in_any_order() -> None:
    """The positional comparison only skips work: reordered, replaced, new and dropped
    records give what a lookup by name gives."""
    from tuner.controller._suggestions import _Sent

    records = [running(f"t{i}", {"x": str(i), "y": "1"}) for i in range(8)]
    sent = _Sent("delta-test", "e1", {r.name: r for r in records}, list(records))
    assert sent.changed(records) == []
    ended = finished(records[2], 1)
    later = [*records[:2], ended, *records[3:], running("t8", {"x": "8", "y": "1"})]
    assert sent.changed(later) == [ended, later[-1]]
    shuffled = [later[5], *later[:5], *later[6:]]  # every place moved, one record changed
    assert sent.changed(shuffled) == [ended, later[-1]]
    assert sent.changed(later[:3]) == [ended]
    sent.update([ended], later[:3])
    assert sent.changed(later) == [later[-1]] and sent.changed(records) == [records[2]]
