"""A local trial's records on disk: the files it leaves, identity records appended line by
line (a torn last line passed over), the lock on the trial directory, and the directories of
trials started by older versions (protocol 1: a ``supervisor.lock`` file, one object in
``supervisor.json``), which are adopted as before."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.executors import ExitReason, LocalExecutor
from tuner.executors import _supervisor as sv
from tuner.executors._local_state import identity_from_disk, lock_is_held, read_identity

from .conftest import WAIT_SECONDS

# A protocol-1 supervisor, as older versions ran one: takes supervisor.lock, records itself
# in supervisor.json (one object, replaced), waits for the gate file, writes outcome.json.
# With "lock-only" it records nothing (a supervisor caught starting).
PROTOCOL_1_SUPERVISOR = """
import fcntl, os, sys, time
from tuner.executors import _supervisor as sv
trial_dir, gate, stage = sys.argv[1:4]
lock = os.open(os.path.join(trial_dir, "supervisor.lock"), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(lock, fcntl.LOCK_EX)
me = os.getpid()
if stage == "recorded":
    record = {"version": 1, "pid": me, "start_ticks": sv.proc_start_ticks(me),
              "boot_id": sv.boot_id(), "started_at": time.time()}
    sv.write_json_atomically(os.path.join(trial_dir, "supervisor.json"), record)
print("ready", flush=True)
while not os.path.exists(gate):
    time.sleep(0.01)
outcome = {"version": 1, "reason": "Failed", "exit_code": 3, "signal": None,
           "message": "the trial exited with code 3", "started_at": time.time(),
           "finished_at": time.time(), "child_pid": None}
sv.write_json_atomically(os.path.join(trial_dir, "outcome.json"), outcome)
"""


def _record(**fields: object) -> bytes:
    return (json.dumps({"version": sv.PROTOCOL_VERSION, **fields}) + "\n").encode()


def _dead_pid() -> int:
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


# -- the files a trial leaves -----------------------------------------------------------------


def test_an_ended_trial_leaves_exactly_its_records_and_no_temporary_file(harness) -> None:
    handle, outcome = harness.run("tidy", ["/bin/echo", "loss=1"])
    assert outcome.succeeded
    trial_dir = harness.executor.run_dir / "tidy"
    assert sorted(p.name for p in trial_dir.iterdir()) == [
        sv.OUTCOME_FILE,
        sv.LOG_FILE,
        sv.IDENTITY_FILE,
    ]
    before, after = (trial_dir / sv.IDENTITY_FILE).read_bytes().splitlines(keepends=True)
    assert before.endswith(b"\n") and after.endswith(b"\n")
    first, last = json.loads(before), json.loads(after)
    assert "child_pid" not in first  # recorded before the command started
    assert last["pid"] == first["pid"] == handle.reference["pid"]
    assert last["child_pgid"] == last["child_pid"] and last["version"] == sv.PROTOCOL_VERSION


def test_the_supervisors_lock_is_on_the_trial_directory_while_it_lives(harness) -> None:
    handle, gate = harness.launch_gated("locked")
    trial_dir = harness.executor.run_dir / "locked"
    harness.wait_for_log_line(handle, r"pgid=")
    assert lock_is_held(trial_dir)
    assert not (trial_dir / sv.LEGACY_LOCK_FILE).exists()
    gate.touch()
    outcome = harness.executor.wait(handle, WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded
    harness.wait_until(lambda: not lock_is_held(trial_dir), "the supervisor to let go")


def test_where_a_directory_cannot_be_locked_the_lock_file_is_made_and_honoured(
    harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS emulates flock with byte-range locks, which a directory does not take (EBADF).
    # No such filesystem here: the launch's flock refuses directories as NFS's would.
    real_flock = fcntl.flock

    def nfs_like_flock(fd: int, operation: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_like_flock)
    handle, gate = harness.launch_gated("nfs")
    trial_dir = harness.executor.run_dir / "nfs"
    harness.wait_for_log_line(handle, r"pgid=")
    assert (trial_dir / sv.LEGACY_LOCK_FILE).exists()
    assert lock_is_held(trial_dir)  # on the file, the lock wherever it exists
    gate.touch()
    outcome = harness.executor.wait(handle, WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded
    harness.wait_until(lambda: not lock_is_held(trial_dir), "the supervisor to let go")


# -- identity records -------------------------------------------------------------------------


def test_the_last_complete_line_that_is_an_object_is_the_identity(tmp_path: Path) -> None:
    (tmp_path / sv.IDENTITY_FILE).write_bytes(
        _record(pid=10)
        + _record(pid=11, child_pgid=12)
        + b"[1, 2]\n"
        + b"not json\n"
        # A complete object, but without its newline: a record still being written.
        + json.dumps({"pid": 13}).encode()
    )
    assert read_identity(tmp_path) == {"version": sv.PROTOCOL_VERSION, "pid": 11, "child_pgid": 12}


def test_a_protocol_1_identity_file_of_one_object_is_read(tmp_path: Path) -> None:
    sv.write_json_atomically(
        str(tmp_path / sv.IDENTITY_FILE),
        {"version": 1, "pid": 42, "start_ticks": 7, "boot_id": "b", "started_at": 1.0},
    )
    supervisor = identity_from_disk(tmp_path)
    assert supervisor is not None and (supervisor.pid, supervisor.start_ticks) == (42, 7)


def test_a_torn_last_identity_line_is_passed_over_when_adopting(harness) -> None:
    handle, gate = harness.launch_gated("torn")
    harness.wait_for_log_line(handle, r"pgid=")
    # Were this line taken, the supervisor would seem gone and the trial lost.
    torn = _record(pid=_dead_pid(), start_ticks=1).rstrip(b"\n")
    with open(harness.executor.run_dir / "torn" / sv.IDENTITY_FILE, "ab") as f:
        f.write(torn)

    restarted = LocalExecutor(harness.executor.run_dir)
    found = restarted.find("torn")
    assert found is not None and found.supervisor is not None
    assert found.supervisor.pid == handle.reference["pid"]
    assert restarted.poll(found) is None  # running
    gate.touch()
    outcome = restarted.wait(found, WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded


@pytest.mark.parametrize("content", [b"", b'{"version": 2, "pid": 4'], ids=["empty", "torn"])
def test_a_directory_whose_identity_file_holds_no_record_is_not_launched_again(
    executor: LocalExecutor, content: bytes
) -> None:
    """Only a supervisor creates supervisor.json: one that got that far may have been about
    to start the command, so the trial is lost, never run twice."""
    trial_dir = executor.run_dir / "halfway"
    trial_dir.mkdir(parents=True)
    (trial_dir / sv.LOG_FILE).touch()
    (trial_dir / sv.IDENTITY_FILE).write_bytes(content)

    found = executor.find("halfway")
    assert found is not None and trial_dir.is_dir()
    outcome = executor.poll(found)
    assert outcome is not None and outcome.reason is ExitReason.LOST
    with pytest.raises(Exception, match="already exists"):
        executor.launch("halfway", ["/bin/echo", "twice"], {}, None, None)


def test_a_supervisor_that_finds_identity_records_does_not_start_the_command(
    tmp_path: Path,
) -> None:
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    (trial_dir / sv.IDENTITY_FILE).write_bytes(_record(pid=_dead_pid()))
    marker = tmp_path / "ran"
    lock = os.open(trial_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        supervisor = subprocess.run(
            [sys.executable, "-I", "-S", sv.__file__, str(trial_dir), str(tmp_path), "-", "1"]
            + [str(lock), "--", "/bin/touch", str(marker)],
            pass_fds=(lock,),
            capture_output=True,
            timeout=WAIT_SECONDS,
        )
    finally:
        os.close(lock)
    assert supervisor.returncode != 0
    assert not marker.exists()
    outcome = json.loads((trial_dir / sv.OUTCOME_FILE).read_text())
    assert outcome["reason"] == sv.FAILED and "FileExistsError" in outcome["message"]


# -- trials of older versions -----------------------------------------------------------------


@pytest.mark.parametrize("stage", ["lock-only", "recorded"])
def test_a_protocol_1_trial_is_running_while_its_lock_file_is_held_then_ends(
    run_dir: Path, tmp_path: Path, stage: str
) -> None:
    trial_dir = run_dir / "old"
    trial_dir.mkdir(parents=True)
    (trial_dir / sv.LOG_FILE).touch()
    gate = tmp_path / "gate"
    old = subprocess.Popen(
        [sys.executable, "-c", PROTOCOL_1_SUPERVISOR, str(trial_dir), str(gate), stage],
        stdout=subprocess.PIPE,
        text=True,
    )
    executor = LocalExecutor(run_dir)
    try:
        assert old.stdout is not None and old.stdout.readline() == "ready\n"
        assert lock_is_held(trial_dir)  # the lock file's, not the directory's
        found = executor.find("old")
        assert found is not None and trial_dir.is_dir()
        assert (found.supervisor is None) == (stage == "lock-only")
        assert executor.poll(found) is None  # running
        gate.touch()
        old.wait(WAIT_SECONDS)
        outcome = executor.wait(found, WAIT_SECONDS)
        assert outcome is not None and outcome.reason is ExitReason.FAILED
        assert outcome.exit_code == 3
    finally:
        gate.touch()
        old.wait(WAIT_SECONDS)
        executor.close()

    assert not lock_is_held(trial_dir)
    restarted = LocalExecutor(run_dir)  # adopts the ended trial: lock free, outcome there
    adopted = restarted.find("old")
    assert adopted is not None
    outcome = restarted.poll(adopted)
    assert outcome is not None and outcome.exit_code == 3


def test_a_protocol_1_trial_whose_supervisor_died_is_lost(run_dir: Path, tmp_path: Path) -> None:
    trial_dir = run_dir / "old"
    trial_dir.mkdir(parents=True)
    old = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PROTOCOL_1_SUPERVISOR,
            str(trial_dir),
            str(tmp_path / "g"),
            "recorded",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert old.stdout is not None and old.stdout.readline() == "ready\n"
    old.kill()
    old.wait()
    assert (trial_dir / sv.LEGACY_LOCK_FILE).exists() and not lock_is_held(trial_dir)
    executor = LocalExecutor(run_dir)
    found = executor.find("old")
    assert found is not None
    outcome = executor.poll(found)
    assert outcome is not None and outcome.reason is ExitReason.LOST
