"""TLS (issue 17, item 9) with certificates made in the test (``cryptography``): the
suggestion server and the DBManager over real gRPC on port 0, mutual TLS when a CA is
given, plaintext and unknown clients refused; ``tuner run`` reaching a TLS suggestion
server started with ``tuner suggestion-server --tls-*`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import support
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.pki import Pki, make_pki

from suggestion.service import create_server
from tuner.controller import SuggestionClient
from tuner.dbmanager import create_server as create_dbmanager
from tuner.spec import Experiment
from tuner.store import Store
from tuner.tls import TLSError, channel_credentials, server_credentials

TIMEOUT = 120  # guards against hangs only


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _experiment() -> Experiment:
    return Experiment.model_validate(
        support.experiment_document(
            "tls",
            command=[sys.executable, "-c", "print('loss=${trialParameters.x}')"],
            parameters=[support.int_parameter("x", 1, 3)],
            parallel=1,
            max_trials=2,
        )
    )


@pytest.fixture
def mtls_suggestion(pki: Pki) -> Iterator[str]:
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca)
    server, port = create_server("127.0.0.1:0", credentials=credentials)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _health(address: str, credentials: grpc.ChannelCredentials | None) -> None:
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(address, credentials)
    )
    with channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)


def test_suggestion_server_with_mutual_tls_serves_a_client_with_a_certificate(
    pki: Pki, mtls_suggestion: str
) -> None:
    credentials = channel_credentials(pki.ca, pki.client_cert, pki.client_key)
    with SuggestionClient(mtls_suggestion, credentials=credentials) as client:
        reply = client.suggest(_experiment(), [], 2, 2)
    assert len(reply.assignments) == 2


@pytest.mark.parametrize("who", ["plaintext", "no client certificate", "another CA's client"])
def test_suggestion_server_with_mutual_tls_refuses_other_clients(
    pki: Pki, mtls_suggestion: str, who: str
) -> None:
    credentials = {
        "plaintext": None,
        "no client certificate": channel_credentials(pki.ca),
        "another CA's client": channel_credentials(pki.ca, pki.other_cert, pki.other_key),
    }[who]
    with pytest.raises(grpc.RpcError) as caught:
        _health(mtls_suggestion, credentials)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_dbmanager_serves_tls(pki: Pki, tmp_path: Path) -> None:
    with Store.open(path=tmp_path / "t.db") as store:
        server, port = create_dbmanager(
            store, credentials=server_credentials(pki.server_cert, pki.server_key)
        )
        try:
            _health(f"127.0.0.1:{port}", channel_credentials(pki.ca))
            with pytest.raises(grpc.RpcError):
                _health(f"127.0.0.1:{port}", None)
        finally:
            server.stop(None)


def test_incomplete_tls_options_are_refused_naming_them(pki: Pki) -> None:
    with pytest.raises(TLSError, match="--tls-cert and --tls-key go together"):
        server_credentials(pki.server_cert, None)
    with pytest.raises(TLSError, match="--tls-ca needs"):
        server_credentials(None, None, pki.ca)
    with pytest.raises(TLSError, match="--tls-ca: .* is not a PEM file"):
        server_credentials(pki.server_cert, pki.server_key, __file__)


def _tls_suggestion_server(pki: Pki) -> subprocess.Popen[str]:
    """`tuner suggestion-server` on 127.0.0.1:0 serving mutual TLS with the test's PKI."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "suggestion-server",
            "--address",
            "127.0.0.1:0",
            "--tls-cert",
            str(pki.server_cert),
            "--tls-key",
            str(pki.server_key),
            "--tls-ca",
            str(pki.ca),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _listening_address(server: subprocess.Popen[str]) -> str:
    """The HOST:PORT a `tuner suggestion-server` prints once it accepts calls."""
    assert server.stdout is not None and server.stderr is not None
    line = server.stdout.readline()
    assert line.startswith("listening on "), line + server.stderr.read()
    return line.split()[-1]


def test_tuner_run_reaches_a_tls_suggestion_server_started_by_the_cli(
    pki: Pki, tmp_path: Path
) -> None:
    server = _tls_suggestion_server(pki)
    try:
        address = _listening_address(server)
        spec = tmp_path / "exp.yaml"
        spec.write_text(yaml.safe_dump(_experiment().to_dict()), encoding="utf-8")
        base = [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            str(spec),
            "--no-progress",
            "--db",
            f"sqlite:///{tmp_path / 't.db'}",
            "--run-dir",
            str(tmp_path / "runs"),
            "--suggestion-address",
            address,
        ]
        done = subprocess.run(
            [
                *base,
                "--suggestion-tls-ca",
                str(pki.ca),
                "--suggestion-tls-cert",
                str(pki.client_cert),
                "--suggestion-tls-key",
                str(pki.client_key),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        half = subprocess.run(
            [*base, "--suggestion-tls-cert", str(pki.client_cert)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )
        assert half.returncode == 2
        assert "--suggestion-tls-cert and --suggestion-tls-key go together" in half.stderr
    finally:
        server.terminate()
        server.communicate(timeout=TIMEOUT)


def test_submit_and_controller_reach_a_tls_suggestion_server(pki: Pki, tmp_path: Path) -> None:
    import json
    import time

    server = _tls_suggestion_server(pki)
    controller = None
    try:
        address = _listening_address(server)
        tls = [
            "--suggestion-address",
            address,
            "--suggestion-tls-ca",
            str(pki.ca),
            "--suggestion-tls-cert",
            str(pki.client_cert),
            "--suggestion-tls-key",
            str(pki.client_key),
        ]
        db = ["--db", f"sqlite:///{tmp_path / 't.db'}"]
        spec = tmp_path / "exp.yaml"
        spec.write_text(yaml.safe_dump(_experiment().to_dict()), encoding="utf-8")
        cli = [sys.executable, "-m", "tuner.cli"]
        submitted = subprocess.run(
            [*cli, "submit", str(spec), *db, *tls],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )
        assert submitted.returncode == 0, submitted.stderr
        controller = subprocess.Popen(
            [
                *cli,
                "controller",
                *db,
                *tls,
                "--run-dir",
                str(tmp_path / "runs"),
                "--metrics-address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        deadline = time.monotonic() + TIMEOUT
        status = None
        while status != "Succeeded":
            assert controller.poll() is None, controller.communicate()
            assert time.monotonic() < deadline, f"experiment still {status}"
            time.sleep(0.2)
            listed = subprocess.run(
                [*cli, "get", "experiments", *db, "-o", "json"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                cwd=tmp_path,
            )
            document = json.loads(listed.stdout or "[]")
            items = document if isinstance(document, list) else document.get("items", [])
            status = items[0]["status"] if items else None
    finally:
        for process in (controller, server):
            if process is not None:
                process.terminate()
                process.communicate(timeout=TIMEOUT)
