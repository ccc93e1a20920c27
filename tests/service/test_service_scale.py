"""`tuner controller` with 100 experiments of quick trials in one replica: every experiment
completes, the workers serve them in turn (each one's first trial comes before anyone's
second), and /metrics shows the worker queue and each experiment's lag."""

from __future__ import annotations

from typing import Any

import pytest
import support
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from support import wait_until

from tuner.store import ExperimentStatus, TrialStatus
from tuner.store._engine import resolve_url

EXPERIMENTS = 100
TRIALS = 2


def quick_experiment(name: str) -> dict[str, Any]:
    """Sequential trials (one at a time) of ``/bin/echo loss=1``."""
    return support.experiment_document(
        name,
        command=["/bin/echo", "loss=1", "x=${trialParameters.x}"],
        parameters=[support.int_parameter("x", 0, 1000000)],
        image="busybox",
        parallel=1,
        max_trials=TRIALS,
    )


def submit_all(bench) -> list[str]:  # noqa: ANN001 - the conftest Bench
    names = [f"quick-{i:03d}" for i in range(EXPERIMENTS)]
    path = bench.write("quick.yaml", *(quick_experiment(n) for n in names))
    assert bench.submit(path) == 0
    return names


def trial_order(db_url: str) -> list[str]:
    """The experiment of each trial, in the order the trials were created (row ids)."""
    engine = create_engine(resolve_url(db_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT e.name FROM trials t JOIN experiments e ON t.experiment_id = e.id"
                    " ORDER BY t.id"
                )
            )
            return [row[0] for row in rows]
    finally:
        engine.dispose()


def metric_families(controller) -> dict[str, Any]:  # noqa: ANN001 - ControllerProcess
    code, body = controller.get("/metrics")
    assert code == 200
    return {family.name: family for family in text_string_to_metric_families(body)}


def all_succeeded(bench, names: list[str]) -> bool:  # noqa: ANN001
    with bench.store() as store:
        found = {e.name: e.status for e in store.list_experiments()}
    return found == dict.fromkeys(names, ExperimentStatus.SUCCEEDED)


def assert_every_trial_succeeded(bench, names: list[str]) -> None:  # noqa: ANN001
    with bench.store() as store:
        for name in names:
            trials = store.list_trials(name)
            assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * TRIALS, name


def test_one_worker_serves_every_experiments_first_trial_before_any_second(bench) -> None:
    names = submit_all(bench)
    controller = bench.start_controller("--workers", "1")
    wait_until(
        lambda: all_succeeded(bench, names),
        "all experiments to succeed",
        guard=10 * support.HANG_GUARD_SECONDS,
        interval=0.5,
        process=controller.proc,
    )
    assert_every_trial_succeeded(bench, names)

    # Turns go oldest waiting first and each experiment holds its first turn through the
    # pass that creates its first trial: no experiment gets a second trial before every
    # experiment has its first (with 10 experiments driven at a time, or a thread each
    # racing for the database, the early ones finish while the late ones wait).
    order = trial_order(bench.db_url)
    first_of_each = {name: order.index(name) for name in names}
    second_trials = [i for i, name in enumerate(order) if i != first_of_each[name]]
    assert max(first_of_each.values()) < min(second_trials), order[: EXPERIMENTS + 5]
    assert controller.terminate()[0] == 0


def scale_run(bench) -> None:  # noqa: ANN001
    names = submit_all(bench)
    controller = bench.start_controller("--workers", "4")

    def busy_metrics() -> dict[str, Any] | None:
        families = metric_families(controller)
        lags = families["tuner_experiment_lag_seconds"].samples
        waits = families["tuner_experiment_queue_wait_seconds"].samples
        queued = families["tuner_queue_depth"].samples[0].value
        return families if lags and waits and queued >= 1 else None

    # While experiments wait for the 4 workers: a queue, and a lag per driven experiment.
    families = wait_until(
        busy_metrics, "/metrics to show queued experiments", process=controller.proc
    )
    assert families["tuner_workers"].samples[0].value == 4
    assert families["tuner_workers_busy"].samples[0].value <= 4
    lags = families["tuner_experiment_lag_seconds"].samples
    assert {s.labels["namespace"] for s in lags} == {"default"}
    assert {s.labels["name"] for s in lags} <= set(names)
    assert all(s.value >= 0 for s in lags)
    running = families["tuner_experiments_running"].samples[0].value
    assert running == len(lags)
    queued = families["tuner_queue_depth"].samples[0].value
    waiting = [s for s in families["tuner_experiment_queue_wait_seconds"].samples if s.value > 0]
    assert 1 <= queued <= running
    assert len(waiting) <= queued
    # The existing metrics are still there.
    assert "tuner_leases_held" in families
    assert "tuner_experiments" in families

    wait_until(
        lambda: all_succeeded(bench, names),
        "all experiments to succeed",
        guard=10 * support.HANG_GUARD_SECONDS,
        interval=0.5,
        process=controller.proc,
    )
    assert_every_trial_succeeded(bench, names)

    def idle_metrics() -> dict[str, Any] | None:
        families = metric_families(controller)
        return families if families["tuner_experiments_running"].samples[0].value == 0 else None

    families = wait_until(idle_metrics, "every driver to end", process=controller.proc)
    assert families["tuner_queue_depth"].samples[0].value == 0
    assert families["tuner_workers_busy"].samples[0].value == 0
    assert families["tuner_experiment_lag_seconds"].samples == []
    trials = {s.labels["status"]: s.value for s in families["tuner_trials"].samples}
    assert trials["Succeeded"] == EXPERIMENTS * TRIALS
    assert controller.terminate()[0] == 0


def test_hundred_experiments_complete_on_sqlite_with_queue_metrics(bench) -> None:
    scale_run(bench)


def test_hundred_experiments_complete_on_postgresql(bench, postgres_url: str) -> None:
    bench.db_url = postgres_url
    scale_run(bench)


@pytest.mark.parametrize("workers", ["0", "x"])
def test_workers_flag_refuses_a_non_positive_count(workers: str, capsys) -> None:  # noqa: ANN001
    from tuner.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["controller", "--workers", workers])
    assert exited.value.code == 2
    assert "--workers" in capsys.readouterr().err
