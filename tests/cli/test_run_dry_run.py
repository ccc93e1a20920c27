"""`tuner run FILE --dry-run` as a user runs it (a subprocess in a temp dir): the first trials
of every example Experiment as the objects the kubernetes executor would create, validated
strictly (fixture ``validate_trial``, tests/conftest.py: Jobs against Kubernetes' schema,
custom resources against their CRD's) or, for the local executor, as commands; neither the
database nor a cluster is touched (the kubeconfig points at a closed port). The Katib corpus
in examples/katib/ has its own test (tests/cli/test_katib_corpus.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import HANG_GUARD_SECONDS

from tuner.spec import load_file, loads, pod_templates

REPO = Path(__file__).resolve().parents[2]
LABEL_EXPERIMENT, LABEL_TRIAL = "katib.kubeflow.org/experiment", "katib.kubeflow.org/trial"


def experiment_documents() -> list[tuple[str, dict[str, Any]]]:
    """(id, document) of every Experiment under examples/, manifests/examples/ and
    tests/spec/valid/."""
    found = []
    for root in ("examples", "manifests/examples", "tests/spec/valid"):
        for path in sorted((REPO / root).rglob("*.yaml")):
            if path.is_relative_to(REPO / "examples" / "katib"):
                continue
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            for index, doc in enumerate(docs):
                if doc.get("kind") == "Experiment":
                    found.append((f"{path.relative_to(REPO)}[{index}]", doc))
    return found


def runs_as_jobs(doc: dict[str, Any]) -> bool:
    """A trial template (of any kind) whose metrics the kubernetes executor can collect."""
    spec = doc["spec"]
    collector = ((spec.get("metricsCollectorSpec") or {}).get("collector") or {}).get("kind")
    return collector not in ("File", "Push")


DOCUMENTS = experiment_documents()
JOB_DOCUMENTS = [(i, d) for i, d in DOCUMENTS if runs_as_jobs(d)]
REFUSED_DOCUMENTS = [(i, d) for i, d in DOCUMENTS if not runs_as_jobs(d)]


def tuner(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("tuner")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tuner.cli"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path, unused_tcp_port: int) -> Path:
    """A kubeconfig whose API server nobody listens on: any contact would fail the run."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{unused_tcp_port}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def dry_run(tmp_path: Path, doc: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc))
    return tuner(tmp_path, "run", str(path), "--dry-run", f"--db=sqlite:///{tmp_path}/t.db", *args)


def test_there_are_examples_of_both_kinds():
    assert len(JOB_DOCUMENTS) >= 6 and len(REFUSED_DOCUMENTS) >= 1, DOCUMENTS


@pytest.mark.parametrize(("where", "doc"), JOB_DOCUMENTS, ids=[i for i, _ in JOB_DOCUMENTS])
def test_kubernetes_dry_run_prints_the_first_jobs_and_touches_nothing(
    tmp_path, where, doc, validate_trial, unreachable_kubeconfig
):
    done = dry_run(tmp_path, doc, "--executor=kubernetes", f"--kubeconfig={unreachable_kubeconfig}")

    assert done.returncode == 0, done.stderr
    jobs = list(yaml.safe_load_all(done.stdout))
    # parallelTrialCount (Katib's default 3 when unset; never above maxTrialCount)
    assert len(jobs) == loads(yaml.safe_dump(doc))[0].spec.parallel_trial_count
    name = doc["metadata"]["name"]
    trial_spec = doc["spec"]["trialTemplate"]["trialSpec"]
    for job in jobs:
        assert validate_trial(job) is not None, "no schema for this kind"
        assert (job["apiVersion"], job["kind"]) == (trial_spec["apiVersion"], trial_spec["kind"])
        trial = job["metadata"]["name"]
        assert trial.startswith(f"{name}-")  # named as the controller names trials
        assert job["metadata"]["namespace"] == doc["metadata"].get("namespace", "default")
        for labels in [job["metadata"]["labels"]] + [
            t["metadata"]["labels"] for t in pod_templates(job)
        ]:
            assert labels[LABEL_EXPERIMENT] == name and labels[LABEL_TRIAL] == trial
        assert "${" not in yaml.safe_dump(job), f"{trial}: a placeholder is left"
    assert len({j["metadata"]["name"] for j in jobs}) == len(jobs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml", "kubeconfig"]


@pytest.mark.parametrize(("where", "doc"), REFUSED_DOCUMENTS, ids=[i for i, _ in REFUSED_DOCUMENTS])
def test_kubernetes_dry_run_refuses_what_the_executor_cannot_run(tmp_path, where, doc):
    done = dry_run(tmp_path, doc, "--executor=kubernetes")

    assert done.returncode == 2
    assert done.stdout == ""
    assert "with the kubernetes executor use StdOut" in done.stderr, done.stderr
    assert not (tmp_path / "t.db").exists()


def test_local_dry_run_prints_what_each_trial_would_run(tmp_path):
    path = REPO / "examples" / "quickstart.yaml"
    (experiment,) = load_file(path)
    done = tuner(tmp_path, "run", str(path), "--dry-run")

    assert done.returncode == 0, done.stderr
    trials = list(yaml.safe_load_all(done.stdout))
    assert len(trials) == experiment.spec.parallel_trial_count
    space = experiment.search_space()
    for trial in trials:
        assert trial["experiment"] == "quickstart"
        assert trial["env"]["KATIB_TRIAL_NAME"] == trial["trial"]
        assert trial["workingDir"] == str(path.parent)  # the Experiment file's directory
        values = space.parse({k: str(v) for k, v in trial["parameters"].items()})
        assert f"--x={values['x']}" in trial["argv"]
    assert list(tmp_path.iterdir()) == []  # no tuner.db, no runs/
