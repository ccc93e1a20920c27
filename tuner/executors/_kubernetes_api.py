"""Every Kubernetes API call the executor makes, in one place: client configuration, retries
with backoff for temporary failures, and API errors translated into our own classes.

Objects come back as plain JSON dicts (camelCase, as the API sends them), because success and
failure conditions are evaluated on that JSON, as Katib does. The calls here are exactly what
the RBAC Role in ``manifests/`` allows: the trial objects of every kind create/get/list/watch/
delete (``TRIAL_OBJECT_VERBS``; any kind through one generic path, as Katib's dynamic client),
pods list, pods/log get.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tuner.executors._base import ExecutorError
from tuner.executors._labels import Selector
from tuner.spec import TRIAL_KINDS

log = logging.getLogger(__name__)

# 408 and 429 are the API server asking to come back later; 5xx its own trouble.
TEMPORARY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0
_T = TypeVar("_T")
TRIAL_OBJECT_VERBS = ("create", "delete", "get", "list", "watch")
"""What the executor does to trial objects (any kind); pods are only listed, logs read."""
POD_VERBS = {"pods": ("list",), "pods/log": ("get",)}


def role_rules() -> list[dict[str, list[str]]]:
    """The RBAC rules the executor needs, from the one table of kinds
    (``tuner.spec.TRIAL_KINDS``): what ``manifests/base/rbac.yaml`` grants (a test keeps the
    two equal). A kind not listed needs a rule of the same shape (docs/kubernetes.md)."""
    resources: dict[str, set[str]] = {}
    for kind in TRIAL_KINDS:
        resources.setdefault(kind.group, set()).add(kind.plural)
    rules = [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": list(TRIAL_OBJECT_VERBS)}
        for group, plurals in resources.items()
    ]
    rules += [
        {"apiGroups": [""], "resources": [resource], "verbs": list(verbs)}
        for resource, verbs in POD_VERBS.items()
    ]
    return rules


class ApiResource(Protocol):
    """An API resource of namespaced objects (``tuner.spec.TrialKind`` is one)."""

    @property
    def group(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def plural(self) -> str: ...

    @property
    def kind(self) -> str: ...


def resource_path(resource: ApiResource, namespace: str, name: str | None = None) -> str:
    """The REST path of a namespaced resource (``/api/v1`` for the core group)."""
    root = (
        f"/apis/{resource.group}/{resource.version}"
        if resource.group
        else f"/api/{resource.version}"
    )
    path = f"{root}/namespaces/{quote(namespace, safe='')}/{resource.plural}"
    return f"{path}/{quote(name, safe='')}" if name is not None else path


class KubernetesError(ExecutorError):
    """The Kubernetes API refused or failed a call. ``status`` is the HTTP status (None for a
    connection failure), ``reason``/``api_message`` the API's Status fields."""

    temporary: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        api_message: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.api_message = api_message
        self.retry_after = retry_after


class TemporaryKubernetesError(KubernetesError):
    """Worth retrying: 408/429/5xx, a dropped connection, a timeout (here: retries ran out)."""

    temporary = True


class PermanentKubernetesError(KubernetesError):
    """Retrying will not help: the request is invalid (400/422), forbidden (403), conflicting."""


class KubernetesConfigError(ExecutorError):
    """No usable cluster configuration (neither in-cluster nor a kubeconfig)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: ``attempts`` tries in all, the n-th wait drawn
    from ``[0, min(max_delay, initial_delay * 2**n)]`` (at least a server's Retry-After)."""

    attempts: int = 6
    initial_delay: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError(
                f"retry: attempts {self.attempts} must be at least 1 and 0 <= initial_delay"
                f" {self.initial_delay} <= max_delay {self.max_delay}"
            )

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        bound = min(self.max_delay, self.initial_delay * 2**retry)
        return max(random.uniform(0, bound), min(retry_after or 0.0, self.max_delay))


