"""TLS of the DBManager (issue 17, item 9) with certificates made in the test: a real
DBManager on a loopback port refuses plaintext clients and, with a CA, clients without a
certificate it signed; ``tuner.report_metrics`` in a trial-like subprocess reaches it with
the ``TUNER_DBMANAGER_TLS_*`` files; a real ``tuner run`` with ``--dbmanager-tls-*`` gives
its trials those files, and refuses files that are missing or do not fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import support
import yaml
from support.pki import Pki, make_pki

from tuner.dbmanager import DBManagerError, serve
from tuner.store import Store, TrialStatus
from tuner.tls import (
    DBMANAGER_TLS_CA_ENV,
    DBMANAGER_TLS_CERT_ENV,
    DBMANAGER_TLS_ENV_NAMES,
    DBMANAGER_TLS_KEY_ENV,
    DBManagerTLS,
    TLSError,
)
from tuner.tokens import ReportPolicy

TIMEOUT = 120  # guards against hangs only
REPORT = "import tuner; tuner.report_metrics({'loss': 0.5}, step=1)"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as s:
        s.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
        s.create_trials("exp", [("exp-a", {"x": "1"})])
        yield s


def mutual(pki: Pki) -> DBManagerTLS:
    tls = DBManagerTLS.from_options(
        pki.server_cert, pki.server_key, pki.ca, pki.client_cert, pki.client_key
    )
    assert tls is not None
    return tls


def report(address: str, tls_env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``tuner.report_metrics`` for trial exp-a in a subprocess with ``tls_env``."""
    env = {k: v for k, v in os.environ.items() if k not in DBMANAGER_TLS_ENV_NAMES}
    env |= {"KATIB_TRIAL_NAME": "exp-a", "TUNER_DBMANAGER_ADDRESS": address, **tls_env}
    # A refused handshake is UNAVAILABLE too; it will not get better by waiting.
    env["TUNER_REPORT_RETRY_SECONDS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def serve_tls(store: Store, tls: DBManagerTLS):  # noqa: ANN201
    policy = ReportPolicy(b"k" * 32, experiment="exp", allow_tokenless=True)
    return serve(
        store,
        policy=policy,
        credentials=tls.server_credentials(),
        client_credentials=tls.client_credentials(),
    )


def test_a_trial_reports_over_mutual_tls_with_the_files_it_is_given(pki: Pki, store: Store) -> None:
    tls = mutual(pki)
    with serve_tls(store, tls) as address:
        done = report(address, tls.trial_environment())
    assert done.returncode == 0, done.stderr
    assert [o.value for o in store.get_observations("exp-a")] == [0.5]


def test_a_plaintext_client_is_refused_by_a_tls_dbmanager(pki: Pki, store: Store) -> None:
    tls = DBManagerTLS.from_options(pki.server_cert, pki.server_key)
    assert tls is not None
    with serve_tls(store, tls) as address:
        plain = report(address, {})
        served = report(address, tls.trial_environment())
    assert plain.returncode != 0
    assert ": UNAVAILABLE" in plain.stderr
    assert f"(over plaintext ({DBMANAGER_TLS_CA_ENV} is not set))" in plain.stderr
    # Server-only TLS: the trial trusts the DBManager's certificate and presents none.
    assert served.returncode == 0, served.stderr
    assert [o.value for o in store.get_observations("exp-a")] == [0.5]


@pytest.mark.parametrize("client", ["no client certificate", "another CA's client"])
def test_mutual_tls_refuses_a_client_without_a_certificate_of_its_ca(
    pki: Pki, store: Store, client: str
) -> None:
    tls = mutual(pki)
    env = {DBMANAGER_TLS_CA_ENV: str(pki.server_cert)}
    if client == "another CA's client":
        env |= {
            DBMANAGER_TLS_CERT_ENV: str(pki.other_cert),
            DBMANAGER_TLS_KEY_ENV: str(pki.other_key),
        }
    with serve_tls(store, tls) as address:
        done = report(address, env)
    assert done.returncode != 0
    assert f"over TLS trusting {DBMANAGER_TLS_CA_ENV}=" in done.stderr
    assert "UNAVAILABLE" in done.stderr
    assert store.get_observations("exp-a") == []


def test_a_missing_tls_file_in_a_trial_is_named_by_its_variable(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    done = report(
        "127.0.0.1:1",
        {
            DBMANAGER_TLS_CA_ENV: str(pki.server_cert),
            DBMANAGER_TLS_CERT_ENV: str(missing),
            DBMANAGER_TLS_KEY_ENV: str(pki.client_key),
        },
    )
    assert done.returncode != 0
    assert f"{DBMANAGER_TLS_CERT_ENV}: cannot read {str(missing)!r}" in done.stderr
    assert "Traceback" in done.stderr  # a RuntimeError raised in the trial's own code


def test_a_client_certificate_of_another_ca_stops_the_dbmanager_at_start(
    pki: Pki, store: Store
) -> None:
    tls = DBManagerTLS.from_options(
        pki.server_cert, pki.server_key, pki.ca, pki.other_cert, pki.other_key
    )
    assert tls is not None
    with pytest.raises(DBManagerError, match="--dbmanager-tls-ca signed --dbmanager-tls-client"):
        with serve_tls(store, tls):
            pass


def test_incomplete_dbmanager_options_are_refused_naming_them(pki: Pki) -> None:
    with pytest.raises(TLSError, match="--dbmanager-tls-ca makes the DBManager require client"):
        DBManagerTLS.from_options(pki.server_cert, pki.server_key, pki.ca)
    with pytest.raises(
        TLSError, match="--dbmanager-tls-client-cert and --dbmanager-tls-client-key"
    ):
        DBManagerTLS.from_options(pki.server_cert, pki.server_key, None, pki.client_cert)
    with pytest.raises(TLSError, match="--dbmanager-tls-client-cert/-client-key need"):
        DBManagerTLS.from_options(None, None, None, pki.client_cert, pki.client_key)
    with pytest.raises(TLSError, match="--dbmanager-tls-key: cannot read 'nowhere.pem'"):
        DBManagerTLS.from_options(pki.server_cert, "nowhere.pem")
    assert DBManagerTLS.from_options(None, None) is None


# -- tuner run -------------------------------------------------------------------------

TRIAL = """
import os, sys, tuner
x = int(sys.argv[1])
for name in ("TUNER_DBMANAGER_TLS_CA", "TUNER_DBMANAGER_TLS_CERT", "TUNER_DBMANAGER_TLS_KEY"):
    assert os.path.isabs(os.environ[name]), name
tuner.report_metrics({"loss": float(x)}, step=0)
"""


def tuner_run(
    tmp_path: Path, document: Mapping[str, Any], script: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``tuner run`` of ``document`` whose trials run ``script`` (trial.py), with
    ``options``; the environment without KATIB_/TUNER_ variables."""
    (tmp_path / "trial.py").write_text(script, encoding="utf-8")
    spec = tmp_path / "exp.yaml"
    spec.write_text(yaml.safe_dump(dict(document)), encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            str(spec),
            "--no-progress",
            "--poll-interval",
            "0.05",
            "--db",
            f"sqlite:///{tmp_path / 't.db'}",
            "--run-dir",
            str(tmp_path / "runs"),
            "--output",
            str(tmp_path / "result.json"),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith(("KATIB_", "TUNER_"))},
    )


def run_push_experiment(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``tuner run`` of a Push experiment whose trials report with ``tuner.report_metrics``."""
    document = support.experiment_document(
        "tls-push",
        command=[sys.executable, "trial.py", "${trialParameters.x}"],
        parameters=[support.int_parameter("x", 1, 3)],
        algorithm="grid",
        parallel=1,
        max_trials=3,
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )
    return tuner_run(tmp_path, document, TRIAL, *options)


def tls_options(pki: Pki, client_cert: Path, client_key: Path) -> list[str]:
    return [
        "--dbmanager-tls-cert",
        str(pki.server_cert),
        "--dbmanager-tls-key",
        str(pki.server_key),
        "--dbmanager-tls-ca",
        str(pki.ca),
        "--dbmanager-tls-client-cert",
        str(client_cert),
        "--dbmanager-tls-client-key",
        str(client_key),
    ]


def test_tuner_run_trials_report_to_a_mutual_tls_dbmanager(pki: Pki, tmp_path: Path) -> None:
    done = run_push_experiment(tmp_path, *tls_options(pki, pki.client_cert, pki.client_key))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert result["bestTrial"]["objectiveValue"] == 1.0, result
    assert result["trialCounts"]["Succeeded"] == 3, result


def test_tuner_run_refuses_dbmanager_tls_files_that_do_not_fit(pki: Pki, tmp_path: Path) -> None:
    missing = run_push_experiment(tmp_path, "--dbmanager-tls-cert", str(pki.server_cert))
    assert missing.returncode == 2
    assert "--dbmanager-tls-cert and --dbmanager-tls-key go together" in missing.stderr
    assert not (tmp_path / "t.db").exists()

    foreign = run_push_experiment(tmp_path, *tls_options(pki, pki.other_cert, pki.other_key))
    assert foreign.returncode == 1
    assert "a client with the TLS files given to its trials cannot connect" in foreign.stderr
    assert "Traceback" not in foreign.stderr


CURVES = """
import sys, time, tuner
if sys.argv[1] == "bad":
    for step in range(600):
        tuner.report_metrics({"loss": 5.0 + step}, step=step)
        time.sleep(0.05)
else:
    for step in range(3):
        tuner.report_metrics({"loss": 1.0 - 0.1 * step}, step=step)
"""


def test_early_stopping_reads_the_trials_logs_from_a_mutual_tls_dbmanager(
    pki: Pki, tmp_path: Path
) -> None:
    # The in-process suggestion server reads the good trial's log back from the run's
    # DBManager over mutual TLS to make the rule that stops the bad one.
    document = support.experiment_document(
        "tls-stop",
        command=[sys.executable, "trial.py", "${trialParameters.curve}"],
        parameters=[
            {
                "name": "curve",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["good", "bad"]},
            }
        ],
        algorithm="grid",
        parallel=1,
        max_trials=2,
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "1"},
                {"name": "start_step", "value": "2"},
            ],
        },
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )
    done = tuner_run(tmp_path, document, CURVES, *tls_options(pki, pki.client_cert, pki.client_key))
    assert done.returncode == 0, done.stderr
    with Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
        statuses = {t.parameters["curve"]: t.status for t in store.list_trials("tls-stop")}
    assert statuses == {"good": TrialStatus.SUCCEEDED, "bad": TrialStatus.EARLY_STOPPED}
