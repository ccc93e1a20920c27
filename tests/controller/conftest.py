"""Fixtures for controller tests: a real suggestion server on a loopback port, a SQLite store
and a local executor in a temp dir, and Experiments whose trial is a small Python program."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suggestion.service import create_server
from tuner.controller import Controller, SuggestionClient
from tuner.executors import LocalExecutor
from tuner.spec import Experiment
from tuner.store import Store

# Prints `loss=<x>` (twice: x + 1, then x) after sleeping --sleep seconds.
TRIAL = r"""
import sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
time.sleep(float(opts.get("sleep", "0")))
print(f"loss={float(opts['x']) + 1}")
print(f"loss={opts['x']}", flush=True)
"""


class Bench:
    """A store, an executor and a suggestion client wired up in ``root``."""

    def __init__(self, root: Path, address: str) -> None:
        self.root = root
        (root / "trial.py").write_text(TRIAL)
        self.store = Store.open(f"sqlite:///{root / 'tuner.db'}")
        self.executor = LocalExecutor(
            root / "runs", default_working_dir=root, grace_period_seconds=2
        )
        self.client = SuggestionClient(address)

    def experiment(
        self,
        name: str = "exp",
        *,
        max_trials: int = 2,
        parallel: int = 2,
        max_failed: int | None = None,
        sleep: float = 0.0,
    ) -> Experiment:
        spec: dict[str, Any] = {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "5"}],
            },
            "parallelTrialCount": parallel,
            "maxTrialCount": max_trials,
            "parameters": [
                {
                    "name": "x",
                    "parameterType": "int",
                    "feasibleSpace": {"min": "0", "max": "100000"},
                }
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "python:3.11",
                                        "command": [
                                            "python3",
                                            "trial.py",
                                            "--x=${trialParameters.x}",
                                            f"--sleep={sleep}",
                                        ],
                                    }
                                ],
                            }
                        }
                    },
                },
            },
        }
        if max_failed is not None:
            spec["maxFailedTrialCount"] = max_failed
        return Experiment.model_validate(
            {
                "apiVersion": "kubeflow.org/v1beta1",
                "kind": "Experiment",
                "metadata": {"name": name},
                "spec": spec,
            }
        )

    def controller(self, experiment: Experiment) -> Controller:
        return Controller(self.store, experiment, self.client, self.executor, poll_interval=0.05)

    def close(self) -> None:
        self.client.close()
        self.store.close()


@pytest.fixture(scope="module")
def suggestion_address() -> Iterator[str]:
    server, port = create_server("127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def bench(tmp_path: Path, suggestion_address: str) -> Iterator[Bench]:
    b = Bench(tmp_path, suggestion_address)
    yield b
    b.close()
