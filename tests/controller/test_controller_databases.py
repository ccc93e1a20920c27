"""The controller against each database server the store supports (skipped without its URL)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
from support.databases import server_url

from tuner.controller import Controller, SuggestionClient
from tuner.executors import LocalExecutor
from tuner.store import ExperimentNotFoundError, Store, TrialStatus

SERVERS = [
    pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mysql", marks=pytest.mark.mysql, id="mysql"),
]


@pytest.mark.parametrize("backend", SERVERS)
def test_experiment_runs_to_its_end_on_a_database_server(
    backend: str, tmp_path: Path, bench, suggestion_address: str
) -> None:
    url = server_url(backend)
    name = f"ctl-{uuid.uuid4().hex[:12]}"  # the server database is shared between runs
    experiment = bench.experiment(name, max_trials=3, parallel=2)
    with Store.open(url) as store, SuggestionClient(suggestion_address) as client:
        executor = LocalExecutor(tmp_path / "runs", default_working_dir=bench.root)
        try:
            controller = Controller(store, experiment, client, executor, poll_interval=0.05)
            controller.prepare()
            result = controller.run()
            assert result.succeeded and result.experiment.reason == "ExperimentMaxTrialsReached"
            assert [t.status for t in result.trials] == [TrialStatus.SUCCEEDED] * 3
            assert result.best_trial is not None
            assert len(store.get_observations(result.best_trial.name)) == 2
        finally:
            with contextlib.suppress(ExperimentNotFoundError):
                store.delete_experiment(name)
