"""The latest state of the trial objects (Jobs or any other kind) of one namespace, kept by
one background thread: a list, then a watch from the list's resourceVersion; a re-list on
410 Gone, after errors (with backoff) and every ``resync_seconds`` as a safety net against a
missed event."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.executors._kubernetes_api import (
    ApiResource,
    KubernetesApi,
    KubernetesError,
    ResponseStream,
    TemporaryKubernetesError,
)
from tuner.executors._labels import Selector, object_labels

log = logging.getLogger(__name__)

HTTP_GONE = 410
MIN_WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class JobState:
    """A Job as last seen; ``deleted`` once it is gone (``job`` is then its last state)."""

    job: Mapping[str, Any]
    deleted: bool
    seq: int


class JobInformer:
    """Caches the objects of ``resource`` in ``namespace`` matching ``selector`` whose names
    are tracked.

    Only tracked names are kept (the executor tracks its trials), so memory follows the
    executor's own trials, not the namespace. Thread-safe; :meth:`wait_changed` lets a
    caller sleep until the cache changes.
    """

    def __init__(
        self,
        api: KubernetesApi,
        resource: ApiResource,
        namespace: str,
        selector: Selector,
        *,
        resync_seconds: float,
        watch_seconds: int,
    ) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.resync_seconds = resync_seconds
        self.watch_seconds = max(1, watch_seconds)
        self._changed = threading.Condition()
        self._jobs: dict[str, JobState] = {}
        self._tracked: set[str] = set()
        self._seq = 0
        self._stream: ResponseStream | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"kubernetes-{resource.plural}-{namespace}", daemon=True
        )

    # -- for the executor ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._changed:
            stream = self._stream
            self._changed.notify_all()
        if stream is not None:
            stream.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def track(self, name: str) -> None:
        with self._changed:
            self._tracked.add(name)

    def forget(self, name: str) -> None:
        with self._changed:
            self._tracked.discard(name)
            self._jobs.pop(name, None)

    def seed(self, job: Mapping[str, Any]) -> None:
        """Record a Job the executor has just created or read."""
        with self._changed:
            self._put(job, deleted=False)

    def mark_deleted(self, name: str) -> None:
        """The API said there is no such Job (a delete or get answered 404)."""
        with self._changed:
            state = self._jobs.get(name)
            if name in self._tracked and (state is None or not state.deleted):
                self._store(name, state.job if state else {"metadata": {"name": name}}, True)

    def get(self, name: str) -> JobState | None:
        with self._changed:
            return self._jobs.get(name)

    @property
    def generation(self) -> int:
        with self._changed:
            return self._seq

    def wait_changed(self, generation: int, timeout: float) -> None:
        """Return when the cache changed after ``generation``, or after ``timeout``."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._seq != generation or self._stopping.is_set(), timeout
            )

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        resource_version, relist, failures, resync_at = "", True, 0, 0.0
        while not self._stopping.is_set():
            try:
                if relist:
                    resource_version = self._relist()
                    relist, resync_at = False, time.monotonic() + self.resync_seconds
                started = time.monotonic()
                resource_version, relist = self._watch(resource_version, resync_at)
                failures = 0
                if not relist and time.monotonic() - started < MIN_WATCH_SECONDS:
                    # A server that ends every watch at once must not make this a busy loop.
                    self._stopping.wait(MIN_WATCH_SECONDS)
            except KubernetesError as e:
                if self._stopping.is_set():
                    break
                relist = True
                if e.status == HTTP_GONE:  # the watch request itself was too old
                    continue
                delay = self.api.retry.delay(failures)
                failures += 1
                log.warning("%s; listing %s again in %.1fs", e, self.resource.plural, delay)
                self._stopping.wait(delay)
            except Exception:  # pragma: no cover - a bug here must not end the thread
                log.exception(
                    "watching %s in %s failed; listing again", self.resource.plural, self.namespace
                )
                relist = True
                self._stopping.wait(self.api.retry.max_delay)

    def _relist(self) -> str:
        with self._changed:
            started = self._seq
        jobs, resource_version = self.api.list_objects(self.resource, self.namespace, self.selector)
        with self._changed:
            listed = set()
            for job in jobs:
                listed.add(_name(job))
                self._put(job, deleted=False)
            for name, state in list(self._jobs.items()):
                # An entry newer than the list's start (a Job created meanwhile) is kept.
                if name not in listed and not state.deleted and state.seq <= started:
                    self._store(name, state.job, True)
        return resource_version

    def _watch(self, resource_version: str, resync_at: float) -> tuple[str, bool]:
        """Follow events until the server ends the watch or a re-list is due at
        ``resync_at`` (monotonic); returns (resourceVersion, re-list now?)."""
        remaining = resync_at - time.monotonic()
        if remaining <= 0:
            return resource_version, True
        timeout = int(max(1.0, min(float(self.watch_seconds), remaining)))
        stream = self.api.watch_objects(
            self.resource, self.namespace, self.selector, resource_version, timeout
        )
        resync_due = threading.Event()

        def resync() -> None:  # independent of the server honouring timeoutSeconds
            resync_due.set()
            stream.close()

        timer = threading.Timer(remaining, resync)
        timer.daemon = True
        with self._changed:
            self._stream = stream
        timer.start()
        try:
            if self._stopping.is_set():
                return resource_version, False
            for line in stream.lines():
                event = _event(line, stream.what)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == HTTP_GONE:
                        log.info(
                            "watch of %s in %s expired (410 Gone)",
                            self.resource.plural,
                            self.namespace,
                        )
                        return resource_version, True
                    raise TemporaryKubernetesError(
                        f"{stream.what}: error event {obj.get('code')} {obj.get('reason')}:"
                        f" {obj.get('message')}"
                    )
                if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    raise TemporaryKubernetesError(f"{stream.what}: unexpected event {kind!r}")
                if kind != "BOOKMARK":
                    with self._changed:
                        self._put(obj, deleted=kind == "DELETED")
                resource_version = (obj.get("metadata") or {}).get(
                    "resourceVersion"
                ) or resource_version
        except KubernetesError:
            if resync_due.is_set():
                return resource_version, True
            raise
        finally:
            timer.cancel()
            with self._changed:
                self._stream = None
            stream.close()
        return resource_version, resync_due.is_set()

    # -- cache (callers hold self._changed) ----------------------------------------------

    def _put(self, job: Mapping[str, Any], *, deleted: bool) -> None:
        name = _name(job)
        # A server or proxy may ignore the selector; the cache does not.
        if name in self._tracked and self.selector.matches(object_labels(job)):
            self._store(name, job, deleted)

    def _store(self, name: str, job: Mapping[str, Any], deleted: bool) -> None:
        self._seq += 1
        self._jobs[name] = JobState(job, deleted, self._seq)
        self._changed.notify_all()


def _name(job: Mapping[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("name") or "")


def _event(line: bytes, what: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as e:
        raise TemporaryKubernetesError(f"{what}: an event is not JSON: {line[:200]!r}") from e
    if not isinstance(event, dict):
        raise TemporaryKubernetesError(f"{what}: an event is not an object: {line[:200]!r}")
    return event
