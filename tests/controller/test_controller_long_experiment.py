"""A long experiment of quick trials runs to its exact end, and its GetSuggestions requests
carry only new or changed trials (not every trial each time: quadratic over a long run)."""

from __future__ import annotations

from pathlib import Path

import grpc
import support

from tuner.controller import Controller, SuggestionClient
from tuner.executors import LocalExecutor
from tuner.protos import api_pb2
from tuner.store import ExperimentStatus, Store, TrialStatus

TRIALS = 1000
PARALLEL = 4


class TrialsSent(grpc.UnaryUnaryClientInterceptor):
    """Counts the trials each GetSuggestions request carried."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def intercept_unary_unary(self, continuation, details, request):  # noqa: ANN001, ANN201
        if isinstance(request, api_pb2.GetSuggestionsRequest):
            self.sent.append(len(request.trials))
        return continuation(details, request)


def test_a_thousand_quick_trials_complete_exactly_with_incremental_requests(
    tmp_path: Path, suggestion_address: str
) -> None:
    experiment = support.experiment(
        "long",
        command=["/bin/echo", "loss=${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        settings={"random_state": "7"},
        parallel=PARALLEL,
        max_trials=TRIALS,
    )
    counter = TrialsSent()
    with (
        Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store,
        SuggestionClient(suggestion_address, interceptors=[counter]) as client,
    ):
        executor = LocalExecutor(tmp_path / "runs", default_working_dir=tmp_path)
        result = Controller(store, experiment, client, executor, poll_interval=0.05).run()
        trials = store.list_trials("long")
    assert result.experiment.status is ExperimentStatus.SUCCEEDED
    assert len(trials) == TRIALS
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.name for t in trials}) == len({t.parameters["x"] for t in trials}) == TRIALS
    assert all(t.objective_value == float(t.parameters["x"]) for t in trials)
    # Each request carries the trials that ended or started since the one before: a handful,
    # never the whole experiment (full requests would carry ~TRIALS^2 / 2 in all).
    assert max(counter.sent) <= 2 * PARALLEL
    assert sum(counter.sent) <= 3 * TRIALS
