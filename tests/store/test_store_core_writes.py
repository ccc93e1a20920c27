"""The controller's hot-path calls (Core statements, ids remembered per transaction) inside
one `Store.transaction`: they keep every rule of the ORM calls, and what an earlier call of
the block read is never served stale afterwards. On every backend."""

from __future__ import annotations

import contextlib
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from tuner.space import Direction
from tuner.store import (
    MetricSummary,
    Observation,
    Store,
    StoreError,
    TrialExistsError,
    TrialNotFoundError,
    TrialStatus,
)

if TYPE_CHECKING:
    from store.conftest import Build

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _loss(trial: str, value: float, step: int = 0, at: datetime = T0) -> Observation:
    return Observation(trial, "loss", value, step, at)


def test_reads_after_core_writes_in_a_block_see_them(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    with store.transaction():
        # Loaded first, so the session holds these rows as ORM objects.
        assert store.get_trial("exp-1").status is TrialStatus.CREATED
        assert store.get_experiment("exp").best_trial_name is None

        store.update_trial("exp-1", status=TrialStatus.RUNNING, executor_ref={"pid": 7})
        running = store.get_trial("exp-1")
        assert (running.status, running.executor_ref) == (TrialStatus.RUNNING, {"pid": 7})
        assert running.started_at is not None

        store.add_observations("exp-1", [_loss("exp-1", 0.5)], checkpoint={"position": 3})
        store.finish_trial("exp-1", TrialStatus.SUCCEEDED, 0.5, exit_code=0)
        finished = store.get_trial("exp-1")
        assert (finished.status, finished.objective_value) == (TrialStatus.SUCCEEDED, 0.5)
        assert store.get_experiment("exp").best_trial_name == "exp-1"
        best = store.best_trial("exp")
        assert best is not None and best.name == "exp-1"


def test_a_checkpoint_written_in_a_block_is_cleared_by_a_later_delete(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    with store.transaction():
        store.delete_observations("exp-1")  # the session now holds the trial's row
        store.add_observations("exp-1", [_loss("exp-1", 1.0)], checkpoint={"position": 9})
        assert store.collector_checkpoint("exp-1") == {"position": 9}
        store.delete_observations("exp-1")

    assert store.collector_checkpoint("exp-1") is None
    assert store.get_observations("exp-1") == []


def test_finish_in_a_block_refuses_a_second_finish_and_unknown_trials(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    with store.transaction():
        record = store.finish_trial("exp-1", TrialStatus.FAILED, message="boom")
        assert (record.status, record.message) == (TrialStatus.FAILED, "boom")
        with pytest.raises(StoreError, match="already finished as Failed"):
            store.finish_trial("exp-1", TrialStatus.SUCCEEDED, 0.1)
        with pytest.raises(TrialNotFoundError, match="'nope'"):
            store.finish_trial("nope", TrialStatus.SUCCEEDED, 0.1)
        with pytest.raises(TrialNotFoundError, match="'nope'"):
            store.update_trial("nope", status=TrialStatus.RUNNING)
        with pytest.raises(TrialNotFoundError, match="'nope'"):
            store.observation_summary("nope", ["loss"])
        with pytest.raises(TrialNotFoundError, match="'nope'"):
            store.collector_checkpoint("nope")

    stored = store.get_trial("exp-1")
    assert (stored.status, stored.objective_value) == (TrialStatus.FAILED, None)
    assert store.best_trial("exp") is None


@pytest.mark.parametrize("in_block", [False, True])
def test_best_trial_ties_keep_the_earlier(store: Store, build: Build, in_block: bool) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2", "exp-3", "exp-4")

    def finish(name: str, value: float) -> str | None:
        if in_block:
            with store.transaction():
                store.get_trial(name)  # the session now holds its experiment's row
                store.finish_trial(name, TrialStatus.SUCCEEDED, value)
                return store.get_experiment("exp").best_trial_name
        store.finish_trial(name, TrialStatus.SUCCEEDED, value)
        return store.get_experiment("exp").best_trial_name

    assert finish("exp-1", 0.5) == "exp-1"
    assert finish("exp-2", 0.5) == "exp-1"  # a tie keeps the earlier
    assert finish("exp-3", math.nan) == "exp-1"  # NaN never wins
    assert finish("exp-4", 0.4) == "exp-4"


def test_finish_with_a_direction_ignores_the_spec(store: Store, build: Build) -> None:
    build.experiment(store, goal="minimize")
    build.trials(store, "exp", "exp-1", "exp-2")

    store.finish_trial("exp-1", TrialStatus.SUCCEEDED, 0.5, direction=Direction.MAXIMIZE)
    store.finish_trial("exp-2", TrialStatus.SUCCEEDED, 0.9, direction=Direction.MAXIMIZE)

    best = store.best_trial("exp")
    assert best is not None and best.name == "exp-2"


def test_trials_of_an_experiment_deleted_in_the_block_are_not_found(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    with store.transaction():
        store.add_observations("exp-1", [_loss("exp-1", 1.0)])  # remembers the trial's ids
        store.delete_experiment("exp")
        with pytest.raises(TrialNotFoundError):
            store.add_observations("exp-1", [_loss("exp-1", 2.0)])
        with pytest.raises(TrialNotFoundError):
            store.observation_summary("exp-1", ["loss"])


def test_observation_summary_edges(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    store.add_observations(
        "exp-1",
        [
            _loss("exp-1", 0.3, 0),
            _loss("exp-1", 0.1, 1),  # same timestamp, stored later: the latest
            Observation("exp-1", "acc", math.nan, 0, T0),  # never finite: left out
            Observation("exp-1", "acc", math.inf, 1, T0),
        ],
    )

    assert store.observation_summary("exp-1", ["loss", "acc"]) == {
        "loss": MetricSummary(0.1, 0.3, 0.1)
    }
    assert store.observation_summary("exp-1", []) == {}


@pytest.mark.parametrize("in_block", [False, True])
def test_one_metric_and_small_batches_give_what_the_list_statements_give(
    store: Store, build: Build, in_block: bool
) -> None:
    # The controller's usual calls (one objective; one new trial per free parallel slot) have
    # statements of their own: the same answers and refusals as the expanding-list forms.
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    store.add_observations(
        "exp-1",
        [_loss("exp-1", 0.5, 0), _loss("exp-1", 0.2, 1), Observation("exp-1", "acc", 0.9, 0, T0)],
    )
    with store.transaction() if in_block else contextlib.nullcontext():
        one = store.observation_summary("exp-1", ["loss"])
        listed = store.observation_summary("exp-1", ["loss", "acc"])
        assert store.observation_summary("exp-1", ["never"]) == {}
    assert one == {"loss": MetricSummary(0.2, 0.5, 0.2)} == {"loss": listed["loss"]}

    # Found by the look-up before the insert (not by the unique key's violation after it).
    with pytest.raises(TrialExistsError, match="'exp-1' already exists in the store"):
        store.create_trials("exp", [("exp-1", {})])
    for at in range(3):  # wherever the taken name is in a batch
        batch: list[tuple[str, dict[str, str]]] = [("exp-8", {}), ("exp-9", {})]
        batch.insert(at, ("exp-1", {}))
        with pytest.raises(TrialExistsError, match="'exp-1' already exists in the store"):
            store.create_trials("exp", batch)
    store.create_trials("exp", [("exp-2", {})])
    assert [t.name for t in store.list_trials("exp")] == ["exp-1", "exp-2"]


@pytest.mark.parametrize("batch", [1, 4, 17])
def test_the_taken_name_lookup_reads_the_name_index_not_the_table(
    store: Store, build: Build, batch: int
) -> None:
    # On a table never analyzed (a PostgreSQL server with autovacuum off), a lookup ending in
    # LIMIT 1 was planned as a scan of every trial stored: each creation slowed with the
    # experiment's size. The plans of the statements create_trials sends, on every backend.
    from sqlalchemy import event

    build.experiment(store)
    build.trials(store, "exp", *(f"exp-{i}" for i in range(300)))
    sent: list[tuple[str, object]] = []

    def record(conn: object, cursor: object, sql: str, args: object, *_: object) -> None:
        if "SELECT" in sql and "trials" in sql:
            sent.append((sql, args))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        build.trials(store, "exp", *(f"exp-new-{i}" for i in range(batch)))
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert sent
    dialect = store.engine.dialect.name
    explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    for sql, args in sent:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(explain + sql, args)  # type: ignore[arg-type]
            plan = [" ".join(str(c) for c in row) for row in rows]
        flat = " | ".join(plan)
        if dialect == "postgresql":
            assert "Seq Scan on trials" not in flat and "trials" in flat, flat
        elif dialect == "sqlite":
            assert "SCAN trials" not in flat and "SEARCH trials" in flat, flat
        else:  # MySQL / MariaDB: no full scan (type ALL) of trials
            assert not any("trials" in row and " ALL " in f" {row} " for row in plan), flat
