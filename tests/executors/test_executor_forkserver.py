"""The local executor's fork server: trials outlive it, a dead one is replaced, a request it
died answering never starts a trial twice, and the records are those of a supervisor
process, so either way adopts the other's trials."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tuner.executors import ExecutorOptions, ExitReason, LocalExecutor
from tuner.executors import _local_forkserver as forkserver
from tuner.executors import _supervisor as sv
from tuner.executors._local import LocalTrialHandle
from tuner.executors._local_state import ProcessId, lock_is_held, this_boot

from .conftest import WAIT_SECONDS

pytestmark = pytest.mark.skipif(
    not forkserver.available(), reason="supervisors are forked on Linux only"
)

# Records one file per run (so a second start would show), then waits for the gate file.
COUNTED_TRIAL = """
import os, sys, time
runs, gate = sys.argv[1], sys.argv[2]
open(os.path.join(runs, str(os.getpid())), "w").close()
print(f"pgid={os.getpgid(0)}", flush=True)
while not os.path.exists(gate):
    time.sleep(0.01)
"""

# A stand-in controller: launches one gated trial, prints its reference and the fork
# server's pid, waits to be killed.
CONTROLLER = """
import json, sys, time
from tuner.executors import LocalExecutor
run_dir, trial_code, gate = sys.argv[1:4]
ex = LocalExecutor(run_dir, fork_server=True)
handle = ex.launch("orphan", ["python3", "-c", trial_code, gate, "0"], {}, None, None)
print(json.dumps({"reference": handle.reference, "server": ex._server.process.pid}), flush=True)
time.sleep(600)
"""


def _fork_executor(run_dir: Path) -> LocalExecutor:
    return LocalExecutor(run_dir, grace_period_seconds=0.3, fork_server=True)


def _counted(tmp_path: Path, name: str) -> tuple[list[str], Path, Path]:
    runs = tmp_path / f"runs-{name}"
    runs.mkdir()
    gate = tmp_path / f"gate-{name}"
    return ["python3", "-c", COUNTED_TRIAL, str(runs), str(gate)], runs, gate


def test_a_trial_outlives_its_fork_server_and_the_next_launch_starts_a_new_one(
    harness, run_dir: Path, tmp_path: Path
) -> None:
    executor = _fork_executor(run_dir)
    try:
        argv, _, gate = _counted(tmp_path, "a")
        handle = executor.launch("a", argv, {}, None, None)
        harness.wait_for_log_line(handle, r"pgid=\d+", executor)
        first = executor._server
        assert first is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(WAIT_SECONDS)

        assert executor.poll(handle) is None  # its supervisor runs on without the server
        gate.touch()
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.reason is ExitReason.COMPLETED

        second = executor.launch("b", ["/bin/echo", "loss=1"], {}, None, None)
        again = executor.wait(second, WAIT_SECONDS)
        assert again is not None and again.succeeded
        server = executor._server
        assert server is not None and server is not first and server.alive()
        assert "loss=1" in executor.log_path(second).read_text()
    finally:
        executor.close()


def test_a_server_that_died_after_forking_does_not_start_the_trial_twice(
    harness, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = forkserver.ForkServer.start_supervisor

    def forks_then_dies(self: forkserver.ForkServer, **request: Any) -> tuple[int, int | None]:
        real(self, **request)  # the supervisor is forked and runs the trial...
        self.process.kill()  # ...but its server dies before the answer arrives
        self.process.wait(WAIT_SECONDS)
        raise forkserver.ServerGoneError("the fork server closed its socket")

    monkeypatch.setattr(forkserver.ForkServer, "start_supervisor", forks_then_dies)
    executor = _fork_executor(run_dir)
    try:
        argv, runs, gate = _counted(tmp_path, "once")
        handle = executor.launch("once", argv, {}, None, None)
        harness.wait_for_log_line(handle, r"pgid=\d+", executor)
        assert executor.poll(handle) is None
        gate.touch()
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.reason is ExitReason.COMPLETED
        assert len(list(runs.iterdir())) == 1
    finally:
        executor.close()


def test_a_server_that_died_before_forking_is_replaced_and_the_trial_started_once(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = forkserver.ForkServer.start_supervisor
    calls: list[int] = []

    def dies_first_time(self: forkserver.ForkServer, **request: Any) -> tuple[int, int | None]:
        calls.append(self.process.pid)
        if len(calls) == 1:
            self.process.kill()
            self.process.wait(WAIT_SECONDS)
        return real(self, **request)

    monkeypatch.setattr(forkserver.ForkServer, "start_supervisor", dies_first_time)
    executor = _fork_executor(run_dir)
    try:
        argv, runs, gate = _counted(tmp_path, "retry")
        gate.touch()
        handle = executor.launch("retry", argv, {}, None, None)
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.reason is ExitReason.COMPLETED
        assert len(calls) == 2 and calls[0] != calls[1]  # asked a new server
        assert len(list(runs.iterdir())) == 1
    finally:
        executor.close()


@pytest.mark.parametrize("launcher_forks", [True, False])
def test_either_way_of_starting_supervisors_adopts_the_others_trials(
    harness, run_dir: Path, launcher_forks: bool
) -> None:
    launcher = LocalExecutor(run_dir, fork_server=launcher_forks)
    gate = run_dir.parent / "gate"
    handle = launcher.launch(
        "mixed", harness.python(harness.GATED_TRIAL, str(gate), "6"), {}, None, None
    )
    reference = json.loads(json.dumps(handle.reference))
    adopter = LocalExecutor(run_dir, fork_server=not launcher_forks)
    adopted = adopter.adopt(reference)
    assert adopted is not None and adopter.poll(adopted) is None
    gate.touch()
    outcome = adopter.wait(adopted, WAIT_SECONDS)
    assert outcome is not None and outcome.exit_code == 6
    launcher.close()


def test_a_sigkilled_controllers_fork_server_exits_once_its_trials_have_ended(
    harness, run_dir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(run_dir), harness.GATED_TRIAL, str(gate)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(controller.stdout.readline())  # type: ignore[union-attr]
    finally:
        controller.kill()
        controller.wait()
    server = started["server"]

    executor = LocalExecutor(run_dir)
    adopted = executor.adopt(started["reference"])
    assert adopted is not None
    harness.wait_for_log_line(adopted, r"pgid=\d+", executor)
    assert executor.poll(adopted) is None
    # Its controller is gone, but it stays to reap the supervisor it forked.
    assert harness.is_alive(server)
    gate.touch()
    outcome = executor.wait(adopted, WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded
    # Then it leaves; no supervisor of it is left a zombie (its parent reaps it; init, it).
    harness.wait_until(lambda: not harness.is_alive(server), "the fork server to exit")
    harness.wait_until(
        lambda: not harness.exists(adopted.reference["pid"]), "the supervisor to be reaped"
    )


def test_the_trial_inherits_no_descriptor_of_the_server_or_the_controller(
    run_dir: Path, tmp_path: Path
) -> None:
    executor = _fork_executor(run_dir)
    try:
        code = "import os; print('fds=' + ','.join(sorted(os.listdir('/proc/self/fd'))))"
        handle = executor.launch("fds", ["python3", "-c", code], {}, None, None)
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.succeeded
        log = executor.log_path(handle).read_text()
        # 0-2 and the descriptor listing /proc/self/fd; not the lock, the log or a socket.
        assert "fds=0,1,2,3\n" in log, log
        # Nor does the server keep the lock: it tells the supervisor has ended.
        assert not lock_is_held(run_dir / "fds")
    finally:
        executor.close()


def test_without_a_fork_server_each_trial_gets_a_supervisor_process(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(self: forkserver.ForkServer, python_executable: str) -> None:
        raise PermissionError(13, "Permission denied", python_executable)

    monkeypatch.setattr(forkserver.ForkServer, "__init__", cannot_start)
    executor = _fork_executor(run_dir)
    handle = executor.launch("alone", ["/bin/echo", "loss=2"], {}, None, None)
    outcome = executor.wait(handle, WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded
    assert "loss=2" in executor.log_path(handle).read_text()
    assert executor._server is None and handle.popen is not None  # a process of its own


def test_an_executor_made_for_a_run_starts_its_fork_server_before_the_first_launch(
    run_dir: Path,
) -> None:
    executor = LocalExecutor.create(ExecutorOptions(run_dir=run_dir))
    try:
        server = executor._server
        assert server is not None and server.alive()
        handle = executor.launch("first", ["/bin/echo", "loss=1"], {}, None, None)
        assert executor._server is server  # the first launch used it
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.succeeded
    finally:
        executor.close()
    server.process.wait(WAIT_SECONDS)  # with nothing running, closing it ends it


REHEARSAL = """
import os, signal, sys
from tuner.executors import _supervisor as sv
handlers = {s: signal.getsignal(s) for s in (*sv._TERMINATION_SIGNALS, signal.SIGALRM)}
os.chdir(sys.argv[1])
sv.rehearse()
assert {s: signal.getsignal(s) for s in handlers} == handlers
assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
print("rehearsed", os.listdir("."), os.listdir("/proc/self/fd").__len__())
"""


def test_a_spares_rehearsal_writes_nothing_and_changes_no_signal_handling(
    tmp_path: Path,
) -> None:
    before = subprocess.run(
        [sys.executable, "-c", "import os; print(len(os.listdir('/proc/self/fd')))"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", REHEARSAL, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split(None, 1)[0] == "rehearsed"
    assert list(tmp_path.iterdir()) == []
    assert result.stdout.endswith(f" {before.stdout.strip()}\n")  # no descriptor left open


def test_a_forked_trials_exit_descriptor_is_its_outcome_pipe_and_wakes_when_it_ends(
    run_dir: Path,
) -> None:
    executor = _fork_executor(run_dir)
    try:
        handle = executor.launch("piped", ["/bin/echo", "loss=1"], {}, None, None)
        fd = executor.exit_descriptor(handle)
        assert fd is not None and fd >= 0
        try:
            assert stat.S_ISFIFO(os.fstat(fd).st_mode)  # not a pidfd
            waiter = select.poll()
            waiter.register(fd, select.POLLIN)
            assert waiter.poll(WAIT_SECONDS * 1000)
        finally:
            os.close(fd)
        outcome = executor.poll(handle)
        assert outcome is not None and outcome.succeeded
        assert isinstance(handle, LocalTrialHandle) and handle.done is None  # closed
        assert executor.exit_descriptor(handle) == -1
    finally:
        executor.close()


def test_poll_takes_the_outcome_once_the_supervisor_said_it_wrote_it_though_still_alive(
    run_dir: Path,
) -> None:
    """What the pipe is for: the supervisor's exit comes after; its record is final."""
    executor = _fork_executor(run_dir)
    trial_dir = run_dir / "lingering"
    trial_dir.mkdir(parents=True)
    lingering = subprocess.Popen(["sleep", "60"])  # stands for a supervisor still exiting
    read_end, write_end = os.pipe()
    try:
        me = ProcessId(lingering.pid, sv.proc_start_ticks(lingering.pid), this_boot())
        handle = LocalTrialHandle("lingering", trial_dir, me, done=read_end)
        sv.write_json_atomically(
            str(trial_dir / sv.OUTCOME_FILE),
            {"version": 1, "reason": sv.COMPLETED, "exit_code": 0, "message": "done"},
        )
        assert executor.poll(handle) is None  # not said yet: the process is alive
        os.close(write_end)
        write_end = -1
        outcome = executor.poll(handle)
        assert outcome is not None and outcome.reason is ExitReason.COMPLETED
        assert handle.done is None
    finally:
        if write_end >= 0:
            os.close(write_end)
        lingering.kill()
        lingering.wait()
        executor.close()


def _children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def test_a_spare_killed_while_it_waited_is_replaced_and_the_trial_started_once(
    harness, run_dir: Path, tmp_path: Path
) -> None:
    executor = LocalExecutor.create(ExecutorOptions(run_dir=run_dir))
    try:
        server = executor._server
        assert server is not None
        # The spare the server forked when it started, waiting for a request.
        (spare,) = harness.wait_until(
            lambda: _children_of(server.process.pid), "the fork server's spare"
        )
        os.kill(spare, signal.SIGKILL)
        harness.wait_until(lambda: not harness.exists(spare), "the spare to be reaped")

        argv, runs, gate = _counted(tmp_path, "after-spare")
        gate.touch()
        handle = executor.launch("after-spare", argv, {}, None, None)
        assert handle.reference["pid"] != spare
        outcome = executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None and outcome.reason is ExitReason.COMPLETED
        assert len(list(runs.iterdir())) == 1
        assert executor._server is server  # the same server: only its spare was replaced
    finally:
        executor.close()
