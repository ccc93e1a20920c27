"""`tuner controller` as a real subprocess on SQLite: drives submitted experiments to their
end, serves /metrics and /healthz over HTTP, stops on SIGTERM without killing trials, and
stops driving an experiment whose lease it lost."""

from __future__ import annotations

import sqlite3
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families
from support import wait_until

from tuner.store import ExperimentStatus, TrialStatus


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def statuses(bench) -> dict[str, ExperimentStatus]:  # noqa: ANN001 - the conftest Bench
    with bench.store() as store:
        return {e.name: e.status for e in store.list_experiments()}


def assert_ran_exactly_once(bench, name: str, max_trials: int) -> None:  # noqa: ANN001
    """maxTrialCount trials, all Succeeded, distinct parameters, each launched once."""
    with bench.store() as store:
        trials = store.list_trials(name)
    assert len(trials) == max_trials
    assert {t.status for t in trials} == {TrialStatus.SUCCEEDED}
    assert len({tuple(sorted(t.parameters.items())) for t in trials}) == max_trials
    launches = Counter(bench.launches())
    assert all(launches[t.name] == 1 for t in trials), launches


def test_controller_drives_every_submitted_experiment_and_serves_metrics(bench) -> None:
    assert (
        bench.submit(bench.write("ab.yaml", bench.experiment("alpha"), bench.experiment("beta")))
        == 0
    )
    controller = bench.start_controller()
    # Submitted while the controller runs: found by its polling.
    assert bench.submit(bench.write("c.yaml", bench.experiment("gamma", max_trials=3))) == 0

    # Healthy once it has read the database (503 before its first read, on a slow machine).
    wait_until(lambda: controller.get("/healthz")[0] == 200, "the controller to be healthy")
    wait_until(
        lambda: (
            set(statuses(bench).values()) == {ExperimentStatus.SUCCEEDED}
            and len(statuses(bench)) == 3
        ),
        "all three experiments to succeed",
    )
    for name, max_trials in (("alpha", 4), ("beta", 4), ("gamma", 3)):
        assert_ran_exactly_once(bench, name, max_trials)

    def finished_metrics() -> dict | None:
        code, body = controller.get("/metrics")
        assert code == 200
        found = samples(body)
        done = found.get(("tuner_experiments", (("status", "Succeeded"),)))
        return found if done == 3 else None

    found = wait_until(finished_metrics, "/metrics to count the finished experiments")
    assert found[("tuner_trials", (("status", "Succeeded"),))] == 11
    assert found[("tuner_trials", (("status", "Running"),))] == 0
    assert found[("tuner_experiments", (("status", "Running"),))] == 0
    assert found[("tuner_leases_held", ())] == 0
    calls = found[
        ("tuner_suggestion_request_duration_seconds_count", (("method", "GetSuggestions"),))
    ]
    assert calls >= 3  # at least one request per experiment
    assert controller.get("/nothing")[0] == 404

    code, out = controller.terminate()
    assert code == 0
    assert "controller stopped" in out


def test_sigterm_releases_leases_and_leaves_trials_for_the_next_controller(bench) -> None:
    experiment = bench.experiment("alpha", max_trials=4, parallel=2, sleep=2.0)
    assert bench.submit(bench.write("a.yaml", experiment)) == 0
    first = bench.start_controller()

    def running() -> bool:
        with bench.store() as store:
            return len(store.list_trials("alpha", [TrialStatus.RUNNING])) == 2

    wait_until(running, "two trials to run")

    code, _ = first.terminate()

    assert code == 0
    with bench.store() as store:
        record = store.get_experiment("alpha")
        trials = store.list_trials("alpha")
    assert record.lease_owner is None and record.lease_expires_at is None
    assert record.status is ExperimentStatus.RUNNING
    # Not killed: still running, to be adopted by whoever drives the experiment next.
    assert [t.status for t in trials] == [TrialStatus.RUNNING] * 2

    second = bench.start_controller()
    wait_until(lambda: statuses(bench)["alpha"] is ExperimentStatus.SUCCEEDED, "alpha to succeed")
    assert_ran_exactly_once(bench, "alpha", 4)
    with bench.store() as store:
        adopted = {t.name for t in store.list_trials("alpha")} & {t.name for t in trials}
    assert adopted == {t.name for t in trials}
    assert second.terminate()[0] == 0


