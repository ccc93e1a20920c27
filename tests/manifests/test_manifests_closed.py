"""The manifests deploy tuner closed (issue 17, item 10): PostgreSQL reachable from the
controller only, the controller's :8080 from labelled monitoring namespaces only, no shipped
database password, images pinned to a version, pod security settings kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import support
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
VARIANTS = {"default": MANIFESTS, "external-db": MANIFESTS / "overlays" / "external-db"}
MONITORING_LABEL = "tuner.kubeflow.org/monitoring"


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, build) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build(VARIANTS[request.param])


def labels_of(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found["spec"]["template"]["metadata"]["labels"]


def policies_selecting(objects: list[dict[str, Any]], labels: dict[str, str]) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]


def test_postgres_accepts_the_controller_only(variant) -> None:
    name, objects = variant
    if name == "external-db":
        pytest.skip("no in-cluster database")
    [policy] = policies_selecting(objects, labels_of(objects, "StatefulSet", "tuner-postgres"))
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    assert set(source) == {"podSelector"}
    controller = labels_of(objects, "Deployment", "tuner-controller")
    assert source["podSelector"]["matchLabels"].items() <= controller.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_controller_http_only_from_labelled_monitoring_namespaces(variant) -> None:
    _, objects = variant
    [policy] = policies_selecting(objects, labels_of(objects, "Deployment", "tuner-controller"))
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    assert source == {"namespaceSelector": {"matchLabels": {MONITORING_LABEL: "true"}}}
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_no_database_password_is_shipped(variant) -> None:
    _, objects = variant
    [secret] = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "tuner-db"]
    data = secret["stringData"]
    assert make_url(data["url"]).password is None, "the URL ships a password"
    assert data.get("POSTGRES_PASSWORD", "") == ""


def test_images_are_pinned_to_a_version(variant) -> None:
    _, objects = variant
    images = [
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    ]
    for image in images:
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.]+)?", tag), f"{image} is not pinned"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases


def test_pods_keep_their_security_settings(variant) -> None:
    _, objects = variant
    for o in objects:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        support.assert_restricted_pod(o["spec"]["template"]["spec"], o["metadata"]["name"])
