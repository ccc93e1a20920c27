"""`tuner run` end to end, as a user runs it: the CLI in a subprocess, real suggestion server,
real trial processes, a SQLite file in a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import support
import yaml
from support import HANG_GUARD_SECONDS, tuner_command, wait_until

REPO = Path(__file__).resolve().parents[2]

# A trial program driven by its `--key=value` arguments: records its argv under --record as
# <trial>.<pid>.json, reports 0.5 and waits for the file --gate, sleeps --sleep, prints
# `<metric>=<value + 1>` then `<metric>=<value>` (unless --silent), exits with --exit.
TRIAL = r"""
import json, os, sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
if "record" in opts:
    path = os.path.join(opts["record"], f"{opts.get('trial', 'trial')}.{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(sys.argv[1:], f)
if "gate" in opts:  # report once, then wait for the test to open the gate
    print(f"{opts.get('metric', 'loss')}=0.5", flush=True)
    while not os.path.exists(opts["gate"]):
        time.sleep(0.01)
time.sleep(float(opts.get("sleep", "0")))
if "silent" not in opts:
    print(f"epoch 1: {opts.get('metric', 'loss')}={float(opts.get('value', '1')) + 1}")
    print(f"{opts.get('metric', 'loss')}={opts.get('value', '1')}", flush=True)
sys.exit(int(opts.get("exit", "0")))
"""


def parameter(name: str, kind: str, **feasible: Any) -> dict[str, Any]:
    space = {k: (v if k == "list" else str(v)) for k, v in feasible.items()}
    return {"name": name, "parameterType": kind, "feasibleSpace": space}


def experiment(
    name: str,
    parameters: list[dict[str, Any]],
    args: list[str],
    *,
    algorithm: str = "random",
    settings: dict[str, str] | None = None,
    objective: str = "minimize",
    metric: str = "loss",
    goal: float | None = None,
    max_trials: int = 4,
    parallel: int = 2,
    max_failed: int | None = None,
    deadline: int | None = None,
    resume_policy: str | None = None,
) -> dict[str, Any]:
    """A Katib Experiment whose trial runs TRIAL (trial.py beside the YAML) with ``args``;
    ``${trialParameters.<p>}`` for every parameter p, and ``${trialParameters.trialName}``
    when ``args`` use it."""
    settings = settings if settings is not None else {"random_state": "3"}
    uses_name = any("${trialParameters.trialName}" in a for a in args)
    doc = support.experiment_document(
        name,
        command=["python3", "trial.py", *args],
        parameters=parameters,
        trial_parameters={"trialName": "${trialSpec.Name}"} if uses_name else None,
        goal=objective,
        metric=metric,
        algorithm=algorithm,
        settings=settings,
        parallel=parallel,
        max_trials=max_trials,
        max_failed=max_failed,
    )
    if goal is not None:
        doc["spec"]["objective"]["goal"] = goal
    if deadline is not None:
        doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["activeDeadlineSeconds"] = deadline
    if resume_policy is not None:
        doc["spec"]["resumePolicy"] = resume_policy
    return doc


class Workspace:
    """A temp dir holding trial.py, the Experiment file, the database and the run dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "tuner.db"
        self.runs = root / "runs"
        self.output = root / "result.json"
        self.records = root / "records"
        self.records.mkdir()
        (root / "trial.py").write_text(TRIAL)

    def write(self, document: dict[str, Any], name: str = "experiment.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def command(self, path: Path) -> list[str]:
        db, runs, out = f"sqlite:///{self.db}", str(self.runs), str(self.output)
        return [*tuner_command(), "run", str(path), "--db", db, "--run-dir", runs,
                "--output", out, "--poll-interval", "0.05"]  # fmt: skip

    def run(self, path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(path),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        try:
            with sqlite3.connect(self.db, timeout=5) as db:
                return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []  # tables not created yet

    def result(self) -> Any:  # one document, or a list of them for several experiments
        return json.loads(self.output.read_text())

    def trials(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM trials ORDER BY id")]

    def experiment_names(self) -> list[str]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as db:
            return [r[0] for r in db.execute("SELECT name FROM experiments")]


def wait_for(probe: Callable[[], Any]) -> Any:
    return wait_until(probe, "the condition", interval=0.01)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_quickstart_succeeds_with_every_trial_and_a_best_one(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "quickstart.yaml", tmp_path)
    shutil.copy(REPO / "examples" / "quickstart_train.py", tmp_path)
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            *tuner_command(),
            "run",
            "quickstart.yaml",
            "--output",
            str(out),
            "--poll-interval",
            "0.05",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "tuner.db").exists() and (tmp_path / "runs").is_dir()  # the defaults
    result = json.loads(out.read_text())
    assert result["status"] == "Succeeded"
    assert result["reason"] == "ExperimentMaxTrialsReached"
    assert result["trialCounts"]["Succeeded"] == 12 and result["trialCounts"]["total"] == 12
    best = result["bestTrial"]
    assert best["name"].startswith("quickstart-") and best["name"] in done.stdout
    assert isinstance(best["parameters"]["y"], int) and isinstance(best["parameters"]["x"], float)
    assert best["objectiveValue"] == best["metrics"]["loss"]["min"]


def test_goal_reached_stops_early(ws: Workspace) -> None:
    doc = experiment(
        "goal",
        [parameter("v", "double", min=0.5, max=0.9)],
        ["--metric=acc", "--value=${trialParameters.v}"],
        objective="maximize",
        metric="acc",
        goal=0.4,
        max_trials=10,
        parallel=1,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 0, done.stderr
    result = ws.result()
    assert result["reason"] == "ExperimentGoalReached"
    # acc's strategy is max: the first trial reports v+1 > 0.4 already.
    assert result["trialCounts"]["total"] == 1
    assert result["bestTrial"]["objectiveValue"] > 1.4


def test_max_failed_trials_fails_the_experiment(ws: Workspace) -> None:
    doc = experiment(
        "failing",
        [parameter("v", "int", min=1, max=100)],
        ["--value=${trialParameters.v}", "--exit=3"],
        max_trials=6,
        parallel=1,
        max_failed=2,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 1, done.stderr
    result = ws.result()
    assert result["status"] == "Failed" and result["reason"] == "ExperimentFailed"
    assert result["trialCounts"]["Failed"] == 2 and result["trialCounts"]["total"] == 2
    assert all(t["exit_code"] == 3 and "3" in t["message"] for t in ws.trials())


def test_grid_exhaustion_ends_with_its_reason(ws: Workspace) -> None:
    doc = experiment(
        "grid",
        [parameter("a", "int", min=1, max=2), parameter("b", "categorical", list=["x", "y", "z"])],
        ["--value=${trialParameters.a}", "--tag=${trialParameters.b}"],
        algorithm="grid",
        settings={},
        max_trials=20,
        parallel=4,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 0, done.stderr
    result = ws.result()
    assert result["reason"] == "ExperimentSuggestionEndReached"
    assert result["trialCounts"]["Succeeded"] == 6 and result["trialCounts"]["total"] == 6
    points = {(t["parameters"]) for t in ws.trials()}
    assert len(points) == 6


def test_trial_past_its_deadline_is_killed(ws: Workspace) -> None:
    doc = experiment(
        "deadline",
        [parameter("v", "int", min=1, max=9)],
        ["--value=${trialParameters.v}", "--sleep=60"],
        max_trials=1,
        parallel=1,
        deadline=1,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 0, done.stderr  # one completed trial of one: max trials reached
    (trial,) = ws.trials()
    assert trial["status"] == "Failed"
    assert trial["message"].startswith("DeadlineExceeded")


def test_trial_without_objective_is_metrics_unavailable(ws: Workspace) -> None:
    doc = experiment(
        "silent",
        [parameter("v", "int", min=1, max=9)],
        ["--value=${trialParameters.v}", "--silent=1"],
        max_trials=2,
        parallel=2,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 1, done.stderr
    assert {t["status"] for t in ws.trials()} == {"MetricsUnavailable"}
    assert ws.result()["bestTrial"] is None
    assert "never reported the objective metric 'loss'" in ws.trials()[0]["message"]
    # No maxFailedTrialCount: Katib would end Succeeded here; tuner says why it failed.
    assert ws.result()["status"] == "Failed"
    assert ws.result()["reason"] == "ExperimentFailed"
    assert "2 trial(s) MetricsUnavailable" in ws.result()["message"]


def test_observations_are_stored_per_report(ws: Workspace) -> None:
    doc = experiment(
        "obs",
        [parameter("v", "int", min=1, max=9)],
        ["--value=${trialParameters.v}"],
        max_trials=1,
        parallel=1,
    )
    assert ws.run(ws.write(doc)).returncode == 0
    with sqlite3.connect(ws.db) as db:
        rows = db.execute("SELECT metric_name, value FROM observations ORDER BY id").fetchall()
    (trial,) = ws.trials()
    v = float(json.loads(trial["parameters"])["v"])
    assert rows == [("loss", v + 1), ("loss", v)]


def test_spec_error_exits_2_and_creates_no_database(ws: Workspace) -> None:
    doc = experiment("bad", [parameter("v", "int", min=5, max=1)], ["--value=${trialParameters.v}"])
    done = ws.run(ws.write(doc))
    assert done.returncode == 2
    assert "spec.parameters[0].feasibleSpace" in done.stderr
    assert ws.experiment_names() == []


def test_invalid_algorithm_setting_exits_2_naming_it_and_writes_nothing(ws: Workspace) -> None:
    doc = experiment(
        "badsetting",
        [parameter("v", "int", min=1, max=9)],
        ["--value=${trialParameters.v}"],
        settings={"random_state": "many"},
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 2, done.stderr
    assert "random_state" in done.stderr
    assert ws.experiment_names() == []
    assert not ws.runs.exists() or not any(ws.runs.iterdir())


def test_shell_syntax_in_a_value_is_one_literal_argument(ws: Workspace) -> None:
    pwned = ws.root / "pwned"
    evil = f"$(touch {pwned}); echo"
    doc = experiment(
        "inject",
        [parameter("c", "categorical", list=[evil])],
        [
            "--value=1",
            "--choice=${trialParameters.c}",
            f"--record={ws.records}",
            "--trial=${trialParameters.trialName}",
        ],
        max_trials=1,
        parallel=1,
    )
    done = ws.run(ws.write(doc))
    assert done.returncode == 0, done.stderr
    (record,) = ws.records.iterdir()
    argv = json.loads(record.read_text())
    assert f"--choice={evil}" in argv
    assert not pwned.exists()


def test_restart_with_raised_budget_when_resume_policy_allows(ws: Workspace) -> None:
    doc = experiment(
        "longrun",
        [parameter("v", "int", min=1, max=50)],
        ["--value=${trialParameters.v}"],
        max_trials=2,
        parallel=2,
        resume_policy="LongRunning",
    )
    assert ws.run(ws.write(doc)).returncode == 0
    doc["spec"]["maxTrialCount"] = 5
    done = ws.run(ws.write(doc))
    assert done.returncode == 0, done.stderr
    assert ws.result()["trialCounts"]["Succeeded"] == 5
    assert len({t["parameters"] for t in ws.trials()}) == 5


def test_finished_experiment_is_reported_not_rerun(ws: Workspace) -> None:
    doc = experiment(
        "once",
        [parameter("v", "int", min=1, max=50)],
        ["--value=${trialParameters.v}"],
        max_trials=2,
        parallel=2,
    )
    path = ws.write(doc)
    assert ws.run(path).returncode == 0
    first = ws.result()
    assert ws.run(path).returncode == 0
    assert ws.result()["bestTrial"] == first["bestTrial"] and len(ws.trials()) == 2


def test_raising_budget_with_resume_policy_never_is_refused(ws: Workspace) -> None:
    doc = experiment(
        "never",
        [parameter("v", "int", min=1, max=50)],
        ["--value=${trialParameters.v}"],
        max_trials=2,
        parallel=2,
    )
    assert ws.run(ws.write(doc)).returncode == 0
    doc["spec"]["maxTrialCount"] = 4
    done = ws.run(ws.write(doc))
    assert done.returncode == 2
    assert "resumePolicy" in done.stderr and len(ws.trials()) == 2


def test_changed_spec_is_refused_naming_the_field(ws: Workspace) -> None:
    doc = experiment(
        "fixed",
        [parameter("v", "int", min=1, max=50)],
        ["--value=${trialParameters.v}"],
        max_trials=2,
        parallel=2,
    )
    assert ws.run(ws.write(doc)).returncode == 0
    doc["spec"]["parameters"][0]["feasibleSpace"]["max"] = "60"
    done = ws.run(ws.write(doc))
    assert done.returncode == 2
    assert "spec.parameters[0].feasibleSpace.max: stored '50', file '60'" in done.stderr


def test_multi_document_file_runs_each_experiment(ws: Workspace) -> None:
    docs = [
        experiment(
            name,
            [parameter("v", "int", min=1, max=50)],
            ["--value=${trialParameters.v}"],
            max_trials=2,
            parallel=2,
        )
        for name in ("first", "second")
    ]
    path = ws.root / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    done = ws.run(path)
    assert done.returncode == 0, done.stderr
    results = ws.result()
    assert [r["name"] for r in results] == ["first", "second"]
    assert all(r["trialCounts"]["Succeeded"] == 2 for r in results)


def test_working_dir_is_the_experiment_files_directory(ws: Workspace, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    doc = experiment(
        "cwd",
        [parameter("v", "int", min=1, max=9)],
        ["--value=${trialParameters.v}"],
        max_trials=1,
        parallel=1,
    )
    path = ws.write(doc)
    done = subprocess.run(
        [
            *tuner_command(),
            "run",
            str(path),
            "--db",
            f"sqlite:///{ws.db}",
            "--run-dir",
            str(ws.runs),
            "--poll-interval",
            "0.05",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr  # trial.py is found beside the YAML
    assert ws.trials()[0]["status"] == "Succeeded"


def test_metrics_are_stored_while_the_trial_runs(ws: Workspace) -> None:
    gate = ws.root / "gate"
    args = ["--value=${trialParameters.v}", f"--gate={gate}"]
    doc = experiment("live", [parameter("v", "int", min=1, max=9)], args, max_trials=1, parallel=1)
    proc = subprocess.Popen(
        ws.command(ws.write(doc)), cwd=ws.root, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        join = "SELECT t.status, o.value FROM observations o JOIN trials t ON t.id = o.trial_id"
        assert wait_for(lambda: ws.query(join)) == [("Running", 0.5)]  # before it ended
    finally:
        gate.touch()
        _, err = proc.communicate(timeout=HANG_GUARD_SECONDS)
    assert proc.returncode == 0, err
    assert ws.query("SELECT value FROM observations ORDER BY id")[0] == (0.5,)


def test_sigterm_kills_running_trials_and_leaves_the_experiment_resumable(ws: Workspace) -> None:
    gate = ws.root / "closed"
    args = ["--value=${trialParameters.v}", f"--gate={gate}"]
    doc = experiment("stopped", [parameter("v", "int", min=1, max=99)], args, max_trials=4)
    path = ws.write(doc)
    proc = subprocess.Popen(
        ws.command(path), cwd=ws.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    wait_for(lambda: len(ws.query("SELECT 1 FROM trials WHERE status = 'Running'")) == 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_GUARD_SECONDS)
    assert proc.returncode == 130, err
    assert {t["status"] for t in ws.trials()} == {"Killed"}
    assert ws.query("SELECT status, lease_owner FROM experiments") == [("Running", None)]

    gate.touch()
    done = ws.run(path)
    assert done.returncode == 0, done.stderr
    counts = ws.result()["trialCounts"]
    assert counts["Killed"] == 2 and counts["Succeeded"] == 2  # Killed count as completed


@pytest.mark.parametrize("algorithm", ["random", "grid", "bayesianoptimization", "tpe"])
def test_sklearn_examples_run(tmp_path: Path, algorithm: str) -> None:
    pytest.importorskip("sklearn")
    example = REPO / "examples" / "sklearn"
    shutil.copy(example / "train_digits.py", tmp_path)
    doc = yaml.safe_load((example / f"digits-{algorithm}.yaml").read_text())
    doc["spec"]["maxTrialCount"] = 3  # the quick setting: one round of 3 parallel trials
    (tmp_path / "digits.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "out.json"
    done = subprocess.run(
        [*tuner_command(), "run", "digits.yaml", "--output", str(out), "--poll-interval", "0.05"],
        cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["trialCounts"]["Succeeded"] == 3
    assert result["bestTrial"]["objectiveValue"] > 0.5  # far better than chance (0.1)
