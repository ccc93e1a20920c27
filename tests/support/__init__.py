"""Helpers shared by the test packages: an Experiment document builder, `wait_until`, and the
hang guard. pytest imports tests with ``--import-mode=importlib``, so test modules cannot
import each other; ``pythonpath = ["tests"]`` in pyproject.toml puts this package on the path
on purpose, as ``support`` (and mypy finds it through ``mypy_path``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tuner.spec import Experiment
from tuner.store import TrialRecord, TrialStatus

T = TypeVar("T")

HANG_GUARD_SECONDS = 120.0
"""How long a test waits for something before it gives up. It guards against hangs only:
no test asserts on how long anything took."""


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    *,
    guard: float = HANG_GUARD_SECONDS,
    interval: float = 0.02,
    process: subprocess.Popen[Any] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy and return that; fail naming
    `what` after `guard` seconds, or at once when `process` (the program expected to bring
    the condition about) exits first."""
    give_up = time.monotonic() + guard
    while True:
        exited = process is not None and process.poll() is not None
        value = condition()  # after the poll: what the process did before exiting counts
        if value:
            return value
        if exited:
            assert process is not None
            raise AssertionError(f"the process exited ({process.returncode}) before {what}")
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up after {guard:g}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 60.0) -> tuple[int, str]:
    """GET ``url``: the status and the body, for an error status too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def int_parameter(name: str, low: int, high: int) -> dict[str, Any]:
    return {
        "name": name,
        "parameterType": "int",
        "feasibleSpace": {"min": str(low), "max": str(high)},
    }


def double_parameter(name: str, low: float, high: float) -> dict[str, Any]:
    return {
        "name": name,
        "parameterType": "double",
        "feasibleSpace": {"min": str(low), "max": str(high)},
    }


def discrete_parameter(name: str, values: Sequence[float]) -> dict[str, Any]:
    return {
        "name": name,
        "parameterType": "discrete",
        "feasibleSpace": {"list": [str(v) for v in values]},
    }


def experiment_document(
    name: str = "exp",
    *,
    command: Sequence[str],
    parameters: Sequence[Mapping[str, Any]] = (),
    trial_parameters: Mapping[str, str] | None = None,
    metric: str = "loss",
    goal: str = "minimize",
    algorithm: str = "random",
    settings: Mapping[str, str] | None = None,
    parallel: int | None = None,
    max_trials: int | None = None,
    max_failed: int | None = None,
    image: str | None = "python:3.11",
    container: Mapping[str, Any] | None = None,
    namespace: str | None = None,
    trial_kind: tuple[str, str] = ("batch/v1", "Job"),
    template: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Katib Experiment document whose trial is a ``batch/v1`` Job with one container
    ``main`` running `command` (a local process with the local executor).

    Every parameter gets a trial parameter of its own name; `trial_parameters` adds more
    (name -> reference, e.g. ``{"trial": "${trialSpec.Name}"}``). `container` adds fields
    to the container (e.g. ``env``), `template` to the trialTemplate (e.g. ``retain``);
    `spec` adds camelCase spec fields as given, replacing any built here (e.g. a whole
    ``objective``). `image` None leaves the container without one. `trial_kind` is the
    trial resource's (apiVersion, kind).
    """
    references = {p["name"]: p["name"] for p in parameters} | dict(trial_parameters or {})
    algorithm_spec: dict[str, Any] = {"algorithmName": algorithm}
    if settings:
        algorithm_spec["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    body: dict[str, Any] = {
        "objective": {"type": goal, "objectiveMetricName": metric},
        "algorithm": algorithm_spec,
    }
    for key, value in (
        ("parallelTrialCount", parallel),
        ("maxTrialCount", max_trials),
        ("maxFailedTrialCount", max_failed),
    ):
        if value is not None:
            body[key] = value
    main: dict[str, Any] = {"name": "main", "command": list(command), **(container or {})}
    if image is not None:
        main["image"] = image
    body |= {
        "parameters": [dict(p) for p in parameters],
        "trialTemplate": {
            "primaryContainerName": "main",
            **(template or {}),
            "trialParameters": [{"name": k, "reference": v} for k, v in references.items()],
            "trialSpec": {
                "apiVersion": trial_kind[0],
                "kind": trial_kind[1],
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [main]}}},
            },
        },
        **spec,
    }
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": metadata,
        "spec": body,
    }


