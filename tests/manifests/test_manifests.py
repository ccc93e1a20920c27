"""``manifests/`` built with kustomize: every object validates against the pinned Kubernetes
schemas in strict mode, and the checks schemas cannot make hold (security, probes, names,
references between objects, the database choice of each variant)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import support

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
VARIANTS = {"default": MANIFESTS, "external-db": MANIFESTS / "overlays" / "external-db"}
NAMESPACE = "tuner"
IMAGE = "tuner:0.1.0"
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
WORKLOADS = ("Deployment", "StatefulSet")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, build) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build(VARIANTS[request.param])


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def test_every_object_validates_strictly(variant, validate):
    _, objects = variant
    assert objects
    for obj in objects:
        validate(obj)


def test_names_and_namespace(variant):
    _, objects = variant
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name), name
        if obj["kind"] == "Service":
            assert len(name) <= 63 and DNS1035_LABEL.fullmatch(name), name
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, name
    assert one(objects, "Namespace", NAMESPACE)


def test_workloads_run_locked_down_with_probes_and_resources(variant):
    _, objects = variant
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    assert workloads
    for workload in workloads:
        pod = pod_spec(workload)
        where = workload["metadata"]["name"]
        support.assert_restricted_pod(pod, where)
        for container in pod["containers"]:
            assert container["readinessProbe"] and container["livenessProbe"], where
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), where
            assert "memory" in container["resources"]["limits"], where
            mounted = {m["name"] for m in container.get("volumeMounts") or ()}
            assert mounted <= {v["name"] for v in pod.get("volumes") or ()} | {
                t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or ()
            }, where


def test_tuner_containers_use_the_built_image(variant):
    _, objects = variant
    tuner = [
        c
        for o in objects
        if o["kind"] in WORKLOADS
        for c in pod_spec(o)["containers"]
        if c["name"] in ("controller", "suggestion")
    ]
    assert {c["image"] for c in tuner} == {IMAGE}
    assert len(tuner) == 2


def test_controller_reads_settings_and_the_database_url(variant):
    _, objects = variant
    controller = one(objects, "Deployment", "tuner-controller")
    pod = pod_spec(controller)
    [container] = pod["containers"]
    assert container["command"] == ["tuner", "controller"]
    assert container["args"][:2] == ["--db", "$(TUNER_DB_URL)"]
    [db_url] = [e for e in container["env"] if e["name"] == "TUNER_DB_URL"]
    secret_ref = db_url["valueFrom"]["secretKeyRef"]
    assert "url" in one(objects, "Secret", secret_ref["name"])["stringData"]
    settings = one(objects, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    defined = {e["name"] for e in container["env"]} | set(settings["data"])
    # Every $(VAR) in the arguments is defined, or Kubernetes would pass it on literally.
    used = {m for arg in container["args"] for m in re.findall(r"\$\((\w+)\)", arg)}
    assert used and used <= defined
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings["data"]["TUNER_METRICS_ADDRESS"] == f"0.0.0.0:{port['http-metrics']}"
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    service_account = one(objects, "ServiceAccount", pod["serviceAccountName"])
    binding = one(objects, "RoleBinding", "tuner-trials")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "namespace": NAMESPACE,
            "name": service_account["metadata"]["name"],
        }
    ]
    assert one(objects, "Role", binding["roleRef"]["name"])


def test_suggestion_service_on_6789_with_grpc_probes_for_the_controller_only(variant):
    _, objects = variant
    suggestion = one(objects, "Deployment", "tuner-suggestion")
    [container] = pod_spec(suggestion)["containers"]
    assert container["command"][:2] == ["tuner", "suggestion-server"]
    assert container["command"][-1].endswith(":6789")
    assert container["readinessProbe"]["grpc"] == {"port": 6789}
    assert container["livenessProbe"]["grpc"] == {"port": 6789}
    assert pod_spec(suggestion)["automountServiceAccountToken"] is False
    pod_labels = suggestion["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service", "tuner-suggestion")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["port"] for p in service["spec"]["ports"]] == [6789]
    settings = one(objects, "ConfigMap", "tuner-settings")
    assert settings["data"]["TUNER_SUGGESTION_ADDRESS"] == "tuner-suggestion:6789"

    policy = one(objects, "NetworkPolicy", "tuner-suggestion")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    controller_labels = one(objects, "Deployment", "tuner-controller")["spec"]["template"][
        "metadata"
    ]["labels"]
    assert set(source) == {"podSelector"}  # no namespaceSelector or ipBlock: these pods only
    assert source["podSelector"]["matchLabels"].items() <= controller_labels.items()
    assert not source["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 6789}]


def test_database_per_variant(variant):
    name, objects = variant
    url = one(objects, "Secret", "tuner-db")["stringData"]["url"]
    assert url.startswith("postgresql+psycopg://")
    statefulsets = [o for o in objects if o["kind"] == "StatefulSet"]
    if name == "external-db":
        assert not statefulsets and "tuner-postgres" not in url
        return
    [postgres] = statefulsets
    service = one(objects, "Service", postgres["spec"]["serviceName"])
    assert f"@{service['metadata']['name']}:5432/" in url
    [container] = pod_spec(postgres)["containers"]
    assert {"secretRef": {"name": "tuner-db"}} in container["envFrom"]
    assert postgres["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_mini_kustomize_builds_what_kubectl_builds(kubectl_build, mini_build):
    for directory in VARIANTS.values():
        expected = sorted(kubectl_build(directory), key=_key)
        assert sorted(mini_build(directory), key=_key) == expected


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]
