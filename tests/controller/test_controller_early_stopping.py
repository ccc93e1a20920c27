"""Early stopping end to end: `tuner run` gets medianstop rules from its in-process suggestion
server (which reads the succeeded trials' logs back from the run's DBManager), kills a trial
that is clearly worse and records it EarlyStopped, while good trials succeed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import support

from tuner.store import Store, TrialStatus

# Loss curves by name. "bad" would print 600 high losses over 30 s; the others are quick,
# except "good-late", which runs after "bad" while the rule is in force. Reports go to stdout
# or, with --push, through tuner.report_metrics.
CURVES = r"""
import sys, time
curve, push = sys.argv[1], "--push" in sys.argv
if push:
    import tuner
def report(step, loss):
    if push:
        tuner.report_metrics({"loss": loss}, step=step)
    else:
        print(f"step {step}: loss={loss}", flush=True)
if curve == "bad":
    for step in range(600):
        report(step, 5.0 + step)
        time.sleep(0.05)
else:
    start = {"good-a": 1.0, "good-b": 1.1, "good-late": 0.9}[curve]
    for step in range(3):
        report(step, start - 0.1 * step)
        time.sleep(0.1 if curve == "good-late" else 0)
"""

MEDIANSTOP = {
    "algorithmName": "medianstop",
    "algorithmSettings": [
        {"name": "min_trials_required", "value": "2"},
        {"name": "start_step", "value": "2"},
    ],
}


def experiment(name: str, push: bool, early_stopping: dict[str, Any]) -> dict[str, Any]:
    """A grid over the curves in order, one trial at a time."""
    curves = ["good-a", "good-b", "bad", "good-late"]
    command = ["python3", "curves.py", "${trialParameters.curve}"] + (["--push"] if push else [])
    return support.experiment_document(
        name,
        command=command,
        parameters=[
            {"name": "curve", "parameterType": "categorical", "feasibleSpace": {"list": curves}}
        ],
        algorithm="grid",
        parallel=1,
        max_trials=len(curves),
        earlyStopping=early_stopping,
        metricsCollectorSpec={"collector": {"kind": "Push" if push else "StdOut"}},
    )


def run(tmp_path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return support.tuner_run(tmp_path, document, {"curves.py": CURVES})


@pytest.mark.parametrize("push", [False, True], ids=["stdout", "push"])
def test_a_clearly_worse_trial_is_early_stopped_and_good_ones_succeed(
    tmp_path: Path, push: bool
) -> None:
    done = run(tmp_path, experiment("stop", push, MEDIANSTOP))

    assert done.returncode == 0, done.stderr
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        by_curve = {t.parameters["curve"]: t for t in store.list_trials("stop")}
        bad_log = [o.value for o in store.get_observations(by_curve["bad"].name, "loss")]
        experiment_row = store.get_experiment("stop")
    statuses = {curve: t.status for curve, t in by_curve.items()}
    assert statuses == {
        "good-a": TrialStatus.SUCCEEDED,
        "good-b": TrialStatus.SUCCEEDED,
        "bad": TrialStatus.EARLY_STOPPED,
        "good-late": TrialStatus.SUCCEEDED,
    }
    bad = by_curve["bad"]
    # The median of the good trials' first two losses is 1.0; "bad" is above it at step 2.
    assert (bad.message or "").startswith("EarlyStopped: loss ")
    assert "is above 1.0 (medianstop rule)" in (bad.message or "")
    assert 2 <= len(bad_log) < 600
    assert bad.objective_value == 5.0  # its metrics so far, under the min strategy
    # EarlyStopped counts as completed against maxTrialCount, as in Katib.
    assert experiment_row.reason == "ExperimentMaxTrialsReached"
    assert experiment_row.best_trial_name == by_curve["good-late"].name


@pytest.mark.parametrize(
    ("early_stopping", "message"),
    [
        (
            {
                "algorithmName": "medianstop",
                "algorithmSettings": [{"name": "start_step", "value": "0"}],
            },
            "start_step",
        ),
        ({"algorithmName": "no-such-rule"}, "no-such-rule"),
    ],
)
def test_early_stopping_settings_the_service_refuses_exit_2_with_nothing_written(
    tmp_path: Path, early_stopping: dict[str, Any], message: str
) -> None:
    done = run(tmp_path, experiment("refused", False, early_stopping))

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        assert store.list_experiments() == []
