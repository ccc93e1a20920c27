"""Trials report only for themselves (issue 17, item 8): per-trial tokens checked by a real
DBManager on a loopback port, from real trial-like subprocesses; tokenless reports only for
experiments that allow them; and a real ``tuner run`` giving its trials their tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import support
import yaml

from tuner.dbmanager import serve
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.store import Store
from tuner.tokens import (
    ALLOW_TOKENLESS_ANNOTATION,
    TOKEN_METADATA_KEY,
    TRIAL_TOKEN_ENV,
    ReportPolicy,
    allows_tokenless,
    load_key,
)

KEY = b"k" * 32
REPORT = "import tuner; tuner.report_metrics({'loss': 0.5}, step=1)"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as s:
        s.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
        s.create_trials("exp", [("exp-a", {"x": "1"}), ("exp-b", {"x": "2"})])
        s.create_experiment("other", "default", {"objective": {"type": "minimize"}})
        s.create_trials("other", [("other-a", {"x": "1"})])
        yield s


def report(address: str, trial: str, token: str | None) -> subprocess.CompletedProcess[str]:
    """``tuner.report_metrics`` in a subprocess, as a trial with ``token`` calls it."""
    env = {**os.environ, "KATIB_TRIAL_NAME": trial, "TUNER_DBMANAGER_ADDRESS": address}
    env.pop(TRIAL_TOKEN_ENV, None)
    if token is not None:
        env[TRIAL_TOKEN_ENV] = token
    return subprocess.run(
        [sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_trial_reports_for_itself_with_its_token(store: Store) -> None:
    policy = ReportPolicy(KEY, experiment="exp")
    with serve(store, policy=policy) as address:
        done = report(address, "exp-a", policy.token("exp-a"))
    assert done.returncode == 0, done.stderr
    assert [o.value for o in store.get_observations("exp-a")] == [0.5]


def test_a_report_for_another_trials_name_is_permission_denied(store: Store) -> None:
    policy = ReportPolicy(KEY, experiment="exp")
    with serve(store, policy=policy) as address:
        done = report(address, "exp-b", policy.token("exp-a"))  # exp-a's token, exp-b's name
    assert done.returncode != 0
    assert "PERMISSION_DENIED" in done.stderr
    assert store.get_observations("exp-b") == []


def test_a_tokenless_report_is_refused_unless_the_experiment_allows_it(store: Store) -> None:
    with serve(store, policy=ReportPolicy(KEY, experiment="exp")) as address:
        refused = report(address, "exp-a", None)
    assert "PERMISSION_DENIED" in refused.stderr
    assert ALLOW_TOKENLESS_ANNOTATION in refused.stderr
    assert store.get_observations("exp-a") == []

    allowing = ReportPolicy(KEY, experiment="exp", allow_tokenless=True)
    with serve(store, policy=allowing) as address:
        accepted = report(address, "exp-a", None)
        elsewhere = report(address, "other-a", None)
    assert accepted.returncode == 0, accepted.stderr
    assert [o.value for o in store.get_observations("exp-a")] == [0.5]
    assert "PERMISSION_DENIED" in elsewhere.stderr  # not a trial of this DBManager's experiment
    assert store.get_observations("other-a") == []


def test_a_forged_token_over_raw_grpc_is_permission_denied(store: Store) -> None:
    request = api_pb2.ReportObservationLogRequest(
        trial_name="exp-a",
        observation_log=api_pb2.ObservationLog(
            metric_logs=[api_pb2.MetricLog(metric=api_pb2.Metric(name="loss", value="1"))]
        ),
    )
    forged = ReportPolicy(b"x" * 32).token("exp-a")
    with serve(store, policy=ReportPolicy(KEY, experiment="exp")) as address:
        with grpc.insecure_channel(address) as channel:
            stub = api_pb2_grpc.DBManagerStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ReportObservationLog(request, metadata=[(TOKEN_METADATA_KEY, forged)])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert store.get_observations("exp-a") == []


def test_the_setting_is_the_annotation_else_the_controller_environment() -> None:
    assert not allows_tokenless({}, environ={})
    assert allows_tokenless({}, environ={"TUNER_ALLOW_TOKENLESS_REPORTS": "true"})
    assert not allows_tokenless(
        {ALLOW_TOKENLESS_ANNOTATION: "false"}, environ={"TUNER_ALLOW_TOKENLESS_REPORTS": "true"}
    )
    assert allows_tokenless({ALLOW_TOKENLESS_ANNOTATION: "true"}, environ={})


def test_the_key_file_is_private_and_kept_between_loads(tmp_path: Path) -> None:
    path = tmp_path / "run.key"
    first = load_key(path)
    assert load_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # readable by others: not trusted, a fresh key instead
    assert load_key(path) != first


# A push trial that reports its own metrics, then tries to report for the other trial.
PUSH_TRIAL = r"""
import os, sys, tuner
me = os.environ["KATIB_TRIAL_NAME"]
tuner.report_metrics({"loss": float(sys.argv[1])})
others = [n for n in open(sys.argv[2]).read().split() if n != me]
with open(sys.argv[2], "a") as f:
    f.write(me + "\n")
os.environ["KATIB_TRIAL_NAME"] = others[0] if others else me + "-x"
print("posing as", os.environ["KATIB_TRIAL_NAME"], flush=True)
try:
    tuner.report_metrics({"loss": -100.0})
except RuntimeError as e:
    print("refused:", "PERMISSION_DENIED" in str(e), flush=True)
"""


def test_tuner_run_gives_each_trial_a_token_that_only_works_for_itself(tmp_path: Path) -> None:
    names = tmp_path / "names"  # each trial appends its name; the second poses as the first
    (tmp_path / "trial.py").write_text(PUSH_TRIAL, encoding="utf-8")
    experiment = support.experiment_document(
        "tokens",
        command=[
            sys.executable,
            "trial.py",
            "${trialParameters.x}",
            str(names),
            "${trialParameters.name}",
        ],
        parameters=[support.int_parameter("x", 1, 2)],
        trial_parameters={"name": "${trialSpec.Name}"},
        algorithm="grid",
        parallel=1,
        max_trials=2,
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )
    spec = tmp_path / "experiment.yaml"
    spec.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    database = tmp_path / "tuner.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_ALLOW_TOKENLESS")}
    names.write_text("", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            str(spec),
            "--db",
            f"sqlite:///{database}",
            "--run-dir",
            str(tmp_path / "runs"),
            "--no-progress",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with Store.open(f"sqlite:///{database}") as store:
        trials = store.list_trials("tokens")
        values = sorted(o.value for t in trials for o in store.get_observations(t.name))
    assert values == [1.0, 2.0]  # each trial's own report; no -100 anywhere
    logs = "".join(p.read_text() for p in (tmp_path / "runs").glob("*/*.log"))
    assert logs.count("refused: True") == 2, logs
    first = names.read_text(encoding="utf-8").split()[0]
    assert f"posing as {first}" in logs  # the second trial tried the first one's real name
