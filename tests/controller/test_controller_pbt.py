"""pbt end to end: a real suggestion server over gRPC, the controller, the local executor and
trials that checkpoint. Each trial loads what its parent saved in the checkpoint directory
Katib's ``suggestion_trial_dir`` names, so values flow from parents to children across
generations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import support
import yaml

from tuner.controller import Controller, InvalidSettingsError
from tuner.spec import Experiment
from tuner.store import TrialRecord, TrialStatus

GENERATION = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT = "pbt.suggestion.katib.kubeflow.org/parent"
KATIB_CHECKPOINTS = "/var/log/katib/checkpoints/"

# Loads <checkpoint>/state.json if its parent left one, adds its own lr to the score and its
# name to the lineage, saves, and reports the score. What it loaded goes to loaded.json.
TRIAL = r"""
import json, os, sys
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
ckpt = opts["checkpoint"]
path = os.path.join(ckpt, "state.json")
state = {"score": 0.0, "lineage": []}
if os.path.exists(path):
    with open(path) as f:
        state = json.load(f)
with open(os.path.join(ckpt, "loaded.json"), "w") as f:
    json.dump(state, f)
name = os.environ["KATIB_TRIAL_NAME"]
new = {"score": state["score"] + float(opts["lr"]), "lineage": state["lineage"] + [name]}
with open(path, "w") as f:
    json.dump(new, f)
assert os.environ["TUNER_CHECKPOINT_DIR"] == ckpt.rstrip("/")
print(f"score={new['score']}")
"""


def pbt_experiment(
    name: str = "pbt", max_trials: int = 16, settings: dict[str, str] | None = None
) -> Experiment:
    return support.experiment(
        name,
        command=[
            "python3",
            "trial.py",
            "--lr=${trialParameters.lr}",
            f"--checkpoint={KATIB_CHECKPOINTS}",
        ],
        parameters=[support.double_parameter("lr", 0.1, 1.0)],
        metric="score",
        goal="maximize",
        algorithm="pbt",
        settings={
            "suggestion_trial_dir": KATIB_CHECKPOINTS,
            "n_population": "5",
            "truncation_threshold": "0.2",
            "random_state": "4",
            **(settings or {}),
        },
        parallel=3,
        max_trials=max_trials,
        resumePolicy="FromVolume",  # as Katib's simple-pbt.yaml: restartable with more trials
    )


def saved(bench: Any, experiment: str, trial: str, file: str = "state.json") -> dict[str, Any]:
    path = bench.root / "runs" / "_checkpoints" / experiment / trial / file
    return json.loads(path.read_text())


def run(bench: Any, experiment: Experiment) -> list[TrialRecord]:
    (bench.root / "trial.py").write_text(TRIAL)
    Controller(bench.store, experiment, bench.client, bench.executor, poll_interval=0.05).run()
    return bench.store.list_trials(experiment.metadata.name)


def test_children_load_their_parents_checkpoint_across_generations(bench: Any) -> None:
    trials = run(bench, pbt_experiment())
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 16
    by_name = {t.name: t for t in trials}
    generations = {int(t.labels[GENERATION]) for t in trials}
    assert generations >= {0, 1, 2}, generations
    children = [t for t in trials if PARENT in t.labels]
    assert len(children) >= 5
    for child in children:
        parent = by_name[child.labels[PARENT]]
        assert int(child.labels[GENERATION]) == int(parent.labels[GENERATION]) + 1
        # The child started from exactly what its parent saved...
        assert saved(bench, "pbt", child.name, "loaded.json") == saved(bench, "pbt", parent.name)
        # ...and carried it on: its lineage runs back through every ancestor.
        lineage = saved(bench, "pbt", child.name)["lineage"]
        assert lineage[-2:] == [parent.name, child.name]
        assert len(lineage) == int(child.labels[GENERATION]) + 1
        expected = parent.objective_value + float(child.parameters["lr"])  # type: ignore[operator]
        assert child.objective_value == pytest.approx(expected)
    for root in (t for t in trials if PARENT not in t.labels):
        assert root.labels[GENERATION] == "0"
        assert saved(bench, "pbt", root.name, "loaded.json") == {"score": 0.0, "lineage": []}


def test_a_restarted_suggestion_server_continues_the_population(bench: Any, tmp_path: Path) -> None:
    from suggestion.service import create_server
    from tuner.controller import SuggestionClient

    first = run(bench, pbt_experiment(max_trials=8))
    # A new server (nothing in memory) and a raised budget: the controller resumes.
    server, port = create_server("127.0.0.1:0")
    try:
        bench.client = SuggestionClient(f"127.0.0.1:{port}")
        trials = run(bench, pbt_experiment(max_trials=14))
    finally:
        bench.client.close()
        server.stop(None)
    assert [t.name for t in trials[:8]] == [t.name for t in first]
    later = trials[8:]
    assert later and all(t.status is TrialStatus.SUCCEEDED for t in later)
    # The new server bred the next generation from the old server's trials.
    names = {t.name for t in trials}
    assert any(PARENT in t.labels and t.labels[PARENT] in names for t in later)
    members = [(t.labels[GENERATION], t.labels["tuner/pbt-member"]) for t in trials]
    assert len(set(members)) == len(members)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"n_population": "4"}, "n_population"),
        ({"truncation_threshold": "1.5"}, "truncation_threshold"),
        ({"resample_probability": "-0.1"}, "resample_probability"),
        ({"suggestion_trial_dir": "relative/dir"}, "suggestion_trial_dir"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    bench: Any, settings: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidSettingsError, match=named):
        run(bench, pbt_experiment(settings=settings))
    assert not list((bench.root / "runs").glob("*")), "nothing may run"


# Katib's examples/v1beta1/hp-tuning/simple-pbt.yaml as published.
KATIB_SIMPLE_PBT = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  namespace: kubeflow
  name: simple-pbt
spec:
  maxTrialCount: 2
  parallelTrialCount: 2
  maxFailedTrialCount: 3
  resumePolicy: FromVolume
  objective:
    type: maximize
    goal: 0.99
    objectiveMetricName: Validation-accuracy
  algorithm:
    algorithmName: pbt
    algorithmSettings:
      - name: suggestion_trial_dir
        value: /var/log/katib/checkpoints/
      - name: n_population
        value: '40'
      - name: truncation_threshold
        value: '0.2'
  parameters:
    - name: lr
      parameterType: double
      feasibleSpace:
        min: '0.0001'
        max: '0.02'
        step: '0.0001'
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - name: learningRate
        description: Learning rate for training the model
        reference: lr
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            containers:
              - name: training-container
                image: ghcr.io/kubeflow/katib/simple-pbt:latest
                command:
                  - "python3"
                  - "/opt/pbt/pbt_test.py"
                  - "--epochs=20"
                  - "--lr=${trialParameters.learningRate}"
                  - "--checkpoint=/var/log/katib/checkpoints/"
            restartPolicy: Never
"""


