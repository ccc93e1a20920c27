"""``tuner.report_metrics``: from a real trial-like subprocess to a served DBManager, its
errors outside a trial, and that ``import tuner`` stays free of gRPC."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pytest

import tuner
from tuner.dbmanager import serve

PUSHER = r"""
import sys, tuner
for step in range(4):
    tuner.report_metrics({"loss": 1.0 / (step + 1), "acc": step / 4}, step=step)
tuner.report_metrics({"loss": 0.125})
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def trial_env(address: str, trial: str = "exp-a") -> dict[str, str]:
    return {**os.environ, "KATIB_TRIAL_NAME": trial, "TUNER_DBMANAGER_ADDRESS": address}


def test_a_trial_process_reports_metrics_with_their_steps(served: Any) -> None:
    done = run_python(PUSHER, trial_env(served.address))

    assert done.returncode == 0, done.stderr
    loss = served.store.get_observations("exp-a", "loss")
    acc = served.store.get_observations("exp-a", "acc")
    assert [(o.step, o.value) for o in loss] == [
        (0, 1.0),
        (1, 0.5),
        (2, 1 / 3),
        (3, 0.25),
        (4, 0.125),
    ]
    assert [(o.step, o.value) for o in acc] == [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75)]
    assert all(o.timestamp.tzinfo is not None for o in loss)


def test_an_explicit_timestamp_is_stored(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-b")
    monkeypatch.setenv("TUNER_DBMANAGER_ADDRESS", served.address)
    when = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)

    tuner.report_metrics({"loss": 3}, step=7, timestamp=when)
    tuner.report_metrics({"loss": 4}, timestamp=when.timestamp() + 1)

    stored = served.store.get_observations("exp-b")
    assert [(o.value, o.step, o.timestamp) for o in stored] == [
        (3.0, 7, when),
        (4.0, 1, datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=timezone.utc)),
    ]


def test_in_a_trial_without_the_dbmanager_address_it_raises_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-a")
    monkeypatch.delenv("TUNER_DBMANAGER_ADDRESS", raising=False)

    with pytest.raises(RuntimeError, match="environment variable TUNER_DBMANAGER_ADDRESS"):
        tuner.report_metrics({"loss": 1.0})


def test_outside_a_trial_it_prints_the_values_with_a_notice_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuner import _report

    monkeypatch.delenv("KATIB_TRIAL_NAME", raising=False)
    monkeypatch.setattr(_report, "_outside_notice_shown", False)
    before = _report.last_reported()

    tuner.report_metrics({"loss": 1.5}, step=2)
    tuner.report_metrics({"loss": 1.25, "acc": 0.5})

    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("tuner.report_metrics: not inside a trial (KATIB_TRIAL_NAME")
    assert lines[1:] == [
        "tuner.report_metrics: loss=1.5 (step 2)",
        "tuner.report_metrics: loss=1.25 acc=0.5",
    ]
    assert _report.last_reported() == before  # nothing was sent


@pytest.mark.parametrize(
    ("metrics", "step", "error", "text"),
    [
        ({"loss": float("nan")}, None, ValueError, "metrics['loss']: nan is not a finite"),
        ({"loss": "0.5"}, None, TypeError, "metrics['loss']: '0.5' is not a number"),
        ({"loss": True}, None, TypeError, "is not a number"),
        ({}, None, TypeError, "non-empty dict"),
        ({"loss": 1.0}, -1, ValueError, "step: -1 is not an integer >= 0"),
    ],
)
def test_malformed_reports_are_refused_before_sending(
    metrics: Any, step: Any, error: type[Exception], text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-a")
    monkeypatch.setenv("TUNER_DBMANAGER_ADDRESS", "127.0.0.1:1")

    with pytest.raises(error, match=text.replace("[", r"\[").replace("]", r"\]")):
        tuner.report_metrics(metrics, step=step)


def test_an_unknown_trial_name_raises_with_the_servers_answer(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "not-a-trial")
    monkeypatch.setenv("TUNER_DBMANAGER_ADDRESS", served.address)

    with pytest.raises(RuntimeError, match="NOT_FOUND: trial 'not-a-trial' not found"):
        tuner.report_metrics({"loss": 1.0})


def free_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_dbmanager_raises_after_retrying(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-a")
    monkeypatch.setenv("TUNER_DBMANAGER_ADDRESS", f"127.0.0.1:{port}")

    with pytest.raises(RuntimeError, match=f"DBManager at 127.0.0.1:{port}: UNAVAILABLE"):
        tuner.report_metrics({"loss": 1.0}, timeout=2, retry_seconds=1)
    assert (
        f"the DBManager at 127.0.0.1:{port} is not answering (UNAVAILABLE); trying again for"
        " up to 1s"
    ) in capsys.readouterr().err


def test_a_report_waits_for_a_controller_that_is_started_again(store: Any) -> None:
    """A controller that crashed serves its DBManager again on the same port once it is
    restarted; a trial reporting meanwhile retries until it is back, and the report is
    stored once."""
    port = free_port()
    reporter = subprocess.Popen(
        [sys.executable, "-c", "import tuner; tuner.report_metrics({'loss': 0.5}, step=3)"],
        env=trial_env(f"127.0.0.1:{port}"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The first attempt has failed when the notice is printed; only then is it served.
        assert reporter.stderr is not None
        notice = reporter.stderr.readline()
        assert f"DBManager at 127.0.0.1:{port} is not answering" in notice
        with serve(store, f"127.0.0.1:{port}"):
            rest = reporter.communicate(timeout=60)[1]
    finally:
        reporter.kill()
    assert reporter.returncode == 0, rest
    assert [(o.step, o.value) for o in store.get_observations("exp-a")] == [(3, 0.5)]


@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_a_bad_retry_setting_in_the_environment_is_named(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-a")
    monkeypatch.setenv("TUNER_DBMANAGER_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("TUNER_REPORT_RETRY_SECONDS", value)

    with pytest.raises(ValueError, match=f"TUNER_REPORT_RETRY_SECONDS={value!r}"):
        tuner.report_metrics({"loss": 1.0})


def test_import_tuner_and_looking_up_report_metrics_load_no_grpc() -> None:
    code = "import sys, tuner; tuner.report_metrics; print('grpc' in sys.modules)"

    done = run_python(code, dict(os.environ))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
