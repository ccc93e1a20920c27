"""Experiments and leases, on every configured backend."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from tuner.store import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentStatus,
    Observation,
    Store,
    TrialNotFoundError,
)
from tuner.store._models import ObservationRow, TrialRow

if TYPE_CHECKING:
    from store.conftest import Build


def test_created_experiment_reads_back_with_spec_and_utc_timestamps(
    store: Store, build: Build
) -> None:
    spec = build.spec(parameters=[{"name": "lr", "parameterType": "double"}])
    store.create_experiment("mnist", "team-a", spec)

    got = store.get_experiment("mnist")

    assert (got.name, got.namespace, got.spec) == ("mnist", "team-a", spec)
    assert got.status is ExperimentStatus.CREATED
    assert got.created_at.tzinfo is timezone.utc
    assert got.started_at is None and got.completed_at is None
    assert got.best_trial_name is None and got.lease_owner is None


def test_duplicate_experiment_name_is_refused(store: Store, build: Build) -> None:
    build.experiment(store, "mnist")
    with pytest.raises(ExperimentExistsError, match="'mnist'"):
        build.experiment(store, "mnist")


def test_experiment_names_are_case_sensitive(store: Store, build: Build) -> None:
    # MySQL's default collation would call these equal; the store must not.
    build.experiment(store, "mnist")
    build.experiment(store, "MNIST")
    assert [e.name for e in store.list_experiments()] == ["mnist", "MNIST"]


def test_unknown_experiment_error_names_it_and_hints_the_cli(store: Store) -> None:
    with pytest.raises(ExperimentNotFoundError, match=r"'nope'.*tuner get experiments"):
        store.get_experiment("nope")


def test_list_experiments_in_creation_order_filtered_by_status(store: Store, build: Build) -> None:
    for name in ("a", "b", "c"):
        build.experiment(store, name)
    store.set_experiment_status("b", ExperimentStatus.RUNNING)

    assert [e.name for e in store.list_experiments()] == ["a", "b", "c"]
    running = store.list_experiments([ExperimentStatus.RUNNING])
    assert [e.name for e in running] == ["b"]


def test_update_experiment_spec_replaces_it(store: Store, build: Build) -> None:
    build.experiment(store)
    store.update_experiment_spec("exp", build.spec(maxTrialCount=10))
    assert store.get_experiment("exp").spec["maxTrialCount"] == 10


def test_status_changes_set_reason_message_and_timestamps(store: Store, build: Build) -> None:
    build.experiment(store)

    running = store.set_experiment_status(
        "exp", ExperimentStatus.RUNNING, "ExperimentRunning", "Experiment is running"
    )
    assert (running.reason, running.message) == ("ExperimentRunning", "Experiment is running")
    assert running.started_at is not None and running.completed_at is None

    done = store.set_experiment_status(
        "exp", ExperimentStatus.SUCCEEDED, "ExperimentMaxTrialsReached"
    )
    assert done.completed_at is not None and done.completed_at >= running.started_at
    assert done.started_at == running.started_at
    assert done.message is None

    restarted = store.set_experiment_status("exp", ExperimentStatus.RESTARTING)
    assert restarted.completed_at is None
    assert store.get_experiment("exp").status is ExperimentStatus.RESTARTING


def test_delete_experiment_cascades_to_trials_and_observations(store: Store, build: Build) -> None:
    build.experiment(store, "gone")
    build.experiment(store, "kept")
    build.trials(store, "gone", "gone-1", "gone-2")
    build.trials(store, "kept", "kept-1")
    store.add_observations("gone-1", [Observation("gone-1", "loss", 0.5)])
    store.add_observations("kept-1", [Observation("kept-1", "loss", 0.7)])

    store.delete_experiment("gone")

    with pytest.raises(ExperimentNotFoundError):
        store.get_experiment("gone")
    with pytest.raises(TrialNotFoundError):
        store.get_trial("gone-1")
    with store.engine.connect() as connection:
        # Rows, not just lookups: the database's ON DELETE CASCADE removed them.
        assert connection.scalar(select(func.count()).select_from(TrialRow)) == 1
        assert connection.scalar(select(func.count()).select_from(ObservationRow)) == 1
    assert [o.value for o in store.get_observations("kept-1")] == [0.7]


def test_delete_unknown_experiment_raises(store: Store) -> None:
    with pytest.raises(ExperimentNotFoundError):
        store.delete_experiment("nope")


def test_lease_is_refused_to_a_second_owner_until_it_expires(store: Store, build: Build) -> None:
    build.experiment(store)

    assert store.acquire_lease("exp", "controller-a", 3600)
    assert not store.acquire_lease("exp", "controller-b", 3600)
    assert not store.renew_lease("exp", "controller-b", 3600)
    assert store.acquire_lease("exp", "controller-a", 3600)  # already ours
    assert store.get_experiment("exp").lease_owner == "controller-a"

    # A zero TTL makes the lease expire at once: the takeover case, with no waiting.
    assert store.renew_lease("exp", "controller-a", 0)
    assert store.acquire_lease("exp", "controller-b", 3600)

    assert not store.renew_lease("exp", "controller-a", 3600)
    assert store.get_experiment("exp").lease_owner == "controller-b"


def test_lease_expiry_is_ttl_after_database_now(store: Store, build: Build) -> None:
    created = build.experiment(store)
    store.acquire_lease("exp", "controller-a", 3600)
    expires = store.get_experiment("exp").lease_expires_at
    assert expires is not None
    assert expires >= created.created_at + timedelta(seconds=3600)


def test_release_lease_only_by_its_owner(store: Store, build: Build) -> None:
    build.experiment(store)
    store.acquire_lease("exp", "controller-a", 3600)

    assert not store.release_lease("exp", "controller-b")
    assert store.get_experiment("exp").lease_owner == "controller-a"
    assert store.release_lease("exp", "controller-a")
    released = store.get_experiment("exp")
    assert (released.lease_owner, released.lease_expires_at) == (None, None)
    assert store.acquire_lease("exp", "controller-b", 3600)


def test_lease_of_unknown_experiment_raises(store: Store) -> None:
    with pytest.raises(ExperimentNotFoundError):
        store.acquire_lease("nope", "controller-a", 10)
