"""The Katib-style corpus in examples/katib/ (one Experiment per trial kind and per
algorithm/collector combination Katib documents): each file passes ``tuner validate`` and
``tuner run FILE --executor kubernetes --dry-run``, whose custom resources are valid against
their kind's published CRD schema (fixture ``validate_trial``), or is refused on purpose, at
the stage and with the message listed here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner.cli import main
from tuner.spec import load_file

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "examples" / "katib"
FILES = sorted(p.name for p in CORPUS.glob("*.yaml"))

# Refused on purpose: file -> (stage, what the message names).
EXPECTED_REFUSALS = {
    "custom-metrics-collector.yaml": (
        "validate",
        "collector.customCollector: not supported by tuner: custom metrics collector",
    ),
    "tfevent-metrics-collector.yaml": (
        "validate",
        "collector.kind: 'TensorFlowEvent' is not supported by tuner",
    ),
    "nas-darts.yaml": ("validate", "spec.nasConfig: not supported by tuner"),
    "trial-configmap-source.yaml": ("validate", "trialTemplate.configMap: not supported by tuner"),
    # A file inside a pod is out of tuner's reach; the local executor reads it.
    "file-metrics-collector.yaml": ("dry-run", "'File' reads the metrics file on this machine"),
    "file-metrics-collector-json.yaml": (
        "dry-run",
        "'File' reads the metrics file on this machine",
    ),
}
# Features other work adds (issue 11 item 4: Push on Kubernetes):
# until then these may be refused, only with this message; once added they must dry-run.
MAY_BE_REFUSED = {
    "push-metrics-collector.yaml": ("dry-run", "'Push' needs the trial to reach the controller"),
}
# Kinds without a vendored schema (a custom kind of this corpus's own).
NO_SCHEMA = {"example.com/v1"}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_covers_every_kind_and_algorithm():
    kinds, algorithms, collectors = set(), set(), set()
    for name in FILES:
        doc = yaml.safe_load((CORPUS / name).read_text())
        spec = doc["spec"]
        trial_spec = spec["trialTemplate"].get("trialSpec") or {}
        kinds.add(trial_spec.get("kind"))
        algorithms.add(spec["algorithm"]["algorithmName"])
        collectors.add(
            ((spec.get("metricsCollectorSpec") or {}).get("collector") or {}).get("kind")
        )
    assert {
        "Job",
        "TFJob",
        "PyTorchJob",
        "MPIJob",
        "XGBoostJob",
        "JAXJob",
        "PaddleJob",
        "TrainJob",
        "Workflow",
        "PipelineRun",
        "TrainingRun",
    } <= kinds
    assert {
        "random",
        "grid",
        "bayesianoptimization",
        "tpe",
        "multivariate-tpe",
        "cmaes",
        "sobol",
        "hyperband",
        "pbt",
    } <= algorithms
    assert {"StdOut", "File", "TensorFlowEvent", "Custom", "Push"} <= collectors
    assert set(EXPECTED_REFUSALS) | set(MAY_BE_REFUSED) <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_corpus_experiment_validates_and_dry_runs_or_is_refused_on_purpose(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], validate_trial: Any
) -> None:
    path = str(CORPUS / name)
    expected = EXPECTED_REFUSALS.get(name)
    tolerated = MAY_BE_REFUSED.get(name)

    code, out, _ = cli(capsys, "validate", path)
    if expected is not None and expected[0] == "validate":
        assert code == 2 and expected[1] in out, out
        return
    assert code == 0 and out.strip() == f"{path}: valid", out

    db = f"sqlite:///{tmp_path}/t.db"
    code, out, err = cli(capsys, "run", path, "--executor=kubernetes", "--dry-run", f"--db={db}")
    if expected is not None:
        assert code == 2 and expected[1] in err, err
        return
    if tolerated is not None and code != 0:
        assert code == 2 and tolerated[1] in err, err
        return
    assert code == 0, err
    (experiment,) = load_file(path)
    objects = [d for d in yaml.safe_load_all(out) if d]
    assert len(objects) == min(
        experiment.spec.parallel_trial_count, experiment.spec.max_trial_count or 99
    )
    template = experiment.spec.trial_template.trial_spec or {}
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) == (template["apiVersion"], template["kind"])
        assert "${trialParameters." not in yaml.safe_dump(obj)
        checked = validate_trial(obj)
        assert checked is not None or obj["apiVersion"] in NO_SCHEMA, obj["apiVersion"]
    assert not (tmp_path / "t.db").exists()
