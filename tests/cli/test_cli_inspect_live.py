"""`tuner logs -f` and `tuner delete experiment` against trials that change while the command
runs: a real SQLite store updated from the test, real CLI subprocesses, a real local trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import support

from tuner.executors import ExitReason, LocalExecutor
from tuner.spec import Experiment
from tuner.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    Observation,
    Store,
    TrialNotFoundError,
    TrialStatus,
)

ROOT = Path(__file__).resolve().parents[2]
GUARD_SECONDS = 30  # only guards against hangs; nothing asserts how long anything took


def spec() -> dict[str, object]:
    document = support.experiment_document(
        "live",
        command=["python", "-c", "pass", "${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        image="python",
        namespace="default",
    )
    return Experiment.model_validate(document).to_dict()["spec"]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """Experiment `live` (Running) with trial `live-1` (Created) in a fresh SQLite file."""
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    with Store.open(url) as store:
        store.create_experiment("live", "default", spec())
        store.set_experiment_status("live", ExperimentStatus.RUNNING, "ExperimentRunning")
        store.create_trials("live", [("live-1", {"x": "0.5"})])
        yield url, store


@pytest.fixture
def start() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `tuner` processes; any still running when the test ends (it failed on a
    timeout) is killed, not left behind."""
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def tuner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        cwd=ROOT,
    )


def read_line(stream: IO[bytes] | None) -> bytes:
    assert stream is not None
    return stream.readline()  # the test's timeout guards a line that never comes


@pytest.mark.timeout(GUARD_SECONDS)
def test_logs_follow_waits_for_the_trial_and_stops_when_it_finishes(
    db: tuple[str, Store], tmp_path: Path, start: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url, store = db
    log = tmp_path / "live-1.log"
    follower = start("logs", "live-1", "-f", "--poll-interval", "0.05", "--db", url)
    # The trial has not started: the follower waits for its log to be recorded.
    log.write_bytes(b"line 1\n")
    store.update_trial("live-1", status=TrialStatus.RUNNING, log_path=str(log))
    assert read_line(follower.stdout) == b"line 1\n"
    with log.open("ab") as f:
        f.write(b"line 2\n")
    assert read_line(follower.stdout) == b"line 2\n"
    with log.open("ab") as f:
        f.write(b"line 3 written just before the end\n")
    store.finish_trial("live-1", TrialStatus.SUCCEEDED, 0.1, exit_code=0)
    rest, errors = follower.communicate(timeout=GUARD_SECONDS)
    assert follower.returncode == 0, errors
    assert rest == b"line 3 written just before the end\n"


@pytest.mark.timeout(GUARD_SECONDS)
def test_logs_follow_ctrl_c_exits_130_quietly(
    db: tuple[str, Store], tmp_path: Path, start: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url, store = db
    log = tmp_path / "live-1.log"
    log.write_bytes(b"started\n")
    store.update_trial("live-1", status=TrialStatus.RUNNING, log_path=str(log))
    follower = start("logs", "live-1", "--follow", "--poll-interval", "0.05", "--db", url)
    assert read_line(follower.stdout) == b"started\n"
    follower.send_signal(signal.SIGINT)
    _, errors = follower.communicate(timeout=GUARD_SECONDS)
    assert follower.returncode == 130
    assert b"Traceback" not in errors


def test_delete_refuses_a_running_experiment(db: tuple[str, Store]) -> None:
    url, store = db
    assert store.acquire_lease("live", "tuner/elsewhere/1/1", 600)
    result = tuner("delete", "experiment", "live", "--db", url)
    assert result.returncode == 1
    assert 'experiment "live" is Running: its controller tuner/elsewhere/1/1 holds' in (
        result.stderr
    )
    assert "--force" in result.stderr
    assert store.get_experiment("live").status.value == "Running"
    assert [t.name for t in store.list_trials("live")] == ["live-1"]


@pytest.mark.timeout(GUARD_SECONDS)
def test_delete_force_kills_the_running_local_trial_and_removes_every_row(
    db: tuple[str, Store], tmp_path: Path
) -> None:
    url, store = db
    executor = LocalExecutor(tmp_path / "runs", grace_period_seconds=5)
    handle = executor.launch(
        "live-1",
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
        {},
        None,
        None,
    )
    store.update_trial(
        "live-1",
        status=TrialStatus.RUNNING,
        executor_kind=executor.name,
        executor_ref=handle.reference,
        log_path=str(executor.log_path(handle)),
    )
    store.add_observations("live-1", [Observation("live-1", "loss", 0.3)])
    assert store.acquire_lease("live", "tuner/elsewhere/1/1", 600)
    assert executor.poll(handle) is None  # running

    result = tuner("delete", "experiment", "live", "--force", "--db", url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == 'experiment "live" deleted\n'
    assert result.stderr == ""  # the trial was stopped within --wait
    outcome = executor.wait(handle, GUARD_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.KILLED
    with pytest.raises(ExperimentNotFoundError):
        store.get_experiment("live")
    with pytest.raises(TrialNotFoundError):
        store.get_observations("live-1")
    assert store.list_experiments() == []


def test_delete_of_a_finished_experiment_needs_no_force(db: tuple[str, Store]) -> None:
    url, store = db
    store.finish_trial("live-1", TrialStatus.SUCCEEDED, 0.2)
    store.set_experiment_status("live", ExperimentStatus.SUCCEEDED, "ExperimentGoalReached")
    result = tuner("delete", "experiment", "live", "--db", url)
    assert result.returncode == 0, result.stderr
    with pytest.raises(TrialNotFoundError):
        store.get_trial("live-1")
    assert store.list_experiments() == []
    assert os.path.exists(url.removeprefix("sqlite:///"))
