"""Trials, the best trial and observations, on every configured backend."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from tuner.space import Direction
from tuner.store import (
    ExperimentNotFoundError,
    MetricSummary,
    Observation,
    Store,
    StoreError,
    TrialExistsError,
    TrialNotFoundError,
    TrialStatus,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

if TYPE_CHECKING:
    from store.conftest import Build


def _finish(store: Store, name: str, value: float, status: TrialStatus = TrialStatus.SUCCEEDED):
    return store.finish_trial(name, status, value, {"loss": MetricSummary(value, value, value)}, 0)


def test_created_trials_read_back_in_order_with_wire_parameters(store: Store, build: Build) -> None:
    build.experiment(store)
    created = store.create_trials(
        "exp", [("exp-b", {"lr": "0.01", "opt": "sgd"}), ("exp-a", {"lr": "1e-3", "opt": "adam"})]
    )

    assert [t.name for t in created] == ["exp-b", "exp-a"]
    got = store.get_trial("exp-a")
    assert got.parameters == {"lr": "1e-3", "opt": "adam"}
    assert (got.experiment_name, got.status) == ("exp", TrialStatus.CREATED)
    assert got.created_at.tzinfo is timezone.utc
    assert [t.name for t in store.list_trials("exp")] == ["exp-b", "exp-a"]


def test_trial_labels_from_the_suggestion_service_read_back(store: Store, build: Build) -> None:
    build.experiment(store)
    parent = "pbt.suggestion.katib.kubeflow.org/parent"
    store.create_trials(
        "exp",
        [("exp-a", {"lr": "0.1"}), ("exp-b", {"lr": "0.2"})],
        labels={"exp-b": {parent: "exp-a", "pbt.suggestion.katib.kubeflow.org/generation": "1"}},
    )

    assert store.get_trial("exp-a").labels == {}
    assert store.list_trials("exp")[1].labels[parent] == "exp-a"


def test_create_trials_is_all_or_nothing_on_an_existing_name(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    with pytest.raises(TrialExistsError, match="'exp-1'"):
        store.create_trials("exp", [("exp-2", {}), ("exp-1", {})])

    assert [t.name for t in store.list_trials("exp")] == ["exp-1"]


def test_create_trials_finds_a_taken_name_beyond_the_first_500(store: Store, build: Build) -> None:
    # The first 500 names are checked with the experiment's look-up, the rest on their own.
    build.experiment(store)
    build.trials(store, "exp", "exp-taken")
    batch: list[tuple[str, dict[str, str]]] = [(f"exp-{i}", {}) for i in range(700)]
    batch.append(("exp-taken", {}))

    with pytest.raises(TrialExistsError, match="'exp-taken'"):
        store.create_trials("exp", batch)

    assert [t.name for t in store.list_trials("exp")] == ["exp-taken"]
    assert len(store.create_trials("exp", batch[:-1])) == 700


def test_create_trials_refuses_a_name_repeated_in_the_batch(store: Store, build: Build) -> None:
    build.experiment(store)
    with pytest.raises(TrialExistsError, match="repeated in the batch"):
        store.create_trials("exp", [("exp-1", {}), ("exp-2", {}), ("exp-1", {})])
    assert store.list_trials("exp") == []


def test_create_trials_needs_the_experiment_and_string_parameters(
    store: Store, build: Build
) -> None:
    with pytest.raises(ExperimentNotFoundError):
        store.create_trials("nope", [("nope-1", {})])
    build.experiment(store)
    with pytest.raises(TypeError, match=r"parameters\['lr'\]"):
        store.create_trials("exp", [("exp-1", {"lr": 0.1})])  # type: ignore[dict-item]


def test_list_and_count_trials_by_status(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2", "exp-3")
    store.update_trial("exp-2", status=TrialStatus.RUNNING)
    _finish(store, "exp-3", 0.1, TrialStatus.FAILED)

    running = store.list_trials("exp", [TrialStatus.RUNNING, TrialStatus.FAILED])
    assert [t.name for t in running] == ["exp-2", "exp-3"]
    counts = store.count_trials("exp")
    assert counts[TrialStatus.CREATED] == 1
    assert counts[TrialStatus.RUNNING] == 1
    assert counts[TrialStatus.FAILED] == 1
    assert counts[TrialStatus.SUCCEEDED] == 0
    assert sum(counts.values()) == 3


def test_count_trials_by_experiment_equals_count_trials_of_each(store: Store, build: Build) -> None:
    for name in ("a", "b", "empty"):
        build.experiment(store, name)
    build.trials(store, "a", "a-1", "a-2", "a-3")
    build.trials(store, "b", "b-1")
    store.update_trial("a-2", status=TrialStatus.RUNNING)
    _finish(store, "a-3", 0.5)
    _finish(store, "b-1", 0.1, TrialStatus.FAILED)

    counts = store.count_trials_by_experiment(["a", "b", "empty", "missing", "a"])

    assert set(counts) == {"a", "b", "empty"}
    for name in ("a", "b", "empty"):
        assert counts[name] == store.count_trials(name)
    assert counts["a"][TrialStatus.RUNNING] == 1
    assert counts["b"][TrialStatus.FAILED] == 1
    assert sum(counts["empty"].values()) == 0
    assert store.count_trials_by_experiment([]) == {}


def test_update_trial_records_executor_reference_and_start(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    updated = store.update_trial(
        "exp-1",
        status=TrialStatus.RUNNING,
        executor_kind="local",
        executor_ref={"pid": 4242, "pgid": 4242, "start_time": 123.5},
        log_path="/tmp/exp-1.log",
    )

    assert updated.started_at is not None
    got = store.get_trial("exp-1")
    assert got.status is TrialStatus.RUNNING
    assert (got.executor_kind, got.executor_ref) == (
        "local",
        {"pid": 4242, "pgid": 4242, "start_time": 123.5},
    )
    assert got.log_path == "/tmp/exp-1.log"
    assert got.started_at == updated.started_at


def test_update_trial_refuses_finished_states(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    with pytest.raises(ValueError, match="finish_trial"):
        store.update_trial("exp-1", status=TrialStatus.SUCCEEDED)
    with pytest.raises(TrialNotFoundError, match="'nope'"):
        store.update_trial("nope", message="x")


def test_finish_trial_stores_outcome_once(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")

    store.finish_trial(
        "exp-1",
        TrialStatus.SUCCEEDED,
        0.25,
        {"loss": MetricSummary(0.25, 0.9, 0.3), "acc": MetricSummary(0.5, 0.8, 0.8)},
        exit_code=0,
        message="done",
    )

    got = store.get_trial("exp-1")
    assert (got.status, got.objective_value, got.exit_code, got.message) == (
        TrialStatus.SUCCEEDED,
        0.25,
        0,
        "done",
    )
    assert got.metrics_summary["acc"] == MetricSummary(0.5, 0.8, 0.8)
    assert got.completed_at is not None
    with pytest.raises(StoreError, match="already finished"):
        store.finish_trial("exp-1", TrialStatus.FAILED)


@pytest.mark.parametrize(("goal", "best"), [("minimize", "exp-2"), ("maximize", "exp-1")])
def test_best_trial_follows_the_objective_type_in_the_spec(
    store: Store, goal: str, best: str, build: Build
) -> None:
    build.experiment(store, goal=goal)
    build.trials(store, "exp", "exp-1", "exp-2", "exp-3")
    assert store.best_trial("exp") is None

    for name, value in (("exp-1", 0.9), ("exp-2", 0.1), ("exp-3", 0.5)):
        _finish(store, name, value)

    best_trial = store.best_trial("exp")
    assert best_trial is not None and best_trial.name == best
    assert store.get_experiment("exp").best_trial_name == best


def test_best_trial_ignores_failed_nan_and_ties(store: Store, build: Build) -> None:
    build.experiment(store, goal="minimize")
    build.trials(store, "exp", "exp-1", "exp-2", "exp-3", "exp-4", "exp-5")

    _finish(store, "exp-1", 0.5)
    _finish(store, "exp-2", 0.1, TrialStatus.FAILED)  # partial result, never best
    _finish(store, "exp-3", math.nan)
    _finish(store, "exp-4", 0.5)  # a tie keeps the earlier trial
    assert store.get_experiment("exp").best_trial_name == "exp-1"

    _finish(store, "exp-5", 0.2, TrialStatus.EARLY_STOPPED)
    assert store.get_experiment("exp").best_trial_name == "exp-5"


def test_explicit_direction_overrides_the_spec(store: Store, build: Build) -> None:
    build.experiment(store, goal="minimize")
    build.trials(store, "exp", "exp-1", "exp-2")
    store.finish_trial("exp-1", TrialStatus.SUCCEEDED, 1.0, direction=Direction.MAXIMIZE)
    store.finish_trial("exp-2", TrialStatus.SUCCEEDED, 2.0, direction=Direction.MAXIMIZE)
    assert store.get_experiment("exp").best_trial_name == "exp-2"


def test_non_finite_values_round_trip(store: Store, build: Build) -> None:
    build.experiment(store, goal="maximize")
    build.trials(store, "exp", "exp-1")
    summary = {"loss": MetricSummary(-math.inf, math.nan, math.inf)}
    store.finish_trial("exp-1", TrialStatus.SUCCEEDED, math.inf, summary)
    store.add_observations(
        "exp-1",
        [
            Observation("exp-1", "loss", v, i, T0)
            for i, v in enumerate([math.nan, -math.inf, math.inf])
        ],
    )

    got = store.get_trial("exp-1")
    assert got.objective_value == math.inf
    loss = got.metrics_summary["loss"]
    assert (loss.min, loss.latest) == (-math.inf, math.inf) and math.isnan(loss.max)
    values = [o.value for o in store.get_observations("exp-1")]
    assert math.isnan(values[0]) and values[1:] == [-math.inf, math.inf]
    assert store.get_experiment("exp").best_trial_name == "exp-1"


def test_observations_come_back_ordered_and_filtered(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    tick = timedelta(microseconds=1)  # MySQL drops fractions unless asked for them
    store.add_observations(
        "exp-1",
        [
            Observation("exp-1", "loss", 0.3, 3, T0 + 2 * tick),
            Observation("exp-1", "loss", 0.9, 1, T0),
            Observation("exp-1", "acc", 0.6, 2, T0 + tick),
            Observation("exp-1", "loss", 0.5, 2, T0 + tick),
        ],
    )

    assert [(o.metric_name, o.step) for o in store.get_observations("exp-1")] == [
        ("loss", 1),
        ("acc", 2),
        ("loss", 2),
        ("loss", 3),
    ]
    loss = store.get_observations("exp-1", "loss")
    assert [o.value for o in loss] == [0.9, 0.5, 0.3]
    assert [o.timestamp for o in loss] == [T0, T0 + tick, T0 + 2 * tick]
    window = store.get_observations("exp-1", "loss", start=T0 + tick, end=T0 + 2 * tick)
    assert [o.step for o in window] == [2, 3]  # both ends inclusive


def test_observation_timestamps_keep_the_instant_in_utc(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    plus_two = timezone(timedelta(hours=2))
    store.add_observations(
        "exp-1", [Observation("exp-1", "loss", 1.0, None, T0.astimezone(plus_two))]
    )

    (got,) = store.get_observations("exp-1")
    assert got.timestamp == T0 and got.timestamp.tzinfo is timezone.utc and got.step is None


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Observation("exp-1", "loss", 1.0, None, datetime(2024, 1, 1))


def test_delete_observations_only_of_that_trial(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")
    store.add_observations("exp-1", [Observation("exp-1", "loss", v) for v in (1.0, 2.0)])
    store.add_observations("exp-2", [Observation("exp-2", "loss", 3.0)])

    assert store.delete_observations("exp-1") == 2
    assert store.get_observations("exp-1") == []
    assert [o.value for o in store.get_observations("exp-2")] == [3.0]


def test_add_observations_checks_the_trial(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    with pytest.raises(ValueError, match=r"observations\[0\].trial_name"):
        store.add_observations("exp-1", [Observation("exp-2", "loss", 1.0)])
    with pytest.raises(TrialNotFoundError):
        store.add_observations("nope", [Observation("nope", "loss", 1.0)])
    assert store.get_observations("exp-1") == []


def test_collector_checkpoint_is_stored_with_its_batch_and_cleared_on_delete(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    assert store.collector_checkpoint("exp-1") is None
    checkpoint = {"position": 120, "steps": {"loss": 2}}
    batch = [Observation("exp-1", "loss", v, i) for i, v in enumerate((1.0, 2.0))]
    store.add_observations("exp-1", batch, checkpoint=checkpoint)
    assert store.collector_checkpoint("exp-1") == checkpoint

    # A batch refused (an observation of another trial) leaves the checkpoint as it was.
    with pytest.raises(ValueError):
        store.add_observations(
            "exp-1", [Observation("exp-2", "loss", 3.0)], checkpoint={"position": 999}
        )
    assert store.collector_checkpoint("exp-1") == checkpoint

    store.delete_observations("exp-1")
    assert store.collector_checkpoint("exp-1") is None


def test_observation_summary_is_min_max_latest_of_finite_values(store: Store, build: Build) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1")
    tick = timedelta(microseconds=1)
    store.add_observations(
        "exp-1",
        [
            Observation("exp-1", "loss", 0.5, 0, T0 + 2 * tick),  # newest
            Observation("exp-1", "loss", 0.2, 1, T0),
            Observation("exp-1", "loss", 0.9, 2, T0 + tick),
            Observation("exp-1", "loss", math.inf, 3, T0 + 3 * tick),  # not finite: left out
            Observation("exp-1", "acc", 0.7, 0, T0),
            Observation("exp-1", "other", 1.0, 0, T0),
        ],
    )

    summary = store.observation_summary("exp-1", ["loss", "acc", "never"])
    assert summary == {"loss": MetricSummary(0.2, 0.9, 0.5), "acc": MetricSummary(0.7, 0.7, 0.7)}
