"""Pipeline fixtures: the example pipeline module and Experiment texts built from its YAML."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

pytest.importorskip("kfp", reason="kfp is not installed: pip install 'tuner[pipeline]'")

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "pipeline"


@pytest.fixture(scope="session")
def example() -> ModuleType:
    """examples/pipeline/pipeline.py, imported by path (examples/ is not a package)."""
    path = EXAMPLE_DIR / "pipeline.py"
    spec = importlib.util.spec_from_file_location("tune_and_train_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def failing_template(example: ModuleType) -> str:
    """The example's Experiment with a trial command that always exits 1."""
    experiment = yaml.safe_load(example.experiment_template())
    template = experiment["spec"]["trialTemplate"]
    containers = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    for container in containers:
        # The args stay, ignored: an Experiment must use every trial parameter.
        container["command"] = ["false"]
    return yaml.safe_dump(experiment, sort_keys=False)
