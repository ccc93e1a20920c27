"""The example pipeline end to end on this machine: kfp.local, SubprocessRunner(use_venv=False)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tuner.spec import loads
from tuner.store import ExperimentStatus, Store

EXPERIMENT = "pipeline-knn"


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tuner.db'}"


def test_train_step_gets_exactly_the_best_parameters_in_the_database(
    example: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    task = example.run_locally(root, sqlite_url(tmp_path))

    with Store.open(sqlite_url(tmp_path)) as store:
        best = store.best_trial(EXPERIMENT)
        counts = store.count_trials(EXPERIMENT)
    assert best is not None
    space = loads(example.experiment_template())[0].search_space()
    expected = space.parse(best.parameters)

    received = json.loads(task.outputs["parameters_json"])
    assert received == expected
    assert {name: type(value) for name, value in received.items()} == {"k": int, "weights": str}
    model = json.loads(Path(task.outputs["model"].path).read_text())
    assert (model["k"], model["weights"]) == (expected["k"], expected["weights"])
    assert sum(counts.values()) == 4

    [result_file] = root.glob("*/tune/result")
    result = json.loads(result_file.read_text())
    assert result["status"] == "Succeeded"
    assert result["bestTrial"]["name"] == best.name


def test_failing_experiment_fails_the_tune_step_with_its_reason(
    example: ModuleType, tmp_path: Path, failing_template: str, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="Inner task failed: .*tune"):
        example.run_locally(root, sqlite_url(tmp_path), template=failing_template)
    output = capfd.readouterr().out

    with Store.open(sqlite_url(tmp_path)) as store:
        experiment = store.get_experiment(EXPERIMENT)
    assert experiment.status is ExperimentStatus.FAILED
    assert experiment.reason and experiment.message
    assert f"TuningFailedError: experiment {EXPERIMENT!r} Failed: {experiment.reason}" in output
    assert experiment.message in output
    assert not list(root.glob("*/train")), "train ran after a failed tune step"
