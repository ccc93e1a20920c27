"""Fixtures shared across test packages (importlib mode: tests share code as fixtures and
through the helpers of tests/support).

``validate``: strict schema validation of a Kubernetes object against a pinned Kubernetes
version (kubernetes-validate), for manifests/ and the Jobs tuner creates or prints.
``validate_trial``: the same for a trial object of any kind: built-in kinds as ``validate``,
the custom resources of the Kubeflow training jobs, TrainJob, Argo and Tekton against their
published CRD schemas vendored in tests/schemas/crds (see its README); None for a kind
without one.

``suggestion_address``: a real suggestion server on a loopback port, one per test module.

``cluster``: kmock's Kubernetes API emulator (real HTTP), made to honour ``labelSelector`` on
lists and watches as a real API server does (``kmock_options``), with the rest of Kubernetes
played by the test: the Job controller (it patches Job status) and the kubelet (it creates pods and
serves their logs). Used by the executor, controller and CLI tests of the kubernetes
executor; kmock needs Python 3.11+, so those modules skip with ``importorskip("kmock")``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from suggestion.service import create_server

# Pinned: the oldest Kubernetes version still supported by its cloud providers when this was
# written, and the version docs/kubernetes.md names. kubernetes-validate has its schemas.
KUBERNETES_VERSION = "1.30"
CLUSTER_NAMESPACE = "tuning"
# kmock's request actions as RBAC verbs.
_VERBS = {
    "LIST": "list",
    "WATCH": "watch",
    "FETCH": "get",
    "CREATE": "create",
    "DELETE": "delete",
    "UPDATE": "patch",
}


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes' equality-based selectors (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``), joined
    by commas: written here apart from tuner's, so that a selector tuner builds wrong fails."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key.strip()) != value.strip()
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            ok = labels.get(key.strip()) == value.strip()
        elif term.startswith("!"):
            ok = term[1:].strip() not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


_SELECTING_EMULATOR: list[type] = []


def _selecting_emulator() -> type:
    """kmock's emulator, but lists and watches return only the objects ``labelSelector``
    selects (kmock itself ignores it)."""
    if not _SELECTING_EMULATOR:
        import kmock

        class SelectingEmulator(kmock.KubernetesEmulator):
            def _KubernetesEmulator__check(  # noqa: N802 - overrides kmock's private check
                self, request: Any, resource: Any, namespace: Any, name: str, strict: bool
            ) -> bool:
                check = super()._KubernetesEmulator__check  # type: ignore[misc]
                if not check(request, resource, namespace, name, strict):
                    return False
                selector = (request.params or {}).get("labelSelector")
                key = (resource, namespace, name)
                if not selector or request.name is not None or key not in self.objects:
                    return True
                stored = self.objects[key].last.raw
                labels = (stored.get("metadata") or {}).get("labels") or {}
                return _selector_matches(selector, labels)

        _SELECTING_EMULATOR.append(SelectingEmulator)
    return _SELECTING_EMULATOR[0]


def pytest_configure(config: pytest.Config) -> None:
    """Tests press Ctrl-C on CLI subprocesses (SIGINT) and expect them to stop. A child
    inherits an ignored SIGINT, and a test process started in the background by a
    non-interactive shell (``cmd &``) has SIGINT ignored: give the children (of every
    pytest-xdist worker too) Python's default handling back."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """kmock's own options, with the emulator that honours label selectors."""
    return {**kmock_options, "cls": _selecting_emulator()}


@pytest.fixture(scope="module")
def suggestion_address() -> Iterator[str]:
    server, port = create_server("127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


class PodLog:
    """One container's log as the kubelet serves it; ``drop`` ends the open streams early."""

    def __init__(self) -> None:
        self.data = b""
        self.ended = False
        self.drops = 0
        self.requests = 0
        self._changed = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.data += data
        self._notify()

    def end(self) -> None:
        self.ended = True
        self._notify()

    def drop(self) -> None:
        self.drops += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def serve(self, follow: bool, tail_lines: int | None = None) -> AsyncIterator[bytes]:
        self.requests += 1
        drops, sent = self.drops, 0
        yield b""  # send the headers: the stream is open before any output
        if tail_lines is not None:  # the kubelet's tailLines: the last lines written so far
            lines = self.data.splitlines(keepends=True)
            yield b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
            sent = len(self.data)
        while True:
            changed = self._changed
            if self.drops != drops:
                return
            if sent < len(self.data):
                chunk, sent = self.data[sent:], len(self.data)
                yield chunk
            elif not follow or self.ended:
                return
            else:
                await changed.wait()


