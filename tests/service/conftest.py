"""Fixtures for service-mode tests: Experiment files whose trials record every launch, the
`tuner` CLI in-process (submit) and as real subprocesses (controller), and databases."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import support
import yaml
from sqlalchemy import create_engine, text
from support import HANG_GUARD_SECONDS, tuner_command
from support.databases import server_url

from tuner.cli import main
from tuner.store import Store
from tuner.store._engine import resolve_url

# Appends its trial name to --record (one line per launch), sleeps, prints the objective.
TRIAL = r"""
import os, sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
fd = os.open(opts["record"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, (opts["trial"] + "\n").encode())
os.close(fd)
time.sleep(float(opts["sleep"]))
print(f"loss={opts['x']}", flush=True)
"""


class ControllerProcess:
    """A `tuner controller` subprocess; its banner line gives the metrics address."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log_file, text=True, start_new_session=True
        )
        self.banner = self.proc.stdout.readline() if self.proc.stdout else ""
        if "metrics http://" not in self.banner:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"controller did not start: {self.banner!r}\n{log.read_text()}")
        self.address = self.banner.split("metrics http://", 1)[1].split("/", 1)[0]
        self.owner = self.banner.split()[1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str) -> tuple[int, str]:
        return support.http_get(f"http://{self.address}{path}", timeout=10)

    def terminate(self) -> tuple[int, str]:
        """SIGTERM; the exit code and the rest of stdout."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=HANG_GUARD_SECONDS)
        return self.proc.returncode, out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=HANG_GUARD_SECONDS)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=HANG_GUARD_SECONDS)
        self._log_file.close()


class Bench:
    """A working directory with a trial script, Experiment files, a database, controllers."""

    def __init__(self, root: Path, db_url: str, suggestion_address: str) -> None:
        self.root = root
        self.db_url = db_url
        self.suggestion_address = suggestion_address
        self.trial = root / "trial.py"
        self.trial.write_text(TRIAL)
        self.records = root / "launches.txt"
        self.run_dir = root / "runs"
        self._controllers: list[ControllerProcess] = []

    def experiment(
        self, name: str, *, max_trials: int = 4, parallel: int = 2, sleep: float = 0.2, **spec: Any
    ) -> dict[str, Any]:
        """An Experiment document whose trials record their launch in `records`."""
        command = [
            "python3",
            str(self.trial),
            "--x=${trialParameters.x}",
            "--trial=${trialParameters.trial}",
            f"--record={self.records}",
            f"--sleep={sleep}",
        ]
        return support.experiment_document(
            name,
            command=command,
            parameters=[support.int_parameter("x", 0, 1000000)],
            trial_parameters={"trial": "${trialSpec.Name}"},
            image="python",
            parallel=parallel,
            max_trials=max_trials,
            **spec,
        )

    def write(self, filename: str, *documents: dict[str, Any]) -> str:
        path = self.root / filename
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        return str(path)

    def submit(self, *paths: str, extra: tuple[str, ...] = ()) -> int:
        """`tuner submit` in this process (its output goes to capsys)."""
        argv = ["submit", *paths, "--db", self.db_url]
        return main([*argv, "--suggestion-address", self.suggestion_address, *extra])

    def start_controller(self, *extra: str) -> ControllerProcess:
        argv = [
            *tuner_command(),
            "-v",
            "controller",
            "--db",
            self.db_url,
            "--run-dir",
            str(self.run_dir),
            "--metrics-address",
            "127.0.0.1:0",
            "--lease-seconds",
            "3",
            "--poll-interval",
            "0.2",
            *extra,
        ]
        log = self.root / f"controller-{len(self._controllers)}.log"
        controller = ControllerProcess(argv, log)
        self._controllers.append(controller)
        return controller

    def store(self) -> Store:
        return Store.open(self.db_url)

    def launches(self) -> list[str]:
        return self.records.read_text().split() if self.records.exists() else []

    def close(self) -> None:
        for controller in self._controllers:
            controller.close()


@pytest.fixture
def bench(tmp_path: Path, suggestion_address: str) -> Iterator[Bench]:
    b = Bench(tmp_path, f"sqlite:///{tmp_path / 'tuner.db'}", suggestion_address)
    yield b
    b.close()


def _postgres_schema(options: str) -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a schema of their own, dropped afterwards, so
    that nothing else using the database (other tests, other runs) is touched."""
    base = server_url("postgresql")
    schema = f"tuner_service_{uuid.uuid4().hex[:12]}"
    engine = create_engine(resolve_url(base))
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        options = f"-csearch_path={schema} {options}".strip()
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options={quote(options)}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL of a schema of its own (the store's own session settings)."""
    yield from _postgres_schema("")


@pytest.fixture
def postgres_url_short_idle() -> Iterator[str]:
    """``postgres_url``, but the server ends a session idle in a transaction for 2 s (not
    tuner's 60 s), releasing its row locks: a frozen replica (SIGSTOP) must not block the
    others for long (docs/service.md). Only for tests that freeze a replica: on a loaded
    machine a busy process too can spend 2 s between a read and its commit, and lose its
    session."""
    yield from _postgres_schema("-cidle_in_transaction_session_timeout=2000")
