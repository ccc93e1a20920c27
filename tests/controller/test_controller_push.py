"""Push and None collectors end to end: `tuner run` in a subprocess serves a DBManager, real
trial processes call `tuner.report_metrics`, and the objective comes from what they pushed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import support
import yaml
from support import HANG_GUARD_SECONDS, wait_until

from tuner.store import Store, TrialRecord, TrialStatus

# Reports loss = x + 1/(step+1) for steps 0..3 unless x is 0; prints a decoy on stdout that
# a Push experiment must not read; records the env it got in <trial name>.env.
PUSHER = r"""
import os, sys, tuner
x = int(sys.argv[1])
with open(os.environ["KATIB_TRIAL_NAME"] + ".env", "w") as f:
    f.write(os.environ["TUNER_DBMANAGER_ADDRESS"])
print("loss=999", flush=True)
if x:
    for step in range(4):
        tuner.report_metrics({"loss": x + 1 / (step + 1)}, step=step)
"""


def experiment(name: str, collector: str, xs: list[int]) -> dict[str, Any]:
    """Grid over int x in ``xs`` (one trial each, one after the other), running PUSHER; the
    template reads KATIB_TRIAL_NAME from the trial's label, as Katib's SDK writes it."""
    return support.experiment_document(
        name,
        command=["python3", "pusher.py", "${trialParameters.x}"],
        parameters=[support.discrete_parameter("x", xs)],
        container={
            "env": [
                {
                    "name": "KATIB_TRIAL_NAME",
                    "valueFrom": {
                        "fieldRef": {"fieldPath": "metadata.labels['katib.kubeflow.org/trial']"}
                    },
                }
            ]
        },
        algorithm="grid",
        parallel=1,
        max_trials=len(xs),
        metricsCollectorSpec={"collector": {"kind": collector}},
    )


def run(tmp_path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return support.tuner_run(tmp_path, document, {"pusher.py": PUSHER})


def trials(tmp_path: Path, name: str) -> dict[int, TrialRecord]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        return {int(t.parameters["x"]): t for t in store.list_trials(name)}


def observations(tmp_path: Path, trial: str) -> list[tuple[str, int | None, float]]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        return [(o.metric_name, o.step, o.value) for o in store.get_observations(trial)]


def test_pushed_metrics_are_stored_with_their_steps_and_make_the_objective(
    tmp_path: Path,
) -> None:
    done = run(tmp_path, experiment("push", "Push", [1, 2]))

    assert done.returncode == 0, done.stderr
    by_x = trials(tmp_path, "push")
    for x, trial in by_x.items():
        assert trial.status is TrialStatus.SUCCEEDED
        assert observations(tmp_path, trial.name) == [
            ("loss", step, x + 1 / (step + 1)) for step in range(4)
        ]
        assert trial.objective_value == x + 0.25  # minimize: min over the reports
        assert trial.metrics_summary["loss"].latest == x + 0.25
        address = (tmp_path / f"{trial.name}.env").read_text()
        assert address.startswith("127.0.0.1:")


def test_a_push_trial_that_exits_0_without_reporting_is_metrics_unavailable(
    tmp_path: Path,
) -> None:
    done = run(tmp_path, experiment("push-silent", "Push", [0, 1]))

    by_x = trials(tmp_path, "push-silent")
    assert by_x[0].status is TrialStatus.METRICS_UNAVAILABLE
    assert "never reported the objective metric 'loss'" in (by_x[0].message or "")
    assert observations(tmp_path, by_x[0].name) == []
    assert by_x[1].status is TrialStatus.SUCCEEDED
    assert done.returncode == 0, done.stderr


def test_none_collector_reads_no_output_but_keeps_what_trials_push(tmp_path: Path) -> None:
    done = run(tmp_path, experiment("none", "None", [0, 3]))

    assert done.returncode == 0, done.stderr
    by_x = trials(tmp_path, "none")
    assert by_x[0].status is TrialStatus.METRICS_UNAVAILABLE  # printed loss=999 only
    assert by_x[3].status is TrialStatus.SUCCEEDED
    assert by_x[3].objective_value == 3.25
    assert [v for _, _, v in observations(tmp_path, by_x[3].name)] == [4.0, 3.5, 3 + 1 / 3, 3.25]


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the run's database; [] until its tables exist."""
    path = tmp_path / "tuner.db"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return list(conn.execute(sql))
    except sqlite3.OperationalError:
        return []


def until(condition: Callable[[], bool], controller: subprocess.Popen[Any]) -> None:
    wait_until(condition, "the pushed metrics", process=controller)


# Pushes steps 0 and 1, waits for the file "gate", then pushes steps 2 and 3.
GATED_PUSHER = r"""
import os, time, tuner
for step in range(4):
    if step == 2:
        while not os.path.exists("gate"):
            time.sleep(0.02)
    tuner.report_metrics({"loss": 10.0 - step}, step=step)
"""


def test_after_a_controller_crash_pushed_metrics_are_kept_and_reporting_goes_on(
    tmp_path: Path,
) -> None:
    document = experiment("push-crash", "Push", [1])
    document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0][
        "command"
    ] = ["python3", "gated.py", "${trialParameters.x}"]
    (tmp_path / "gated.py").write_text(GATED_PUSHER)
    (tmp_path / "pusher.py").write_text(PUSHER)
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(document))
    command = [sys.executable, "-m", "tuner.cli", "run", "exp.yaml", "--db", "sqlite:///tuner.db"]
    command += ["--poll-interval", "0.05", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KATIB_", "TUNER_"))}

    first = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    try:
        until(lambda: query(tmp_path, "SELECT count(*) FROM observations") == [(2,)], first)
        ((crashed_owner,),) = query(tmp_path, "SELECT lease_owner FROM experiments")
    finally:
        first.kill()  # SIGKILL: no cleanup; the trial lives on in its own session
        first.wait()

    second = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Once the new controller has taken over, the trial may go on reporting.
        until(
            lambda: query(tmp_path, "SELECT lease_owner FROM experiments")[0][0] != crashed_owner,
            second,
        )
        (tmp_path / "gate").touch()
        _, stderr = second.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        second.kill()

    assert second.returncode == 0, stderr
    (trial,) = trials(tmp_path, "push-crash").values()
    assert trial.status is TrialStatus.SUCCEEDED
    assert observations(tmp_path, trial.name) == [("loss", s, 10.0 - s) for s in range(4)]