class KubeCluster:
    """The Job controller and kubelet of one namespace, played through kmock's HTTP API.

    ``server`` is the kmock handler (``server.url`` is the API server's address).
    """

    def __init__(self, server: Any, namespace: str = CLUSTER_NAMESPACE) -> None:
        import kmock

        self._kmock = kmock
        self.server = server
        self.namespace = namespace
        self.jobs_path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        self.pods_path = f"/api/v1/namespaces/{namespace}/pods"
        self.logs: dict[str, PodLog] = {}
        server.resources["batch/v1/jobs"] = {}
        server.resources["v1/pods"] = {}
        server["get", kmock.resource("", "v1", "pods"), kmock.subresource("log")] << self._log

    def _log(self, request: Any) -> AsyncIterator[bytes]:
        follow = str(request.params.get("follow", "")).lower() == "true"
        tail = request.params.get("tailLines")
        return self.logs[request.name].serve(follow, None if tail is None else int(tail))

    # -- the kubelet and the Job controller ----------------------------------------------

    def new_log(self, pod: str) -> PodLog:
        """The log that the kubelet serves for ``pod`` (any kind's operator's pod)."""
        self.logs[pod] = PodLog()
        return self.logs[pod]

    async def start_pod(
        self,
        job: str,
        pod: str,
        *,
        created: str = "2026-01-01T00:00:00Z",
        labels: dict[str, str] | None = None,
        container: str = "main",
    ) -> PodLog:
        self.logs[pod] = PodLog()
        response = await self.server.post(
            self.pods_path,
            json={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod,
                    "namespace": self.namespace,
                    "uid": f"uid-{pod}",
                    "creationTimestamp": created,
                    "labels": {"job-name": job, "role": "trainer", **(labels or {})},
                },
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {"name": container, "restartCount": 0, "state": {"running": {}}}
                    ],
                },
            },
        )
        assert response.status in (200, 201), await response.text()
        await self.patch(
            f"{self.jobs_path}/{job}/status",
            {"status": {"active": 1, "startTime": "2026-01-01T00:00:01Z"}},
        )
        return self.logs[pod]

    async def end_pod(self, pod: str, exit_code: int = 0, *, container: str = "main") -> None:
        await self.patch(
            f"{self.pods_path}/{pod}/status",
            {
                "status": {
                    "phase": "Succeeded" if exit_code == 0 else "Failed",
                    "containerStatuses": [
                        {
                            "name": container,
                            "restartCount": 0,
                            "state": {"terminated": {"exitCode": exit_code}},
                        }
                    ],
                }
            },
        )
        self.logs[pod].end()

    async def finish_job(self, job: str, kind: str, reason: str = "", message: str = "") -> None:
        condition = {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2026-01-01T00:01:00Z",
        }
        status: dict[str, Any] = {"active": 0, "conditions": [condition]}
        if kind == "Complete":
            status["completionTime"] = "2026-01-01T00:01:00Z"
        await self.patch(f"{self.jobs_path}/{job}/status", {"status": status})

    async def patch(self, path: str, body: dict[str, Any]) -> None:
        response = await self.server.patch(path, json=body)
        assert response.status == 200, await response.text()

    # -- what happened -------------------------------------------------------------------

    def jobs(self) -> dict[str, dict[str, Any]]:
        """The Jobs that exist now (not deleted), by name, in creation order."""
        resource = self._kmock.resource("batch", "v1", "jobs")
        return {
            name: dict(obj)
            for (res, namespace, name), obj in self.server.objects.items()
            if res == resource and namespace == self.namespace and not obj.deleted
        }

    def calls(self) -> list[Any]:
        """The requests the executor made (the test's own carry kmock's user agent)."""
        return [r for r in self.server if r.headers.get("User-Agent", "").startswith("tuner/")]

    def verbs(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) of every executor call."""
        found = set()
        for r in self.calls():
            resource = r.resource.plural + (f"/{r.subresource}" if r.subresource else "")
            found.add((r.resource.group, resource, _VERBS[r.action.name]))
        return found


@pytest_asyncio.fixture
async def cluster(kmock: Any) -> KubeCluster:
    return KubeCluster(kmock)


CRD_SCHEMAS = Path(__file__).parent / "schemas" / "crds"


def _strict(schema: Any) -> Any:
    """A CRD schema as ``kubectl``'s strict field validation applies it: unknown fields are
    refused where the schema lists properties and does not keep unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@pytest.fixture(scope="session")
def validate_trial(
    validate: Callable[[dict[str, Any]], None],
) -> Callable[[dict[str, Any]], str | None]:
    """Validate a trial object; returns what it was validated against (None: no schema)."""
    jsonschema = pytest.importorskip("jsonschema")
    cache: dict[str, Any] = {}

    def check(obj: dict[str, Any]) -> str | None:
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        group, _, version = api_version.rpartition("/")
        if not group or "." not in group:  # core and built-in groups (batch, apps...)
            validate(obj)
            return f"Kubernetes {KUBERNETES_VERSION}"
        name = f"{group}_{version}_{kind}.json.gz"
        path = CRD_SCHEMAS / name
        if not path.exists():
            return None
        if name not in cache:
            cache[name] = jsonschema.Draft7Validator(
                _strict(json.loads(gzip.decompress(path.read_bytes())))
            )
        errors = sorted(cache[name].iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            where = ".".join(str(p) for p in errors[0].path)
            raise AssertionError(
                f"{kind}/{(obj.get('metadata') or {}).get('name')}: {where}:"
                f" {errors[0].message} (CRD schema {name})"
            )
        return name

    return check


@pytest.fixture(scope="session")
def validate() -> Callable[[dict[str, Any]], None]:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    from kubernetes_validate import utils

    def check(obj: dict[str, Any]) -> None:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except utils.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            raise AssertionError(
                f"{name}: {where}: {e.message} (Kubernetes {KUBERNETES_VERSION}, strict)"
            ) from None

    return check