def load_configuration(
    *, host: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> client.Configuration:
    """``host`` alone (tests, ``kubectl proxy``); else the in-cluster service account, falling
    back to the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``; ``context`` picks one)."""
    configuration = client.Configuration()
    if host is not None:
        configuration.host = host.rstrip("/")
        return configuration
    in_cluster_problem = "a kubeconfig or context was asked for"
    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
            return configuration
        except config.ConfigException as e:
            in_cluster_problem = str(e)
    try:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (config.ConfigException, OSError, TypeError, ValueError) as e:
        raise KubernetesConfigError(
            f"no Kubernetes configuration: not in-cluster ({in_cluster_problem}), and kubeconfig"
            f" {kubeconfig or '(KUBECONFIG or ~/.kube/config)'} failed: {e}"
        ) from e
    return configuration


def translate(error: BaseException, what: str) -> KubernetesError:
    """Our error for a failed call; the caller raises it ``from error``."""
    if isinstance(error, ApiException) and error.status:
        body = error.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        try:
            status_object = json.loads(body or "{}")
        except ValueError:
            status_object = {}
        if not isinstance(status_object, dict):
            status_object = {}
        reason = str(status_object.get("reason") or error.reason or "")
        api_message = str(status_object.get("message") or (body or "").strip()[:500])
        retry_after = _seconds((error.headers or {}).get("Retry-After"))
        cls = (
            TemporaryKubernetesError
            if error.status in TEMPORARY_STATUSES
            else PermanentKubernetesError
        )
        return cls(
            f"{what}: {error.status} {reason}: {api_message}".rstrip(": "),
            status=error.status,
            reason=reason,
            api_message=api_message,
            retry_after=retry_after,
        )
    if isinstance(error, ApiException):  # status 0: the client refused, e.g. a TLS failure
        return PermanentKubernetesError(f"{what}: {error.reason}", reason=str(error.reason))
    return TemporaryKubernetesError(f"{what}: cannot reach the Kubernetes API: {error}")


_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class ResponseStream:
    """A streaming response (watch events or log bytes); :meth:`close` from any thread ends a
    blocked read, so that an executor can stop its watch and log threads promptly."""

    def __init__(self, response: Any, what: str) -> None:
        self._response = response
        self.what = what

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self._response.stream(None)
        except _ERRORS as e:
            raise translate(e, self.what) from e

    def lines(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.chunks():
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            yield from (line for line in complete if line.strip())
        if buffer.strip():
            yield buffer

    def close(self) -> None:
        shutdown = getattr(self._response, "shutdown", None)  # urllib3 >= 2.3: unblocks reads
        try:
            if shutdown is not None:
                shutdown()
            self._response.close()
            self._response.release_conn()
        except (OSError, ValueError, RuntimeError, urllib3.exceptions.HTTPError):
            pass  # already closed, or a connection that cannot be shut down: nothing to end


class KubernetesApi:
    """The executor's API client: thread-safe, one connection pool, calls retried per
    ``retry`` (interrupted when ``stopping`` is set)."""

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        stopping: threading.Event | None = None,
    ) -> None:
        configuration.retries = False  # one retry policy: ours (urllib3 would retry again)
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, 32)
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.stopping = stopping or threading.Event()
        self._client = client.ApiClient(configuration)
        self._client.user_agent = f"tuner/{_version()} (kubernetes executor)"
        self._core = client.CoreV1Api(self._client)

    # -- trial objects (any kind, as Katib's dynamic client) -----------------------------

    def create_object(
        self, resource: ApiResource, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name")
        return self._json(
            f"create {resource.kind} {namespace}/{name}",
            self._request,
            "POST",
            resource_path(resource, namespace),
            body=body,
        )

    def get_object(self, resource: ApiResource, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None if there is none of that name."""
        try:
            return self._json(
                f"get {resource.kind} {namespace}/{name}",
                self._request,
                "GET",
                resource_path(resource, namespace, name),
            )
        except PermanentKubernetesError as e:
            if e.status == 404:
                return None
            raise

    def list_objects(
        self, resource: ApiResource, namespace: str, selector: Selector
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects matching ``selector`` (checked here too) and the list's
        resourceVersion."""
        listing = self._json(
            f"list {resource.kind} objects in {namespace} ({selector})",
            self._request,
            "GET",
            resource_path(resource, namespace),
            query=[("labelSelector", str(selector))],
        )
        items = [i for i in listing.get("items") or () if isinstance(i, dict)]
        resource_version = (listing.get("metadata") or {}).get("resourceVersion") or ""
        return [dict(i) for i in selector.select(items)], str(resource_version)

    def watch_objects(
        self,
        resource: ApiResource,
        namespace: str,
        selector: Selector,
        resource_version: str,
        timeout_seconds: int,
    ) -> ResponseStream:
        """A watch from ``resource_version``; the server ends it after ``timeout_seconds``."""
        what = f"watch {resource.kind} objects in {namespace} ({selector})"
        query = [
            ("labelSelector", str(selector)),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        response = self._call(
            what,
            self._request,
            "GET",
            resource_path(resource, namespace),
            query=query,
            # The server closes at timeout_seconds; the read timeout is a safety net.
            timeout=(self.request_timeout, timeout_seconds + self.request_timeout),
        )
        return ResponseStream(response, what)

    def delete_object(
        self, resource: ApiResource, namespace: str, name: str, propagation: str
    ) -> bool:
        """Delete with ``propagation`` (Foreground/Background); False if it was already gone."""
        try:
            self._json(
                f"delete {resource.kind} {namespace}/{name}",
                self._request,
                "DELETE",
                resource_path(resource, namespace, name),
                query=[("propagationPolicy", propagation)],
            )
        except PermanentKubernetesError as e:
            if e.status == 404:
                return False
            raise
        return True

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        timeout: Any = None,
        _preload_content: bool = False,
        _request_timeout: Any = None,
    ) -> Any:
        """One call to ``path``, its urllib3 response unread (``_json`` or a stream reads it)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._client.call_api(
            path,
            method,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=timeout if timeout is not None else _request_timeout,
        )

    # -- pods ------------------------------------------------------------------------------

    def list_pods(self, namespace: str, selector: Selector) -> list[dict[str, Any]]:
        listing = self._json(
            f"list Pods in {namespace} ({selector})",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=str(selector),
        )
        items = [i for i in listing.get("items") or () if isinstance(i, dict)]
        return [dict(i) for i in selector.select(items)]

    def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        follow: bool,
        read_timeout: float,
        tail_lines: int | None = None,
    ) -> ResponseStream:
        """The container's log from its start (its last ``tail_lines`` lines, if given);
        with ``follow`` it stays open while it runs."""
        what = f"log of container {container} of Pod {namespace}/{pod}"
        tail = {} if tail_lines is None else {"tail_lines": tail_lines}
        response = self._call(
            what,
            self._core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            follow=follow,
            _preload_content=False,
            _request_timeout=(self.request_timeout, read_timeout),
            **tail,
        )
        return ResponseStream(response, what)

    # -- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def _json(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            response = fn(
                *args, _preload_content=False, _request_timeout=self.request_timeout, **kwargs
            )
            try:
                return json.loads(response.data or b"{}")
            except ValueError as e:  # a proxy's HTML error page, a truncated body
                raise urllib3.exceptions.ProtocolError(f"response is not JSON: {e}") from e

        return self._call(what, call)

    def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        for retry in range(self.retry.attempts):
            try:
                return fn(*args, **kwargs)
            except _ERRORS as e:
                error = translate(e, what)
                if not error.temporary or retry + 1 >= self.retry.attempts:
                    if error.temporary:
                        error.args = (f"{error} (gave up after {self.retry.attempts} attempts)",)
                    raise error from e
                delay = self.retry.delay(retry, error.retry_after)
                log.info("%s; retrying in %.2fs", error, delay)
                if self.stopping.wait(delay):
                    raise TemporaryKubernetesError(f"{what}: the executor is closing") from e
        raise AssertionError("unreachable: attempts >= 1")  # pragma: no cover


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _version() -> str:
    try:
        return metadata.version("tuner")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"