def lr_experiment_document(namespace: str, **kwargs: Any) -> dict[str, Any]:
    """Experiment ``exp`` in `namespace`: three trials over ``lr``, two at a time, each running
    ``python3 train.py --lr=<lr>`` in image ``trainer:1`` (what the Kubernetes tests run);
    `kwargs` go to `experiment_document`."""
    return experiment_document(
        "exp",
        namespace=namespace,
        command=["python3", "train.py", "--lr=${trialParameters.lr}"],
        parameters=[double_parameter("lr", 0.01, 0.1)],
        settings={"random_state": "3"},
        parallel=2,
        max_trials=3,
        image="trainer:1",
        **kwargs,
    )


def experiment(name: str = "exp", **kwargs: Any) -> Experiment:
    """`experiment_document(...)` parsed into the typed model (defaults applied)."""
    return Experiment.model_validate(experiment_document(name, **kwargs))


def tuner_command() -> list[str]:
    """The argv that runs the installed `tuner` command (its script, else through Python)."""
    script = Path(sys.executable).with_name("tuner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from tuner.cli import main; sys.exit(main())"]


def trial_record(name: str, status: TrialStatus, **fields: Any) -> TrialRecord:
    """A `TrialRecord` as the store returns it, built in memory: experiment "exp", no
    parameters, objective, summary, executor, exit code, message or log; created now.
    ``fields`` sets any of them."""
    values: dict[str, Any] = {
        "experiment_name": "exp",
        "parameters": {},
        "objective_value": None,
        "metrics_summary": {},
        "executor_kind": None,
        "executor_ref": None,
        "exit_code": None,
        "message": None,
        "log_path": None,
        "created_at": datetime.now(timezone.utc),
        "started_at": None,
        "completed_at": None,
    }
    values.update(fields)
    return TrialRecord(name=name, status=status, **values)


def run_command(path: Path, db: Path, run_dir: Path, *options: str) -> list[str]:
    """The argv of `tuner run <path>` on the SQLite database file `db`, with its trials
    under `run_dir`, the given options and no progress display."""
    return [
        *tuner_command(),
        "run",
        str(path),
        "--db",
        f"sqlite:///{db}",
        "--run-dir",
        str(run_dir),
        *options,
        "--no-progress",
    ]


def stored_observations(db: Path) -> int:
    """How many observations the SQLite database file `db` holds (0 before it exists or
    has its schema); read while a `tuner run` may be writing it."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def tuner_run(
    cwd: Path, document: Mapping[str, Any], files: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tuner run exp.yaml` in a subprocess in `cwd` (database ``tuner.db`` there), after
    writing `document` as exp.yaml and each of `files` (name -> text). The environment is
    this one without KATIB_/TUNER_ variables, so a test's own settings cannot leak in."""
    for name, text in (files or {}).items():
        (cwd / name).write_text(text)
    (cwd / "exp.yaml").write_text(yaml.safe_dump(dict(document)))
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", "run", "exp.yaml", "--db", "sqlite:///tuner.db"]
        + ["--poll-interval", "0.05", "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        env={k: v for k, v in os.environ.items() if not k.startswith(("KATIB_", "TUNER_"))},
    )


def assert_restricted_pod(pod: Mapping[str, Any], where: str = "") -> None:
    """The pod security every tuner workload keeps: non-root, seccomp RuntimeDefault, and
    each container without privilege escalation, on a read-only root, with no capabilities."""
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["runAsNonRoot"] is True, where
        assert security["capabilities"] == {"drop": ["ALL"]}, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
