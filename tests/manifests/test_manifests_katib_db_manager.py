"""``manifests/overlays/katib-db-manager`` (issue 11, item 4): Katib's SDK dials
``katib-db-manager.kubeflow:6789``; the overlay gives that name to the DBManager the
controllers serve for their whole database on a cluster address, admits trial pods to it,
and changes nothing else of the default install."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import support

from tuner.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "manifests" / "overlays" / "katib-db-manager"
PORT = 6789

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def objects(build) -> Objects:
    return build(OVERLAY)


def one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def controller_options() -> set[str]:
    [subcommands] = [
        a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return {o for a in subcommands["controller"]._actions for o in a.option_strings}


def test_every_object_validates_strictly(objects, validate):
    for obj in objects:
        validate(obj)


def test_katib_db_manager_in_kubeflow_resolves_to_tuners_dbmanager(objects):
    alias = one(objects, "Service", "katib-db-manager")
    assert alias["metadata"]["namespace"] == "kubeflow"
    assert alias["spec"]["type"] == "ExternalName"
    assert [p["port"] for p in alias["spec"]["ports"]] == [PORT]
    service = one(objects, "Service", "tuner-dbmanager")
    namespace = service["metadata"]["namespace"]
    assert alias["spec"]["externalName"] == f"tuner-dbmanager.{namespace}.svc.cluster.local"
    assert [p["port"] for p in service["spec"]["ports"]] == [PORT]
    # The Service reaches the controller pods' named port.
    controller = one(objects, "Deployment", "tuner-controller")
    pod = controller["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[service["spec"]["ports"][0]["targetPort"]] == PORT


def test_the_controller_serves_one_dbmanager_on_the_cluster_address(objects):
    controller = one(objects, "Deployment", "tuner-controller")
    [container] = controller["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    given = {a: args[i + 1] for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)}
    assert given["--dbmanager-address"] == f"0.0.0.0:{PORT}"
    namespace = controller["metadata"]["namespace"]
    assert given["--dbmanager-advertise-address"] == f"tuner-dbmanager.{namespace}:{PORT}"
    assert {a for a in args if a.startswith("--")} <= controller_options()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TUNER_ALLOW_TOKENLESS_REPORTS"] == "true"  # Katib's SDK sends no token
    support.assert_restricted_pod(controller["spec"]["template"]["spec"], "tuner-controller")


def test_a_network_policy_admits_trials_to_the_dbmanager_port(objects):
    policy = one(objects, "NetworkPolicy", "tuner-dbmanager")
    controller = one(objects, "Deployment", "tuner-controller")
    labels = controller["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": PORT}]


def test_only_the_dbmanager_pieces_are_added_to_the_default_install(objects, build):
    default = {(o["kind"], o["metadata"]["name"]) for o in build(REPO / "manifests")}
    added = {(o["kind"], o["metadata"]["name"]) for o in objects} - default
    assert added == {
        ("Service", "katib-db-manager"),
        ("Service", "tuner-dbmanager"),
        ("NetworkPolicy", "tuner-dbmanager"),
    }
    assert default <= {(o["kind"], o["metadata"]["name"]) for o in objects}


def test_mini_kustomize_builds_what_kubectl_builds(kubectl_build, mini_build):
    def key(obj: dict[str, Any]) -> tuple[str, str, str]:
        return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    assert sorted(mini_build(OVERLAY), key=key) == sorted(kubectl_build(OVERLAY), key=key)
