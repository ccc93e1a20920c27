"""`Store.transaction`: several calls stored together or not at all, on every backend."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from tuner.store import (
    LeaseLostError,
    MetricSummary,
    Observation,
    Store,
    TrialExistsError,
    TrialStatus,
)

if TYPE_CHECKING:
    from store.conftest import Build

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _progress(store: Store) -> None:
    """A poll's worth of changes: one trial stored Running, another's observations and end."""
    store.update_trial("exp-1", status=TrialStatus.RUNNING, executor_ref={"pid": 1})
    store.add_observations(
        "exp-2", [Observation("exp-2", "loss", 0.5, timestamp=T0)], checkpoint={"position": 9}
    )
    summary = store.observation_summary("exp-2", ["loss"])
    store.finish_trial("exp-2", TrialStatus.SUCCEEDED, 0.5, summary, 0)


def test_the_calls_of_a_block_are_committed_together(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")

    with store.transaction():
        _progress(store)
        # Inside the block its own changes are visible to its reads.
        assert store.get_trial("exp-2").status is TrialStatus.SUCCEEDED

    assert store.get_trial("exp-1").status is TrialStatus.RUNNING
    assert store.get_trial("exp-1").executor_ref == {"pid": 1}
    ended = store.get_trial("exp-2")
    assert (ended.status, ended.objective_value) == (TrialStatus.SUCCEEDED, 0.5)
    assert ended.metrics_summary == {"loss": MetricSummary(0.5, 0.5, 0.5)}
    assert store.collector_checkpoint("exp-2") == {"position": 9}
    best = store.best_trial("exp")
    assert best is not None and best.name == "exp-2"


def test_a_block_that_raises_stores_nothing(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")

    with pytest.raises(TrialExistsError), store.transaction():
        _progress(store)
        build.trials(store, "exp", "exp-1")  # fails: the block's earlier changes go too

    assert [t.status for t in store.list_trials("exp")] == [TrialStatus.CREATED] * 2
    assert store.get_observations("exp-2") == []
    assert store.collector_checkpoint("exp-2") is None
    assert store.best_trial("exp") is None


def test_other_threads_keep_their_own_transactions(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")
    seen: list[TrialStatus] = []

    with store.transaction():
        store.update_trial("exp-1", status=TrialStatus.RUNNING)
        # A read from another thread is its own transaction: the block is not committed.
        reader = threading.Thread(target=lambda: seen.append(store.get_trial("exp-1").status))
        reader.start()
        reader.join()

    assert seen == [TrialStatus.CREATED]
    assert store.get_trial("exp-1").status is TrialStatus.RUNNING


def test_a_fenced_block_checks_the_lease(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")
    assert store.acquire_lease("exp", "me", 60)
    fenced = store.fenced("exp", "me")
    with fenced.transaction():
        _progress(fenced)
    assert store.get_trial("exp-2").status is TrialStatus.SUCCEEDED

    store.release_lease("exp", "me")
    assert store.acquire_lease("exp", "other", 60)
    with pytest.raises(LeaseLostError), fenced.transaction():
        fenced.update_trial("exp-1", message="late")
    assert store.get_trial("exp-1").message != "late"


def test_finish_stores_what_the_running_write_would_have(store: Store, build: Build) -> None:
    """A trial that ended before it was stored Running gets its executor fields with its end."""
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")

    store.finish_trial(
        "exp-1",
        TrialStatus.SUCCEEDED,
        0.1,
        executor_kind="local",
        executor_ref={"pid": 7},
        log_path="/runs/exp-1/output.log",
        started_at=T0,
    )
    store.finish_trial("exp-2", TrialStatus.FAILED, executor_kind="local", executor_ref={})

    one = store.get_trial("exp-1")
    assert (one.executor_kind, one.executor_ref, one.log_path, one.started_at) == (
        "local",
        {"pid": 7},
        "/runs/exp-1/output.log",
        T0,
    )
    two = store.get_trial("exp-2")
    assert two.started_at == two.completed_at  # no start known: the end stands for it


def test_commit_so_far_keeps_what_came_before_it(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")

    with pytest.raises(TrialExistsError), store.transaction():
        store.update_trial("exp-1", status=TrialStatus.RUNNING)
        store.commit_so_far()
        store.update_trial("exp-2", status=TrialStatus.RUNNING)
        build.trials(store, "exp", "exp-1")  # fails: only what came after the commit goes

    assert [t.status for t in store.list_trials("exp")] == [
        TrialStatus.RUNNING,
        TrialStatus.CREATED,
    ]
    store.commit_so_far()  # outside a block: nothing to do
