"""Executor fixtures: a LocalExecutor in a temp dir, and a harness with small trial programs,
waits that only guard against hangs, and /proc look-ups that prove no process is left; and
``executors``, which makes KubernetesExecutors against the ``kmock`` API emulator (the
modules that use it skip without kmock)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
import support

from tuner.executors import LocalExecutor, Outcome, TrialHandle

if TYPE_CHECKING:
    from tuner.executors._kubernetes import KubernetesExecutor

# Waits only guard against hangs; no test asserts how long anything took.
WAIT_SECONDS = 30.0


class Harness:
    """Helpers shared by the executor tests (importlib mode: tests cannot import modules)."""

    WAIT_SECONDS = WAIT_SECONDS

    # Prints its process group, waits for the file argv[1] to exist, exits with argv[2].
    GATED_TRIAL = """
import os, sys, time
gate, code = sys.argv[1], int(sys.argv[2])
print(f"pgid={os.getpgid(0)}", flush=True)
while not os.path.exists(gate):
    time.sleep(0.01)
print("after gate", flush=True)
sys.exit(code)
"""

    # Starts a grandchild (which ignores SIGTERM when argv[1] == "ignore-term", so only
    # SIGKILL stops it), reports both, then sleeps: only the executor can end this family.
    FAMILY_TRIAL = """
import os, subprocess, sys, time
grandchild_code = (
    "import signal, sys, time\\n"
    "if sys.argv[1] == 'ignore-term':\\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "print('ready', flush=True)\\n"
    "time.sleep(600)\\n"
)
grandchild = subprocess.Popen(
    [sys.executable, "-c", grandchild_code, sys.argv[1]], stdout=subprocess.PIPE
)
grandchild.stdout.readline()
print(f"pgid={os.getpgid(0)} grandchild={grandchild.pid}", flush=True)
time.sleep(600)
"""

    def __init__(self, executor: LocalExecutor, tmp_path: Path) -> None:
        self.executor = executor
        self.tmp_path = tmp_path

    @staticmethod
    def python(code: str, *args: str) -> list[str]:
        return ["python3", "-c", code, *args]

    def run(self, name: str, argv: list[str], **options: Any) -> tuple[TrialHandle, Outcome]:
        """Launch a trial and wait for its end."""
        handle = self.executor.launch(
            name,
            argv,
            options.pop("env", {}),
            options.pop("working_dir", None),
            options.pop("deadline_seconds", None),
            **options,
        )
        outcome = self.executor.wait(handle, WAIT_SECONDS)
        assert outcome is not None, "the trial did not finish"
        return handle, outcome

    def launch_gated(self, name: str, exit_code: int = 0) -> tuple[TrialHandle, Path]:
        """A trial that runs until the returned gate file exists, then exits."""
        gate = self.tmp_path / f"gate-{name}"
        argv = self.python(self.GATED_TRIAL, str(gate), str(exit_code))
        return self.executor.launch(name, argv, {}, None, None), gate

    def wait_for_log_line(
        self, handle: TrialHandle, pattern: str, executor: LocalExecutor | None = None
    ) -> re.Match[str]:
        """Wait until the trial's log has a match for ``pattern``; fail if it ends first."""
        executor = executor or self.executor
        compiled = re.compile(pattern)
        log = executor.log_path(handle)
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            text = log.read_text() if log.exists() else ""
            match = compiled.search(text)
            if match:
                return match
            outcome = executor.poll(handle)
            if outcome is not None or time.monotonic() > give_up:
                raise AssertionError(f"no match for {pattern!r}; {outcome}; log: {text!r}")
            time.sleep(0.01)

    wait_until = staticmethod(support.wait_until)

    @staticmethod
    def live_group_members(pgid: int) -> list[int]:
        """Pids of live (not zombie) processes in process group ``pgid``."""
        members = []
        for entry in os.listdir("/proc"):
            stat = _stat(entry) if entry.isdigit() else None
            if stat is not None and stat[0] not in (b"Z", b"X") and int(stat[2]) == pgid:
                members.append(int(entry))
        return members

    @staticmethod
    def is_alive(pid: int) -> bool:
        stat = _stat(str(pid))
        return stat is not None and stat[0] not in (b"Z", b"X")

    @staticmethod
    def stop_what_runs(executor: LocalExecutor) -> None:
        """Stop, through the public API, what a test left running in the executor's run
        directory (a failed test's trials, gated trials never released), then let its fork
        server go."""
        run_dir = executor.run_dir
        if run_dir is not None and run_dir.is_dir():
            for trial_dir in run_dir.iterdir():
                handle = executor.find(trial_dir.name)
                if handle is not None:
                    executor.kill(handle)
                    executor.wait(handle, WAIT_SECONDS)
        executor.close()

    @staticmethod
    def exists(pid: int) -> bool:
        """Whether ``pid`` is in the process table at all, zombies included."""
        return _stat(str(pid)) is not None


def _stat(pid: str) -> list[bytes] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture(params=["fork-server", "process-per-trial"])
def executor(request: Any, run_dir: Path, tmp_path: Path) -> Iterator[LocalExecutor]:
    """Both ways of starting supervisors: forked by the fork server, one process each."""
    ex = LocalExecutor(
        run_dir,
        default_working_dir=tmp_path,
        grace_period_seconds=0.3,
        fork_server=request.param == "fork-server",
    )
    yield ex
    Harness.stop_what_runs(ex)


@pytest.fixture
def harness(executor: LocalExecutor, tmp_path: Path) -> Harness:
    return Harness(executor, tmp_path)


# How long a Kubernetes executor waits for a finished pod's last log lines (a hang guard).
KUBERNETES_FINAL_LOG_WAIT_SECONDS = 20.0


@pytest_asyncio.fixture
async def executors(kmock: Any) -> AsyncIterator[Callable[..., KubernetesExecutor]]:
    """``executors(**options)`` makes a KubernetesExecutor talking to kmock, with quick
    retries and polls (``options`` override them); each is closed after the test."""
    from tuner.executors._kubernetes import KubernetesExecutor
    from tuner.executors._kubernetes_api import RetryPolicy

    made: list[KubernetesExecutor] = []

    def make(**options: Any) -> KubernetesExecutor:
        options = {
            "host": str(kmock.url),
            "retry": RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05),
            # kmock has no resourceVersions, so a watch that connects late misses events; the
            # periodic re-list (the executor's safety net) catches up, quickly here.
            "resync_seconds": 0.5,
            "log_poll_seconds": 0.05,
            "final_log_wait_seconds": KUBERNETES_FINAL_LOG_WAIT_SECONDS,
            **options,
        }
        made.append(KubernetesExecutor(**options))
        return made[-1]

    yield make
    for executor in made:
        await asyncio.to_thread(executor.close)
