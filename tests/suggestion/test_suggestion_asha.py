"""asha: the promotion rule on hand-made asynchronous curves, its settings, and the
EarlyStopping service over real gRPC reading every trial's steps from tuner's DBManager
(a real one, over a SQLite store)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest

from suggestion.algorithms import SettingsError
from suggestion.earlystopping import Asha, Report
from tuner.dbmanager import serve
from tuner.protos import api_pb2
from tuner.space import Direction
from tuner.store import Observation, Store

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def curve(*points: tuple[int, float, int]) -> list[Report]:
    """Reports from (step, value, seconds after T0)."""
    return [Report(step, value, T0 + timedelta(seconds=t)) for step, value, t in points]


def settings(**given: str) -> Any:
    return Asha.parse(list(given.items()))


def test_rungs_are_geometric_from_min_resource_and_stop_below_max_resource() -> None:
    assert Asha.rung_steps(settings(min_resource="2", reduction_factor="3"), 100) == [2, 6, 18, 54]
    capped = settings(min_resource="2", reduction_factor="3", max_resource="54")
    assert Asha.rung_steps(capped, 100) == [2, 6, 18]


def test_a_trial_is_judged_against_those_that_reached_the_rung_before_it() -> None:
    # reduction_factor 2: among n arrivals, the best max(1, n // 2) pass.
    curves = {
        "first": curve((1, 5.0, 0)),  # alone at rung 1: passes, and is never demoted
        "second": curve((1, 1.0, 1)),  # best of 2: passes
        "third": curve((1, 3.0, 2)),  # third of 3, keep 1: stopped
        "fourth": curve((1, 2.0, 3)),  # second of 4, keep 2: passes
    }

    verdicts = Asha.verdicts(settings(reduction_factor="2"), Direction.MINIMIZE, curves)

    assert set(verdicts) == {"third"}
    assert "its value 3.0 at step 1 (rung 1)" in verdicts["third"]
    assert "best 1 of the 3 trials" in verdicts["third"]


def test_the_value_at_a_rung_is_the_first_report_at_or_beyond_its_step() -> None:
    # "late" skipped step 1: its step-3 report (first >= 1) is its rung-1 value, and its
    # step-3 report is also its first one at rung 2 (step 2), where it arrives last.
    curves = {
        "a": curve((0, 9.0, 0), (1, 1.0, 1), (2, 1.0, 2)),
        "b": curve((1, 2.0, 3), (2, 2.0, 4)),
        "late": curve((0, 9.0, 0), (3, 1.5, 5)),
    }

    verdicts = Asha.verdicts(settings(reduction_factor="2"), Direction.MINIMIZE, curves)

    # rung 1: a 1.0, b 2.0 (stopped: second of 2), late 1.5 (second of 3, keep 1: stopped)
    assert set(verdicts) == {"b", "late"}
    assert "at step 3 (rung 1)" in verdicts["late"]


def test_a_trial_stopped_at_a_rung_does_not_compete_above_it() -> None:
    # "loser" fails rung 1 but reported on (the controller had not stopped it yet); its
    # good step-2 value must not push "next" out at rung 2.
    curves = {
        "good": curve((1, 1.0, 0), (2, 1.0, 1)),
        "loser": curve((1, 9.0, 2), (2, 0.1, 3)),
        "next": curve((1, 0.5, 4), (2, 0.9, 5)),
    }

    verdicts = Asha.verdicts(settings(reduction_factor="2"), Direction.MINIMIZE, curves)

    assert set(verdicts) == {"loser"}


def test_maximize_keeps_the_highest_and_ties_pass() -> None:
    curves = {
        "a": curve((1, 0.9, 0)),
        "b": curve((1, 0.9, 1)),  # tie with the best: passes
        "c": curve((1, 0.1, 2)),
    }

    verdicts = Asha.verdicts(settings(reduction_factor="2"), Direction.MAXIMIZE, curves)

    assert set(verdicts) == {"c"}


def test_stops_names_only_running_trials() -> None:
    curves = {"a": curve((1, 1.0, 0)), "b": curve((1, 2.0, 1)), "c": curve((1, 3.0, 2))}

    stops = Asha.stops(settings(reduction_factor="2"), Direction.MINIMIZE, curves, {"c"})

    assert set(stops) == {"c"}  # "b" failed too, but it has ended


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"reduction_factor": "1"},
            "algorithm setting 'reduction_factor': '1' is not an integer >= 2",
        ),
        ({"min_resource": "0"}, "'min_resource': '0' is not an integer >= 1"),
        ({"max_resource": "ten"}, "'max_resource': 'ten' is not an integer >= 2"),
        (
            {"min_resource": "9", "max_resource": "9"},
            "'max_resource': '9' is not greater than min_resource 9",
        ),
        ({"grace_period": "1"}, "'grace_period': '1' is not a setting of asha"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(given: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**given)
    assert message in str(caught.value)


# -- over gRPC ------------------------------------------------------------------------------


@pytest.fixture
def dbmanager(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        store.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
        store.create_trials("exp", [(n, {"lr": "0.1"}) for n in ("t1", "t2", "t3", "t4")])
        with serve(store) as address:
            yield store, address


def observe(store: Store, trial: str, points: Sequence[tuple[int, float]], start: int) -> None:
    store.add_observations(
        trial,
        [
            Observation(trial, "loss", value, step, T0 + timedelta(seconds=start + i))
            for i, (step, value) in enumerate(points)
        ],
    )


def rules(
    kit: Any, early_stopping: Any, address: str, conditions: dict[str, int]
) -> tuple[api_pb2.GetEarlyStoppingRulesReply, dict[str, str]]:
    experiment = kit.experiment(
        "random",
        [kit.param("lr", "double", min="0.01", max="0.2")],
        goal="minimize",
        metric="loss",
        early_stopping="asha",
        early_stopping_settings={"min_resource": "10", "reduction_factor": "2"},
    )
    request = api_pb2.GetEarlyStoppingRulesRequest(
        experiment=experiment,
        trials=[kit.trial(n, {"lr": "0.1"}, condition=c) for n, c in conditions.items()],
        db_manager_address=address,
    )
    reply, call = early_stopping.GetEarlyStoppingRules.with_call(request, timeout=30)
    return reply, dict(call.trailing_metadata() or ())


def test_the_service_names_the_running_trials_to_stop_by_step(
    kit: Any, early_stopping: Any, dbmanager: tuple[Store, str]
) -> None:
    store, address = dbmanager
    running, done = api_pb2.TrialStatus.RUNNING, api_pb2.TrialStatus.SUCCEEDED
    # Steps as report_metrics(step=...) gives them: rung 1 is step 10, rung 2 step 20.
    observe(store, "t1", [(10, 1.0), (20, 1.0), (30, 1.0)], start=0)
    observe(store, "t2", [(10, 0.5), (20, 0.5)], start=10)
    # Two reports only, but at step 20: a count of reports would not reach rung 2.
    observe(store, "t3", [(10, 0.8), (20, 0.9)], start=20)
    observe(store, "t4", [(5, 0.1)], start=30)  # below the first rung: not judged yet

    reply, metadata = rules(
        kit, early_stopping, address, {"t1": done, "t2": running, "t3": running, "t4": running}
    )

    assert list(reply.early_stopping_rules) == []
    assert metadata["tuner-early-stopping-live"] == "true"
    stops = json.loads(metadata["tuner-stop-trials"])
    # rung 10: t1 1.0, t2 0.5, t3 0.8 (second of 3, keep 1): stopped at step 10
    assert set(stops) == {"t3"}
    assert "at step 10 (rung 10)" in stops["t3"]


def test_without_a_dbmanager_address_asha_is_refused(kit: Any, early_stopping: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        rules(kit, early_stopping, "", {"t1": api_pb2.TrialStatus.RUNNING})

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "db_manager_address" in (caught.value.details() or "")
