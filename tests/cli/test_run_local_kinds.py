"""`tuner run` with the local executor and trial kinds other than a Job (a subprocess in a
temp dir): a PyTorchJob's primary replica's container runs as one process, with one warning
line per experiment naming what is not applied; an Argo Workflow is refused, pointing to
the kubernetes executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import support
import yaml

TRAIN = "import sys; print(f'loss={float(sys.argv[1]) * 2}')"
# A worker replica that would fail the trial if it ran.
WORKER = "import sys; sys.exit(7)"


def pytorchjob_document(parallel: int = 1, max_trials: int = 2) -> dict[str, Any]:
    document = support.experiment_document(
        "torch",
        command=["python3", "-c", TRAIN, "${trialParameters.lr}"],
        parameters=[support.double_parameter("lr", 0.1, 0.5)],
        parallel=parallel,
        max_trials=max_trials,
        settings={"random_state": "1"},
    )
    main = document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    main["containers"][0] |= {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    worker = {
        "containers": [{"name": "main", "image": "w:1", "command": ["python3", "-c", WORKER]}]
    }
    document["spec"]["trialTemplate"]["trialSpec"] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                # The Worker first: the Master is the primary replica wherever it stands.
                "Worker": {"replicas": 2, "template": {"spec": worker}},
                "Master": {"replicas": 1, "template": {"spec": main}},
            }
        },
    }
    return document


def test_pytorchjob_runs_its_masters_container_and_says_once_what_it_ignores(tmp_path: Path):
    done = support.tuner_run(tmp_path, pytorchjob_document())
    assert done.returncode == 0, done.stderr
    assert "Succeeded" in done.stdout and "loss" in done.stdout, done.stdout
    warnings = [line for line in done.stderr.splitlines() if "ignores:" in line]
    assert len(warnings) == 1, done.stderr
    [warning] = warnings
    assert "image 'python:3.11'" in warning
    assert "1 other container(s) or replica(s): main at spec.pytorchReplicaSpecs.Worker" in warning
    # The cpu limit applies locally (thread counts); the memory limit does not.
    assert "other than the cpu and GPU limits: limits.memory" in warning
    assert "limits.cpu" not in warning


def test_argo_workflow_is_refused_naming_the_kind_and_the_kubernetes_executor(tmp_path: Path):
    document = yaml.safe_load((support_root() / "examples/katib/argo-workflow.yaml").read_text())
    document["metadata"].pop("namespace")
    done = support.tuner_run(tmp_path, document)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "a Workflow (argoproj.io/v1alpha1) has no single primary container" in done.stderr
    assert "--executor kubernetes" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_tekton_pipelinerun_is_refused_naming_the_kind(tmp_path: Path):
    path = support_root() / "examples/katib/tekton-pipeline-run.yaml"
    done = support.tuner_run(tmp_path, yaml.safe_load(path.read_text()))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "a PipelineRun (tekton.dev/v1) has no single primary container" in done.stderr


def support_root() -> Path:
    return Path(__file__).resolve().parents[2]
