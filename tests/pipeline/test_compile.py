"""Compiling: the example pipeline's three tasks and their data flow, and both tune components."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from kfp import compiler

from tuner.pipeline import DEFAULT_IMAGE, tune_component, tune_container_component


def compile_to_dict(component: Any, path: Path) -> dict[str, Any]:
    compiler.Compiler().compile(component, str(path))
    return yaml.safe_load(path.read_text())


def producer(task: dict[str, Any], kind: str, name: str) -> tuple[str, str]:
    """(producer task, its output) feeding input `name` of `task`; kind is parameter/artifact."""
    source = task["inputs"][kind + "s"][name]["taskOutput" + kind.capitalize()]
    key = source["outputParameterKey" if kind == "parameter" else "outputArtifactKey"]
    return source["producerTask"], key


def test_example_has_prepare_tune_train_wired_by_their_outputs(
    example: ModuleType, tmp_path: Path
) -> None:
    example.compile_pipeline(tmp_path / "pipeline.yaml")
    ir = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    tasks = ir["root"]["dag"]["tasks"]

    assert set(tasks) == {"prepare", "tune", "train"}
    assert producer(tasks["tune"], "parameter", "experiment") == ("prepare", "experiment")
    assert producer(tasks["train"], "artifact", "data") == ("prepare", "data")
    assert producer(tasks["train"], "parameter", "best_parameters_json") == (
        "tune",
        "best_parameters_json",
    )
    assert sorted(tasks["train"]["dependentTasks"]) == ["prepare", "tune"]


def test_example_compiles_with_the_experiment_as_default_input(
    example: ModuleType, tmp_path: Path
) -> None:
    example.compile_pipeline(tmp_path / "pipeline.yaml")
    ir = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    default = ir["root"]["inputDefinitions"]["parameters"]["experiment_template"]["defaultValue"]
    assert yaml.safe_load(default)["metadata"]["name"] == "pipeline-knn"


def test_tune_component_installs_nothing_and_uses_the_given_image(tmp_path: Path) -> None:
    ir = compile_to_dict(tune_component("registry.example/tuner:test"), tmp_path / "tune.yaml")
    container = ir["deploymentSpec"]["executors"]["exec-tune"]["container"]
    assert container["image"] == "registry.example/tuner:test"
    assert not any("pip install" in part for part in container["command"])
    outputs = ir["components"]["comp-tune"]["outputDefinitions"]
    assert set(outputs["parameters"]) == {
        "best_parameters",
        "best_parameters_json",
        "best_objective",
        "experiment_name",
    }
    assert set(outputs["artifacts"]) == {"result"}


def test_container_component_runs_the_step_module_in_the_given_image(tmp_path: Path) -> None:
    component = tune_container_component("registry.example/tuner:test")
    ir = compile_to_dict(component, tmp_path / "tune.yaml")
    container = ir["deploymentSpec"]["executors"]["exec-tune-op-container"]["container"]
    assert container["image"] == "registry.example/tuner:test"
    assert container["command"] == ["python", "-m", "tuner.pipeline"]
    assert tune_container_component().component_spec.implementation.container.image == (
        DEFAULT_IMAGE
    )