def test_a_lost_lease_stops_driving_without_killing_until_it_is_free_again(bench) -> None:
    experiment = bench.experiment("alpha", max_trials=4, parallel=2, sleep=1.5)
    assert bench.submit(bench.write("a.yaml", experiment)) == 0
    controller = bench.start_controller()

    def running() -> bool:
        with bench.store() as store:
            return len(store.list_trials("alpha", [TrialStatus.RUNNING])) == 2

    wait_until(running, "two trials to run")
    # Our lease lapses (as if renewals had not reached the database in time) and another
    # host's controller takes it: ours must stop driving at its next renewal, touching no
    # trial, and may take the experiment back only once that lease has expired.
    with bench.store() as store:

        def steal() -> bool:
            store.renew_lease("alpha", controller.owner, 0)
            return store.acquire_lease("alpha", "tuner/elsewhere/1/1", 4)

        wait_until(steal, "another controller to take the lease")

    def leases_held() -> float:
        return samples(controller.get("/metrics")[1])[("tuner_leases_held", ())]

    wait_until(lambda: leases_held() == 0, "the controller to give up the lease")
    with bench.store() as store:
        assert store.get_experiment("alpha").lease_owner == "tuner/elsewhere/1/1"

    wait_until(lambda: statuses(bench)["alpha"] is ExperimentStatus.SUCCEEDED, "alpha to succeed")
    assert_ran_exactly_once(bench, "alpha", 4)  # none was killed, none launched twice
    assert "another controller took over the lease" in controller.log.read_text()
    with bench.store() as store:
        assert store.get_experiment("alpha").lease_owner is None
    assert controller.terminate()[0] == 0


def test_healthz_is_503_while_the_database_cannot_be_read(bench) -> None:
    controller = bench.start_controller("--lease-seconds", "1")  # unhealthy after 1 s
    wait_until(lambda: controller.get("/healthz")[0] == 200, "the controller to be healthy")
    with sqlite3.connect(bench.root / "tuner.db") as db:
        db.execute("ALTER TABLE experiments RENAME TO experiments_away")

    code, body = wait_until(
        lambda: (r := controller.get("/healthz"))[0] != 200 and r, "/healthz to fail"
    )
    assert code == 503
    assert "the database was last read" in body

    with sqlite3.connect(bench.root / "tuner.db") as db:
        db.execute("ALTER TABLE experiments_away RENAME TO experiments")
    wait_until(lambda: controller.get("/healthz")[0] == 200, "the controller to recover")
    assert controller.terminate()[0] == 0


def test_resubmitted_counts_reach_the_controller_driving_the_experiment(bench, capsys) -> None:
    assert (
        bench.submit(
            bench.write("a.yaml", bench.experiment("alpha", max_trials=2, parallel=1, sleep=1.5))
        )
        == 0
    )
    controller = bench.start_controller()

    def running() -> bool:
        with bench.store() as store:
            return bool(store.list_trials("alpha", [TrialStatus.RUNNING]))

    wait_until(running, "the first trial to run")
    raised = bench.experiment("alpha", max_trials=4, parallel=2, sleep=1.5)
    assert bench.submit(bench.write("b.yaml", raised)) == 0
    assert (
        "updated: spec.parallelTrialCount 1 -> 2, spec.maxTrialCount 2 -> 4"
        in capsys.readouterr().out
    )

    wait_until(lambda: statuses(bench)["alpha"] is ExperimentStatus.SUCCEEDED, "alpha to succeed")
    assert_ran_exactly_once(bench, "alpha", 4)
    assert "stored spec changed" in controller.log.read_text()
    assert controller.terminate()[0] == 0