def test_katibs_simple_pbt_yaml_runs_with_tuner_run(tmp_path: Path) -> None:
    document = yaml.safe_load(KATIB_SIMPLE_PBT)
    # The trial script lives beside the YAML, not in Katib's image.
    pod = document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    pod["containers"][0]["command"][1] = "pbt_train.py"
    files = {"pbt_train.py": (Path(__file__).parents[2] / "examples" / "pbt_train.py").read_text()}

    # As published, Katib's own webhook refuses it (maxFailedTrialCount 3 > maxTrialCount
    # 2); so does tuner, with the same rule.
    refused = support.tuner_run(tmp_path, document, files)
    assert refused.returncode == 2
    assert "spec.maxFailedTrialCount: 3 is greater than maxTrialCount 2" in refused.stderr

    # Katib's e2e test runs it with these thresholds (run-e2e-experiment.py).
    document["spec"] |= {"maxTrialCount": 2, "parallelTrialCount": 1, "maxFailedTrialCount": 0}
    done = support.tuner_run(tmp_path, document, files)

    assert done.returncode == 0, done.stderr
    assert "trials: 2 Succeeded" in done.stdout
    checkpoints = tmp_path / "runs" / "_checkpoints" / "simple-pbt"
    saved = [json.loads(p.read_text()) for p in checkpoints.glob("*/training.json")]
    assert [state["epoch"] for state in saved] == [20, 20]
