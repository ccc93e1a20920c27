"""``manifests/overlays/tls`` (issue 17, item 9): the controller and the suggestion service
read their certificates from a user-created Secret mounted read-only, pass the TLS options
naming files in that mount, keep the pod security settings, and probe the TLS port without
speaking plaintext gRPC. The overlay ships no key material."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import support

from tuner.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "manifests" / "overlays" / "tls"
SECRET = "tuner-tls"
SECRET_KEYS = {"ca.crt", "tls.crt", "tls.key"}
SERVER_FLAGS = {"--tls-cert": "tls.crt", "--tls-key": "tls.key", "--tls-ca": "ca.crt"}
CLIENT_FLAGS = {
    "--suggestion-tls-ca": "ca.crt",
    "--suggestion-tls-cert": "tls.crt",
    "--suggestion-tls-key": "tls.key",
}
DBMANAGER_FLAGS = {
    "--dbmanager-tls-cert": "tls.crt",
    "--dbmanager-tls-key": "tls.key",
    "--dbmanager-tls-ca": "ca.crt",
    "--dbmanager-tls-client-cert": "tls.crt",
    "--dbmanager-tls-client-key": "tls.key",
}
# What the suggestion server's early stopping reads DBManagers with.
DBMANAGER_CLIENT_FLAGS = {
    "--dbmanager-tls-ca": "ca.crt",
    "--dbmanager-tls-cert": "tls.crt",
    "--dbmanager-tls-key": "tls.key",
}
PEM_MARKERS = ("-----BEGIN", "PRIVATE KEY")

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def objects(build) -> Objects:
    return build(OVERLAY)


def one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def tls_mount(workload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The container of ``workload`` and the directory where the tuner-tls Secret is mounted."""
    pod = workload["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == SECRET
    assert "items" not in volume["secret"]  # every key, under its own name
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o007 == 0, oct(mode)  # not world-readable ...
    assert mode & 0o040 and pod["securityContext"]["fsGroup"] == 10001  # ... but by tuner
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert "subPath" not in mount  # so a renewed Secret reaches the pod
    return container, mount["mountPath"]


def options(command: list[str]) -> dict[str, str]:
    return {
        arg: command[i + 1]
        for i, arg in enumerate(command)
        if arg.startswith("--") and i + 1 < len(command)
    }


def subcommand_options(name: str) -> set[str]:
    [subcommands] = [
        a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return {o for a in subcommands[name]._actions for o in a.option_strings}


def test_every_object_validates_strictly(objects, validate):
    assert objects
    for obj in objects:
        validate(obj)


def test_workloads_keep_their_security_settings(objects):
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in workloads} >= {"tuner-controller", "tuner-suggestion"}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        where = workload["metadata"]["name"]
        support.assert_restricted_pod(pod, where)
        for container in pod["containers"]:
            assert container["readinessProbe"] and container["livenessProbe"], where


def test_suggestion_server_serves_tls_from_the_mount_with_tcp_probes(objects):
    container, directory = tls_mount(one(objects, "Deployment", "tuner-suggestion"))
    command = [*container["command"], *container.get("args", ())]
    assert command[:2] == ["tuner", "suggestion-server"]
    given = options(command)
    assert {flag: given.get(flag) for flag in SERVER_FLAGS} == {
        flag: f"{directory}/{key}" for flag, key in SERVER_FLAGS.items()
    }
    assert {flag: given.get(flag) for flag in DBMANAGER_CLIENT_FLAGS} == {
        flag: f"{directory}/{key}" for flag, key in DBMANAGER_CLIENT_FLAGS.items()
    }
    assert given["--address"].endswith(":6789")
    assert set(given) <= subcommand_options("suggestion-server")
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        assert "grpc" not in probe  # the kubelet's gRPC probe cannot speak TLS
        assert probe["tcpSocket"] == {"port": 6789}


def test_controller_dials_the_suggestion_service_with_tls_from_the_mount(objects):
    container, directory = tls_mount(one(objects, "Deployment", "tuner-controller"))
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["tuner", "controller"]
    given = options(command)
    assert {flag: given.get(flag) for flag in CLIENT_FLAGS} == {
        flag: f"{directory}/{key}" for flag, key in CLIENT_FLAGS.items()
    }
    assert given["--suggestion-address"] == "$(TUNER_SUGGESTION_ADDRESS)"
    # Its DBManagers serve mutual TLS with the same files.
    assert {flag: given.get(flag) for flag in DBMANAGER_FLAGS} == {
        flag: f"{directory}/{key}" for flag, key in DBMANAGER_FLAGS.items()
    }
    assert set(given) <= subcommand_options("controller")
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"  # :8080 stays HTTP


def test_secret_is_referenced_not_shipped(objects):
    assert set(SERVER_FLAGS.values()) == SECRET_KEYS and set(CLIENT_FLAGS.values()) == SECRET_KEYS
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == SECRET]
    for path in OVERLAY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not any(marker in text for marker in PEM_MARKERS), path
    documented = (OVERLAY / "kustomization.yaml").read_text()
    assert f"create secret generic {SECRET}" in documented
    for key in SECRET_KEYS:
        assert f"--from-file={key}=" in documented, key


def test_only_the_tls_pieces_differ_from_the_default_install(objects, build):
    default = {(o["kind"], o["metadata"]["name"]) for o in build(REPO / "manifests")}
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == default


def test_mini_kustomize_builds_what_kubectl_builds(kubectl_build, mini_build):
    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(mini_build(OVERLAY), key=key) == sorted(kubectl_build(OVERLAY), key=key)
