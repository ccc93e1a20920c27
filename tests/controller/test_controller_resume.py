"""What a new controller finds after its predecessor died, and what it does with it: adopt
running trials, launch stored-but-unlaunched rows, fail and replace lost ones, take over a
dead controller's lease."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuner.controller import Controller, ControllerError, own_owner
from tuner.executors import LocalExecutor
from tuner.executors import _supervisor as sv
from tuner.spec import render_trial
from tuner.store import ExperimentStatus, Observation, TrialStatus


def start_experiment(bench, experiment) -> None:
    """The predecessor's first write: the experiment row, as `Controller.run` creates it."""
    bench.store.create_experiment(experiment.metadata.name, "default", experiment.to_dict()["spec"])


def launch_like_a_controller(bench, experiment, name: str, x: int):
    """Store a trial row and launch it the way the controller does, with its reference."""
    bench.store.create_trials(experiment.metadata.name, [(name, {"x": str(x)})])
    rendered = render_trial(experiment, name, {"x": x})
    handle = bench.executor.launch(name, rendered.argv, rendered.env, None, None)
    bench.store.update_trial(
        name, status=TrialStatus.RUNNING, executor_kind="local", executor_ref=handle.reference
    )
    return handle


def successor(bench, experiment) -> Controller:
    """A controller in a new process: a fresh executor that launched nothing itself."""
    fresh = LocalExecutor(bench.root / "runs", default_working_dir=bench.root)
    return Controller(bench.store, experiment, bench.client, fresh, poll_interval=0.05)


def trial_dirs(bench) -> list[str]:
    return sorted(p.name for p in (bench.root / "runs").iterdir())


def test_running_trial_is_adopted_not_relaunched_and_observed_once(bench) -> None:
    experiment = bench.experiment(max_trials=2, parallel=2, sleep=0.3)
    start_experiment(bench, experiment)
    launch_like_a_controller(bench, experiment, "exp-adopted0", 7)
    # Stored by the predecessor before it died; the log holds it too.
    bench.store.add_observations("exp-adopted0", [Observation("exp-adopted0", "loss", 8.0, 0)])

    result = successor(bench, experiment).run()

    assert result.succeeded and result.counts.succeeded == 2 and len(result.trials) == 2
    observed = bench.store.get_observations("exp-adopted0")
    assert [(o.value, o.step) for o in observed] == [(8.0, 0), (7.0, 1)]
    assert bench.store.get_trial("exp-adopted0").objective_value == 7.0
    assert trial_dirs(bench) == sorted(t.name for t in result.trials)  # one launch each


def test_trial_launched_but_not_recorded_is_found_by_name(bench) -> None:
    experiment = bench.experiment(max_trials=1, parallel=1, sleep=0.2)
    start_experiment(bench, experiment)
    bench.store.create_trials("exp", [("exp-unrecord", {"x": "3"})])
    rendered = render_trial(experiment, "exp-unrecord", {"x": 3})
    bench.executor.launch("exp-unrecord", rendered.argv, rendered.env, None, None)
    # The predecessor died before update_trial: the row is Created with no reference.

    result = successor(bench, experiment).run()

    (trial,) = result.trials
    assert trial.status is TrialStatus.SUCCEEDED and trial.objective_value == 3.0
    assert trial_dirs(bench) == ["exp-unrecord"]


def test_created_rows_never_launched_run_with_their_stored_parameters(bench) -> None:
    experiment = bench.experiment(max_trials=2, parallel=2)
    start_experiment(bench, experiment)
    bench.store.create_trials("exp", [("exp-pending1", {"x": "11"}), ("exp-pending2", {"x": "12"})])

    result = successor(bench, experiment).run()

    assert {t.name: t.objective_value for t in result.trials} == {
        "exp-pending1": 11.0,
        "exp-pending2": 12.0,
    }
    assert result.experiment.reason == "ExperimentMaxTrialsReached"


@pytest.mark.parametrize("predecessor", ["current", "protocol-1"])
def test_trial_started_but_never_reaching_its_command_is_launched_again(
    bench, predecessor: str
) -> None:
    experiment = bench.experiment(max_trials=1, parallel=1)
    start_experiment(bench, experiment)
    bench.store.create_trials("exp", [("exp-halfway", {"x": "5"})])
    # The predecessor died inside launch: the trial directory exists with the files the
    # executor creates first (an older version's had a lock file), but no supervisor ran.
    trial_dir = bench.root / "runs" / "exp-halfway"
    trial_dir.mkdir(parents=True)
    (trial_dir / sv.LOG_FILE).touch()
    if predecessor == "protocol-1":
        (trial_dir / sv.LEGACY_LOCK_FILE).touch()

    result = successor(bench, experiment).run()

    (trial,) = result.trials
    assert trial.status is TrialStatus.SUCCEEDED and trial.objective_value == 5.0


def test_lost_trial_is_failed_and_its_slot_refilled(bench) -> None:
    experiment = bench.experiment(max_trials=2, parallel=1, max_failed=2)
    start_experiment(bench, experiment)
    bench.store.create_trials("exp", [("exp-lost0001", {"x": "1"})])
    gone = {
        "executor": "local",
        "version": 1,
        "trial_name": "exp-lost0001",
        "trial_dir": str(bench.root / "elsewhere" / "exp-lost0001"),
    }
    bench.store.update_trial(
        "exp-lost0001", status=TrialStatus.RUNNING, executor_kind="local", executor_ref=gone
    )

    result = successor(bench, experiment).run()

    lost = bench.store.get_trial("exp-lost0001")
    assert lost.status is TrialStatus.FAILED and lost.message.startswith("TrialLost")
    assert result.counts.failed == 1 and result.counts.succeeded == 1
    assert result.experiment.reason == "ExperimentMaxTrialsReached"


def test_lease_of_a_dead_controller_is_taken_over(bench) -> None:
    experiment = bench.experiment(max_trials=1, parallel=1)
    start_experiment(bench, experiment)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host_part = own_owner().rsplit("/", 2)[0]
    bench.store.acquire_lease("exp", f"{host_part}/{dead.stdout.strip()}/1", 600)

    result = successor(bench, experiment).run()

    assert result.succeeded
    assert bench.store.get_experiment("exp").lease_owner is None  # released at the end


def test_lease_of_a_live_controller_stops_the_run(bench) -> None:
    experiment = bench.experiment(max_trials=1, parallel=1)
    start_experiment(bench, experiment)
    bench.store.acquire_lease("exp", "tuner/another-host/1/1", 600)

    with pytest.raises(ControllerError, match="another controller"):
        successor(bench, experiment).run()
    assert bench.store.get_experiment("exp").status is ExperimentStatus.CREATED
    assert bench.store.list_trials("exp") == []


def test_owner_strings_name_a_process_by_pid_and_start_time() -> None:
    from tuner.controller import owner_is_dead

    mine = own_owner()
    host, pid, stamp = mine.split("/")[1:]
    assert not owner_is_dead(mine)
    # The same pid with another start time is a reused pid: its owner is gone.
    assert owner_is_dead(f"tuner/{host}/{pid}/{int(stamp) - 100}")
    # Another host's owner is never judged from here.
    assert not owner_is_dead(f"tuner/another-host/{pid}/{int(stamp) - 100}")
