"""Fixtures for controller tests: a real suggestion server on a loopback port, a SQLite store
and a local executor in a temp dir, and Experiments whose trial is a small Python program."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import support

from tuner.controller import Controller, SuggestionClient
from tuner.executors import LocalExecutor
from tuner.spec import Experiment
from tuner.store import Store

# Prints `loss=<x>` (twice: x + 1, then x) after sleeping --sleep seconds.
TRIAL = r"""
import sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
time.sleep(float(opts.get("sleep", "0")))
print(f"loss={float(opts['x']) + 1}")
print(f"loss={opts['x']}", flush=True)
"""


class Bench:
    """A store, an executor and a suggestion client wired up in ``root``."""

    def __init__(self, root: Path, address: str) -> None:
        self.root = root
        (root / "trial.py").write_text(TRIAL)
        self.store = Store.open(f"sqlite:///{root / 'tuner.db'}")
        self.executor = LocalExecutor(
            root / "runs", default_working_dir=root, grace_period_seconds=2
        )
        self.client = SuggestionClient(address)

    def experiment(
        self,
        name: str = "exp",
        *,
        max_trials: int = 2,
        parallel: int = 2,
        max_failed: int | None = None,
        sleep: float = 0.0,
    ) -> Experiment:
        return support.experiment(
            name,
            command=["python3", "trial.py", "--x=${trialParameters.x}", f"--sleep={sleep}"],
            parameters=[support.int_parameter("x", 0, 100000)],
            settings={"random_state": "5"},
            parallel=parallel,
            max_trials=max_trials,
            max_failed=max_failed,
        )

    def controller(self, experiment: Experiment) -> Controller:
        return Controller(self.store, experiment, self.client, self.executor, poll_interval=0.05)

    def close(self) -> None:
        self.client.close()
        self.store.close()


@pytest.fixture
def bench(tmp_path: Path, suggestion_address: str) -> Iterator[Bench]:
    b = Bench(tmp_path, suggestion_address)
    yield b
    b.close()
