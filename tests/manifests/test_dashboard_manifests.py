"""``manifests/dashboard/``, the optional dashboard: strict schema validation, least privilege
(no API token, no RBAC, non-root, read-only root filesystem, RuntimeDefault seccomp), the
database URL from the Secret every variant has, and no in-cluster client admitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import support

from tuner.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "manifests" / "dashboard"
LABELS = {"app.kubernetes.io/name": "tuner", "app.kubernetes.io/component": "dashboard"}


@pytest.fixture(scope="module")
def objects(build) -> list[dict[str, Any]]:
    return build(DASHBOARD)


def kind(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == name]
    return found


def test_every_object_validates_strictly_in_the_tuner_namespace(objects, validate):
    assert {o["kind"] for o in objects} == {
        "ServiceAccount",
        "Deployment",
        "Service",
        "NetworkPolicy",
    }
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["namespace"] == "tuner"
        assert obj["metadata"]["name"] == "tuner-dashboard"


def test_runs_locked_down_without_api_access(objects):
    account = kind(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    pod = kind(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tuner-dashboard"
    assert pod["automountServiceAccountToken"] is False
    support.assert_restricted_pod(pod)
    [container] = pod["containers"]
    assert container["image"] == "tuner:0.1.0"
    assert "memory" in container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_command_is_tuner_dashboard_reading_the_database_secret(objects, build):
    [container] = kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["tuner", "dashboard"]
    args = build_parser().parse_args(command[1:])
    assert args.db == "$(TUNER_DB_URL)" and args.address == "0.0.0.0:8080"
    [env] = container["env"]
    assert env["name"] == "TUNER_DB_URL"
    secret = env["valueFrom"]["secretKeyRef"]
    for variant in (REPO / "manifests", REPO / "manifests" / "overlays" / "external-db"):
        secrets = [
            o
            for o in build(variant)
            if o["kind"] == "Secret" and o["metadata"]["name"] == secret["name"]
        ]
        assert secrets and secret["key"] in secrets[0]["stringData"], variant


def test_service_reaches_the_pod_and_the_policy_admits_no_client(objects):
    service = kind(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == LABELS
    [container] = kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    [port] = container["ports"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert kind(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].items() >= (
        LABELS.items()
    )
    policy = kind(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == LABELS
    assert policy["policyTypes"] == ["Ingress"] and policy["ingress"] == []
