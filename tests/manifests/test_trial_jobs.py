"""The Jobs ``tuner run --executor kubernetes --dry-run`` prints for every example Experiment
validate against the pinned Kubernetes schemas (strict) and pass the checks schemas miss."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner.executors._kubernetes_jobs import render_job_manifests
from tuner.space import Parameter, ParameterType
from tuner.spec import Experiment, load_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p
    for p in [
        *(REPO / "examples").rglob("*.yaml"),
        *(REPO / "manifests" / "examples").glob("*.yaml"),
    ]
    # The Katib corpus (examples/katib/) has its own test: tests/cli/test_katib_corpus.py.
    if not p.is_relative_to(REPO / "examples" / "katib")
    and any(d and d.get("kind") == "Experiment" for d in yaml.safe_load_all(p.read_text()))
)
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_EXPERIMENT, LABEL_TRIAL = "katib.kubeflow.org/experiment", "katib.kubeflow.org/trial"


def assignments(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Two trials at opposite corners of the space (as many as a dry run shows at most)."""
    space = experiment.search_space()
    low = {p.name: _corner(p, 0) for p in space.parameters}
    high = {p.name: _corner(p, -1) for p in space.parameters}
    name = experiment.metadata.name
    return dict(
        list({f"{name}-dry0": low, f"{name}-dry1": high}.items())[
            : experiment.spec.parallel_trial_count
        ]
    )


def _corner(p: Parameter, end: int) -> Any:
    if p.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        return p.values[end]
    bound = p.min if end == 0 else p.max
    assert bound is not None
    return p.nearest(bound)


def test_there_are_examples_to_check():
    assert len(EXAMPLES) >= 3, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_dry_run_jobs_of_every_example_validate(path, validate):
    for experiment in load_file(path):
        trials = assignments(experiment)
        jobs = render_job_manifests(experiment, trials)
        assert [j["metadata"]["name"] for j in jobs] == list(trials)
        template = experiment.spec.trial_template
        for job in jobs:
            validate(job)
            name = job["metadata"]["name"]
            assert len(name) <= 63 and DNS1123_LABEL.fullmatch(name), name
            assert job["metadata"]["namespace"] == experiment.metadata.namespace
            pod = job["spec"]["template"]
            assert pod["spec"]["restartPolicy"] in ("Never", "OnFailure")
            primary = [
                c for c in pod["spec"]["containers"] if c["name"] == template.primary_container_name
            ]
            assert len(primary) == 1, name
            for labels in (job["metadata"]["labels"], pod["metadata"]["labels"]):
                assert labels[LABEL_EXPERIMENT] == experiment.metadata.name
                assert labels[LABEL_TRIAL] == name
            assert template.primary_pod_labels.items() <= pod["metadata"]["labels"].items()
            assert "${" not in yaml.safe_dump(job), f"{name}: a placeholder is left"
