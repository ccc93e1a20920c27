"""`tuner validate` checks the algorithm and early-stopping names and settings as `tuner run`
does without --suggestion-address (issue 11, item 5): what run refuses, validate refuses with
the same message; Katib YAML with hyperopt's tpe settings is valid for both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import support
import yaml


def tuner(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        capture_output=True,
        text=True,
        timeout=support.HANG_GUARD_SECONDS,
        cwd=cwd,
    )


def write(tmp_path: Path, **spec: Any) -> str:
    document = support.experiment_document(
        "algo",
        command=[sys.executable, "-c", "print('loss=${trialParameters.x}')"],
        parameters=[support.int_parameter("x", 1, 9)],
        parallel=1,
        max_trials=2,
        **spec,
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return "exp.yaml"


REFUSED = [
    ({"algorithm": "bayes"}, "unknown algorithm 'bayes'; known algorithms: "),
    ({"algorithm": "tpe", "settings": {"gamma": "1.5"}}, "'gamma': '1.5' is not a number"),
    ({"algorithm": "grid", "settings": {"n_EI_candidates": "3"}}, "not a setting of grid"),
    (
        {
            "earlyStopping": {
                "algorithmName": "medianstop",
                "algorithmSettings": [{"name": "start_step", "value": "0"}],
            }
        },
        "start_step",
    ),
]


@pytest.mark.parametrize(("spec", "message"), REFUSED, ids=["bayes", "gamma", "grid", "stop"])
def test_validate_refuses_what_run_refuses_with_the_same_message(
    tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    name = write(tmp_path, **spec)
    validated = tuner(tmp_path, "validate", name)
    ran = tuner(tmp_path, "run", name, "--no-progress")
    assert validated.returncode == 2 and ran.returncode == 2, validated.stdout + ran.stderr
    [line] = validated.stdout.splitlines()
    assert line.startswith(f"{name}: ") and message in line
    assert line in ran.stderr.splitlines()
    assert f"{name}: valid" not in validated.stdout


def test_katib_yaml_with_hyperopts_tpe_settings_is_valid_and_runs(tmp_path: Path) -> None:
    settings = {
        "gamma": "0.25",
        "prior_weight": "1.0",
        "n_EI_candidates": "24",
        "random_state": "1",
    }
    name = write(tmp_path, algorithm="tpe", settings=settings)
    validated = tuner(tmp_path, "validate", name)
    assert validated.returncode == 0 and validated.stdout == f"{name}: valid\n", validated.stdout
    ran = tuner(tmp_path, "run", name, "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert "deprecated" not in ran.stderr  # Optuna's warnings for gamma/prior_weight
