"""The File collector end to end: `tuner run` in a subprocess, real trials writing their
metrics file line by line, Katib's shared default path remapped per trial, and a path that
names the trial kept as written."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import support

from tuner.store import Store, TrialStatus

# Writes 4 reports of loss (x - step) to the file given as argv[2], one line at a time with
# a pause, in the format argv[3]; prints a decoy on stdout that File must not read; records
# TUNER_METRICS_FILE in <trial name>.env.
WRITER = r"""
import json, os, sys, time
x, path, fmt = float(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(os.environ["KATIB_TRIAL_NAME"] + ".env", "w") as f:
    f.write(os.environ["TUNER_METRICS_FILE"])
print("loss=999", flush=True)
with open(path, "a") as f:
    for step in range(4):
        loss = x - step
        f.write(json.dumps({"loss": str(loss), "epoch": step}) if fmt == "JSON" else f"loss={loss}")
        f.write("\n")
        f.flush()
        time.sleep(0.05)
"""


def experiment(name: str, path: str | None, file_format: str, args: list[str]) -> dict[str, Any]:
    """Grid over x in 10, 20 (one trial at a time) running WRITER with ``args``, which may
    use ``${trialParameters.trialName}``."""
    file_system_path: dict[str, str] = {"kind": "File", "format": file_format}
    if path is not None:
        file_system_path["path"] = path
    trial_parameters = {}
    if any("trialParameters.trialName" in a for a in args):
        trial_parameters["trialName"] = "${trialSpec.Name}"
    return support.experiment_document(
        name,
        command=["python3", "writer.py", "${trialParameters.x}", *args, file_format],
        parameters=[support.discrete_parameter("x", [10, 20])],
        trial_parameters=trial_parameters,
        goal="maximize",
        algorithm="grid",
        parallel=1,
        max_trials=2,
        metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": file_system_path},
        },
    )


def run(tmp_path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return support.tuner_run(tmp_path, document, {"writer.py": WRITER})


def stored(tmp_path: Path, name: str) -> dict[float, tuple[Any, list[tuple[int | None, float]]]]:
    """x -> (trial, [(step, loss)...])."""
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        return {
            float(t.parameters["x"]): (
                t,
                [(o.step, o.value) for o in store.get_observations(t.name, "loss")],
            )
            for t in store.list_trials(name)
        }


def test_katibs_default_path_is_remapped_into_each_trials_directory(tmp_path: Path) -> None:
    # Katib's default path, given to the trial as an argument, as Katib examples do.
    done = run(tmp_path, experiment("file-text", None, "TEXT", ["/var/log/katib/metrics.log"]))

    assert done.returncode == 0, done.stderr
    for x, (trial, log) in stored(tmp_path, "file-text").items():
        assert trial.status is TrialStatus.SUCCEEDED
        assert log == [(step, x - step) for step in range(4)]
        assert trial.objective_value == x  # maximize: max over the file's reports
        remapped = tmp_path / "runs" / trial.name / "metrics.log"
        assert (tmp_path / f"{trial.name}.env").read_text() == str(remapped)
        assert remapped.read_text().splitlines()[0] == f"loss={x}"


def test_json_lines_at_a_path_naming_the_trial_are_read_there(tmp_path: Path) -> None:
    path = f"{tmp_path}/metrics/${{trialSpec.Name}}/log.json"
    document = experiment(
        "file-json", path, "JSON", [f"{tmp_path}/metrics/${{trialParameters.trialName}}/log.json"]
    )

    done = run(tmp_path, document)

    assert done.returncode == 0, done.stderr
    for x, (trial, log) in stored(tmp_path, "file-json").items():
        assert trial.status is TrialStatus.SUCCEEDED
        assert log == [(step, x - step) for step in range(4)]
        own = tmp_path / "metrics" / trial.name / "log.json"
        assert (tmp_path / f"{trial.name}.env").read_text() == str(own)
        assert len(own.read_text().splitlines()) == 4
