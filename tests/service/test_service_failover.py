"""Two `tuner controller` replicas on one database, three submitted experiments, one replica
lost mid-run: every experiment finishes exactly once, with exact trial counts, no trial
launched twice. Runs on SQLite always and on PostgreSQL when TUNER_TEST_POSTGRES_URL is set
(the issue's lease test).

A SIGKILLed replica on this host is provably dead, so its leases are taken over at once; a
SIGSTOPped one (frozen, as behind a network partition) is alive, so the survivor waits for
its leases to expire on the database clock, and the frozen replica, woken up later, must
find its leases gone and touch nothing."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until

from tuner.store import ExperimentStatus, TrialStatus

from .conftest import Bench, ControllerProcess

MAX_TRIALS = {"alpha": 5, "beta": 4, "gamma": 4}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_bench(
    request: pytest.FixtureRequest, tmp_path: Path, suggestion_address: str
) -> Iterator[Bench]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tuner.db'}"
    else:
        url = request.getfixturevalue("postgres_url_short_idle")
    bench = Bench(tmp_path, url, suggestion_address)
    yield bench
    bench.close()


@pytest.mark.parametrize("loss", ["SIGKILL", "SIGSTOP"])
def test_a_lost_replica_is_taken_over_and_every_trial_runs_once(
    shared_bench: Bench, loss: str
) -> None:
    bench = shared_bench
    if loss == "SIGSTOP" and bench.db_url.startswith("sqlite"):
        # A frozen process may hold SQLite's one write lock, which nothing can break: a
        # single-file database is for one replica (or replicas that crash, not freeze).
        pytest.skip("a frozen SQLite writer blocks every other; use a database server")
    # Each replica may drive two experiments: of three, both get at least one.
    replicas = [bench.start_controller("--max-concurrent-experiments", "2") for _ in range(2)]
    documents = [
        bench.experiment(name, max_trials=count, parallel=2, sleep=0.8)
        for name, count in MAX_TRIALS.items()
    ]
    assert bench.submit(bench.write("experiments.yaml", *documents)) == 0

    def victim() -> ControllerProcess | None:
        """A replica that owns an experiment with running trials (its lease names it)."""
        with bench.store() as store:
            for experiment in store.list_experiments():
                if store.list_trials(experiment.name, [TrialStatus.RUNNING]):
                    for replica in replicas:
                        if experiment.lease_owner == replica.owner:
                            return replica
        return None

    lost = wait_until(victim, "a replica to run trials")
    if loss == "SIGKILL":
        lost.kill()
    else:
        lost.proc.send_signal(signal.SIGSTOP)
    survivor = next(r for r in replicas if r is not lost)

    def all_finished() -> bool:
        with bench.store() as store:
            found = store.list_experiments()
        return len(found) == 3 and all(e.status.is_finished() for e in found)

    wait_until(all_finished, "every experiment to finish")
    assert_each_ran_once(bench)
    if loss == "SIGSTOP":
        lost.proc.send_signal(signal.SIGCONT)
        # Woken up, it finds its leases taken or released, and stops driving.
        wait_until(lambda: leases_held(lost) == 0, "the woken replica to give up its leases")
        assert_each_ran_once(bench)
        assert lost.terminate()[0] == 0
    assert survivor.terminate()[0] == 0
    with bench.store() as store:
        assert all(e.lease_owner is None for e in store.list_experiments())


def assert_each_ran_once(bench: Bench) -> None:
    launches = Counter(bench.launches())
    with bench.store() as store:
        for name, count in MAX_TRIALS.items():
            experiment = store.get_experiment(name)
            trials = store.list_trials(name)
            assert experiment.status is ExperimentStatus.SUCCEEDED, experiment
            assert len(trials) == count
            assert {t.status for t in trials} == {TrialStatus.SUCCEEDED}
            assert len({tuple(sorted(t.parameters.items())) for t in trials}) == count
            assert [launches[t.name] for t in trials] == [1] * count
    assert sum(launches.values()) == sum(MAX_TRIALS.values())


def leases_held(replica: ControllerProcess) -> float:
    code, body = replica.get("/metrics")
    assert code == 200
    line = next(x for x in body.splitlines() if x.startswith("tuner_leases_held "))
    return float(line.split()[1])
