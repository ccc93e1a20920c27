"""What a user sees while something is down (issue 17, item 7): retries against an unreachable
suggestion service are announced at the default log level, and a second ``tuner run`` that
is refused because another controller holds the experiment says only that."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import support
import yaml

from tuner.controller import RetryPolicy, SuggestionClient, SuggestionError
from tuner.spec import Experiment

TIMEOUT = 120  # guards against hangs only

# Reports once, then waits for the gate file, so that the first run holds its lease.
GATED_TRIAL = r"""
import os, sys, time
gate = sys.argv[1]
print("loss=0.5", flush=True)
while not os.path.exists(gate):
    time.sleep(0.02)
print("loss=0.25", flush=True)
"""


def _experiment(gate: Path) -> dict:
    return support.experiment_document(
        "outage",
        command=[sys.executable, "trial.py", str(gate), "--x=${trialParameters.x}"],
        parameters=[support.int_parameter("x", 1, 3)],
        parallel=1,
        max_trials=1,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_suggestion_service_is_announced_while_retrying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    experiment = Experiment.model_validate(_experiment(Path("gate")))
    address = f"127.0.0.1:{_free_port()}"
    policy = RetryPolicy(initial=0.01, maximum=0.02, budget=0.1)
    caplog.set_level(logging.WARNING)  # the CLI's default level
    with SuggestionClient(address, timeout=2, retry=policy) as client:
        with pytest.raises(SuggestionError):
            client.validate(experiment)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings, "nothing was said while retrying"
    assert f"suggestion service at {address}" in warnings[0]
    assert "ValidateAlgorithmSettings unreachable" in warnings[0]
    assert "retrying for up to" in warnings[0]


def test_refused_second_run_does_not_warn_about_the_dbmanager_port(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    (tmp_path / "trial.py").write_text(GATED_TRIAL, encoding="utf-8")
    spec = tmp_path / "experiment.yaml"
    spec.write_text(yaml.safe_dump(_experiment(gate)), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "tuner.cli",
        "run",
        str(spec),
        "--db",
        f"sqlite:///{tmp_path / 'tuner.db'}",
        "--run-dir",
        str(tmp_path / "runs"),
        "--no-progress",
    ]
    first = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        # The trial has reported once: the first run holds the lease and serves its DBManager.
        while not list((tmp_path / "runs").glob("*/*.log")) or not any(
            "loss=0.5" in p.read_text(errors="replace") for p in (tmp_path / "runs").glob("*/*.log")
        ):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never started its trial"
            time.sleep(0.05)
        second = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert second.returncode == 1, second.stderr
        assert "lease" in second.stderr or "another controller" in second.stderr, second.stderr
        assert "DBManager" not in second.stderr, second.stderr
    finally:
        gate.touch()
        out, err = first.communicate(timeout=TIMEOUT)
    assert first.returncode == 0, err
