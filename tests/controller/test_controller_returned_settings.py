"""A Katib-style suggestion service behind the controller: it keeps its state only in the
algorithm settings it returns (as Katib's hyperband image does), raises while trials it
waits for still run, and answers short while it works. The controller must send the
returned settings back, retry such an error once a trial has ended, and end the search
only on a short reply without settings."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
import support

from tuner.controller import Controller, SuggestionClient
from tuner.protos import api_pb2, api_pb2_grpc


class RoundsService(api_pb2_grpc.SuggestionServicer):
    """Round 0: ``count`` trials. Round 1, once every trial succeeded: one more trial (a
    short reply). Round 2: nothing and no settings (the end). The round travels only in the
    ``round`` setting it returns, like Katib's hyperband's ``current_s``."""

    def __init__(self) -> None:
        self.sent_rounds: list[str] = []
        self.raised = 0

    def ValidateAlgorithmSettings(self, request: Any, context: Any) -> Any:
        return api_pb2.ValidateAlgorithmSettingsReply()

    def GetSuggestions(self, request: Any, context: grpc.ServicerContext) -> Any:
        settings = {s.name: s.value for s in request.experiment.spec.algorithm.algorithm_settings}
        round_ = int(settings.get("round", "0"))
        self.sent_rounds.append(settings.get("round", ""))
        reply = api_pb2.GetSuggestionsReply()
        if round_ >= 2:
            return reply
        if round_ == 1:
            if any(t.status.condition != api_pb2.TrialStatus.SUCCEEDED for t in request.trials):
                self.raised += 1
                raise RuntimeError("There are some trials which are not completed yet")
            count = 1
        else:
            count = request.current_request_number
        for i in range(count):
            reply.parameter_assignments.add().assignments.add(name="x", value=str(i))
        reply.algorithm.algorithm_settings.add(name="round", value=str(round_ + 1))
        return reply


@pytest.fixture
def service() -> Iterator[tuple[RoundsService, str]]:
    servicer = RoundsService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_SuggestionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_returned_settings_come_back_and_a_raising_service_is_asked_again(
    bench: Any, service: tuple[RoundsService, str]
) -> None:
    servicer, address = service
    # Trial x sleeps x seconds: trial 0 ends while 1 and 2 still run.
    experiment = support.experiment(
        command=["python3", "trial.py", "--x=${trialParameters.x}", "--sleep=${trialParameters.x}"],
        parameters=[support.int_parameter("x", 0, 100)],
        parallel=3,
    )
    with SuggestionClient(address) as client:
        controller = Controller(bench.store, experiment, client, bench.executor, poll_interval=0.05)
        controller.prepare()
        result = controller.run()

    trials = bench.store.list_trials("exp")
    assert [t.parameters["x"] for t in trials] == ["0", "1", "2", "0"]
    assert all(t.status.value == "Succeeded" for t in trials)
    stored = bench.store.get_experiment("exp")
    assert stored.reason == "ExperimentSuggestionEndReached", result
    assert stored.algorithm_settings == (("round", "2"),)
    # The first request had no round; every later one carried the last returned round.
    assert servicer.sent_rounds[0] == "" and set(servicer.sent_rounds[1:]) <= {"1", "2"}
    assert servicer.sent_rounds[-1] == "2"
    # Asked while the first trials ran, it raised; the controller waited instead of failing.
    assert servicer.raised >= 1
