"""`tuner controller --dbmanager-address` (issue 11, item 4): one DBManager for the whole
database on an address trials reach wherever they run, given to every experiment's trials
(and early stopping) instead of one per experiment on loopback; Katib SDK-shaped reports
(``support.katib_sdk``) from trials of two experiments reach it. Settings that cannot work
are refused before anything starts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import support
from support import HANG_GUARD_SECONDS, tuner_command, wait_until
from support.katib_sdk import TRIAL

from tuner.store import ExperimentStatus, TrialStatus
from tuner.tokens import ALLOW_TOKENLESS_ENV


def push_experiment(bench: Any, name: str) -> dict[str, Any]:  # noqa: ANN401
    return support.experiment_document(
        name,
        command=[sys.executable, str(bench.root / "sdk_trial.py"), "${trialParameters.x}"],
        parameters=[
            {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0.25", "0.5"]}}
        ],
        algorithm="grid",
        parallel=2,
        max_trials=2,
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )


def test_one_dbmanager_takes_the_reports_of_every_experiments_trials(
    bench: Any,  # noqa: ANN401
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ALLOW_TOKENLESS_ENV, "true")
    (bench.root / "sdk_trial.py").write_text(TRIAL, encoding="utf-8")
    path = bench.write("ab.yaml", push_experiment(bench, "alpha"), push_experiment(bench, "beta"))
    assert bench.submit(path) == 0
    controller = bench.start_controller("--dbmanager-address", "127.0.0.1:0")
    assert "DBManager 127.0.0.1:" in controller.banner
    address = controller.banner.split("DBManager ", 1)[1].split(",", 1)[0]

    def statuses() -> dict[str, ExperimentStatus]:
        with bench.store() as store:
            return {e.name: e.status for e in store.list_experiments()}

    wait_until(
        lambda: set(statuses().values()) == {ExperimentStatus.SUCCEEDED},
        "both experiments to succeed",
    )
    with bench.store() as store:
        for name in ("alpha", "beta"):
            trials = store.list_trials(name)
            assert {t.status for t in trials} == {TrialStatus.SUCCEEDED}
            assert sorted(t.objective_value for t in trials) == [0.25, 0.5]
    # Every trial was told the one address, not a DBManager of its own.
    logs = [p.read_text() for p in bench.run_dir.glob("*/output.log")]
    assert len(logs) == 4 and all(f"reporting to {address}\n" in log for log in logs), logs


def controller(bench: Any, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN401
    return subprocess.run(
        [*tuner_command(), "controller", "--db", bench.db_url, *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        cwd=bench.root,
    )


@pytest.mark.parametrize(
    ("args", "allow", "message"),
    [
        (["--dbmanager-address", "127.0.0.1:0"], "", f"set {ALLOW_TOKENLESS_ENV}=true"),
        (["--dbmanager-address", "0.0.0.0:6789"], "true", "add --dbmanager-advertise-address"),
        (["--dbmanager-advertise-address", "x:1"], "true", "needs --dbmanager-address"),
        (["--dbmanager-address", "6789"], "true", "'6789' is not HOST:PORT"),
    ],
)
def test_dbmanager_address_settings_that_cannot_work_exit_2(
    bench: Any,  # noqa: ANN401
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    allow: str,
    message: str,
) -> None:
    monkeypatch.setenv(ALLOW_TOKENLESS_ENV, allow)
    done = controller(bench, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
