"""Katib's SDK metrics path with the local executor (issue 11, item 4): a real `tuner run`
whose trials send what ``kubeflow.katib.report_metrics`` (kubeflow-katib 0.19) sends, over
raw gRPC (``support.katib_sdk`` says why), to the run's DBManager. Reports without a token
count for an experiment that allows tokenless reports and are refused otherwise."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import support
from support.katib_sdk import TRIAL

from tuner.store import Store, TrialStatus
from tuner.tokens import ALLOW_TOKENLESS_ANNOTATION


def document(allow: bool) -> dict[str, Any]:
    doc = support.experiment_document(
        "sdk",
        command=[sys.executable, "trial.py", "${trialParameters.x}"],
        parameters=[
            {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0.25", "0.5"]}}
        ],
        algorithm="grid",
        parallel=1,
        max_trials=2,
        objective={
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["accuracy"],
        },
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )
    if allow:
        doc["metadata"]["annotations"] = {ALLOW_TOKENLESS_ANNOTATION: "true"}
    return doc


def test_reports_in_the_katib_sdks_shape_reach_the_runs_dbmanager(tmp_path: Path) -> None:
    done = support.tuner_run(tmp_path, document(allow=True), {"trial.py": TRIAL})
    assert done.returncode == 0, done.stderr
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        trials = {t.parameters["x"]: t for t in store.list_trials("sdk")}
        observations = {
            x: sorted((o.metric_name, o.value) for o in store.get_observations(t.name))
            for x, t in trials.items()
        }
        best = store.get_experiment("sdk").best_trial_name
    assert {t.status for t in trials.values()} == {TrialStatus.SUCCEEDED}
    assert observations == {
        "0.25": [("accuracy", 0.75), ("loss", 0.25)],
        "0.5": [("accuracy", 0.5), ("loss", 0.5)],
    }
    assert best == trials["0.25"].name


def test_without_the_annotation_a_tokenless_report_is_refused(tmp_path: Path) -> None:
    support.tuner_run(tmp_path, document(allow=False), {"trial.py": TRIAL})
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        trials = store.list_trials("sdk")
        assert all(store.get_observations(t.name) == [] for t in trials)
    assert len(trials) == 2 and {t.status for t in trials} == {TrialStatus.FAILED}
    logs = [p.read_text() for p in tmp_path.glob("runs/*/output.log")]
    assert logs and all("PERMISSION_DENIED" in log for log in logs), json.dumps(logs)
