"""Fixtures for the deployment artefacts: kustomize builds of ``manifests/`` (importlib mode:
tests share fixtures only). Schema validation, ``validate``, is in tests/conftest.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
# Kubernetes kinds our manifests use that are not namespaced.
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
_KUSTOMIZE_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "images", "patches"})

Objects = list[dict[str, Any]]


def mini_kustomize(directory: Path) -> Objects:
    """What ``kubectl kustomize`` does with the fields our kustomizations use (resources,
    namespace, images, and inline JSON 6902 patches aimed by kind and name), for machines
    without a kubectl that has kustomize v4+."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KUSTOMIZE_FIELDS
    assert not unknown, f"{directory}: mini_kustomize does not implement {sorted(unknown)}"
    objects: Objects = []
    for entry in kustomization.get("resources") or ():
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += mini_kustomize(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches") or ():
        assert set(patch) == {"target", "patch"}, f"{directory}: only inline targeted patches"
        target = patch["target"]
        assert set(target) == {"kind", "name"}, f"{directory}: target by kind and name only"
        [obj] = [
            o
            for o in objects
            if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        for operation in yaml.safe_load(patch["patch"]):
            _json_patch(obj, operation)
    for image in kustomization.get("images") or ():
        for container in _containers(objects):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            for subject in obj.get("subjects") or ():
                if subject.get("kind") == "ServiceAccount":
                    subject.setdefault("namespace", namespace)
    return objects


def _json_patch(obj: dict[str, Any], operation: dict[str, Any]) -> None:
    """One RFC 6902 add, replace or remove operation, applied to ``obj`` in place."""
    *parents, last = [
        p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]
    ]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    assert op in ("add", "replace", "remove"), f"mini_kustomize does not implement {op}"
    if isinstance(node, list):
        if op == "add":
            node.insert(len(node) if last == "-" else int(last), operation["value"])
        elif op == "replace":
            node[int(last)] = operation["value"]
        else:
            del node[int(last)]
    elif op == "remove":
        del node[last]
    else:
        assert op == "add" or last in node, f"replace of a missing {operation['path']}"
        node[last] = operation["value"]


def _containers(objects: Objects) -> list[dict[str, Any]]:
    found = []
    for obj in objects:
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        found += list(pod.get("initContainers") or ()) + list(pod.get("containers") or ())
    return found


def kubectl_kustomize() -> Callable[[Path], Objects] | None:
    """``kubectl kustomize`` if the kubectl here embeds kustomize v4 or newer, else None."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    try:
        version = json.loads(
            subprocess.run(
                [kubectl, "version", "--client", "-o", "json"],
                capture_output=True,
                check=True,
                timeout=30,
                text=True,
            ).stdout
        )
    except (subprocess.SubprocessError, ValueError):
        return None
    match = re.match(r"v(\d+)", version.get("kustomizeVersion", ""))
    if match is None or int(match.group(1)) < 4:
        return None  # kustomize v2/v3 (e.g. Debian's kubectl 1.20) cannot read our layout

    def build(directory: Path) -> Objects:
        out = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            check=True,
            timeout=60,
            text=True,
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    return build


@pytest.fixture(scope="session")
def kubectl_build() -> Callable[[Path], Objects]:
    build = kubectl_kustomize()
    if build is None:
        pytest.skip("no kubectl with kustomize v4+ on PATH")
    return build


@pytest.fixture(scope="session")
def mini_build() -> Callable[[Path], Objects]:
    return mini_kustomize


@pytest.fixture(scope="session")
def build() -> Callable[[Path], Objects]:
    """The real kustomize when there is one, else :func:`mini_kustomize` (both are compared
    by a test wherever kubectl is available)."""
    return kubectl_kustomize() or mini_kustomize
