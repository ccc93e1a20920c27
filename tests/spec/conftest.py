"""Builders shared by the spec tests, given to them as the ``kit`` fixture (the suite runs
with ``--import-mode=importlib``, so test modules cannot import a helper module)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tuner.spec import Experiment, SpecError, SpecIssue, loads


class SpecKit:
    """A minimal valid Experiment document (one double parameter ``lr``, a Job trial) and
    ways to load it through the YAML path, as ``tuner run`` does."""

    @staticmethod
    def job(command: list[Any], **container: Any) -> dict[str, Any]:
        """A batch/v1 Job trialSpec whose only container is named ``trainer``."""
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "trainer",
                                "image": "python:3.12",
                                "command": command,
                                **container,
                            }
                        ],
                    }
                }
            },
        }

    @staticmethod
    def doc(**spec: Any) -> dict[str, Any]:
        """A valid Experiment document (one double parameter ``lr``) with ``spec`` keys replaced."""
        doc: dict[str, Any] = {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "exp"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": "0.1"},
                    }
                ],
                "trialTemplate": {
                    "primaryContainerName": "trainer",
                    "trialParameters": [{"name": "learningRate", "reference": "lr"}],
                    "trialSpec": SpecKit.job(
                        ["python3", "train.py", "--lr=${trialParameters.learningRate}"]
                    ),
                },
            },
        }
        doc["spec"].update(copy.deepcopy(spec))
        return doc

    @staticmethod
    def load(doc: dict[str, Any]) -> Experiment:
        """Load one document through the YAML path, as ``tuner run`` does."""
        [experiment] = loads(yaml.safe_dump(doc, sort_keys=False))
        return experiment

    @staticmethod
    def issues(doc: dict[str, Any]) -> list[SpecIssue]:
        with pytest.raises(SpecError) as caught:
            loads(yaml.safe_dump(doc, sort_keys=False))
        return caught.value.issues

    @staticmethod
    def paths(doc: dict[str, Any]) -> list[str]:
        return [issue.path for issue in SpecKit.issues(doc)]


@pytest.fixture
def kit() -> SpecKit:
    return SpecKit()
