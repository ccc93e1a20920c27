"""A Kubernetes trial's output as one byte stream: the primary container's log of each of the
Job's pods, oldest pod first, the newest one followed while it runs.

A dropped log stream is opened again from the start of the log and the bytes already taken
are skipped, so a reconnect never repeats (or loses) a line. The stream is the same after a
controller restart, so a stored byte position resumes it. One thread per open reader.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tuner.executors._kubernetes_api import KubernetesApi, KubernetesError, ResponseStream
from tuner.executors._labels import Selector, object_labels

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 64 * 1024
DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
_FINISHED_PHASES = ("Succeeded", "Failed")


class _Closed(Exception):
    """The reader was closed: its thread ends."""


class PodLogReader:
    """Implements ``TrialOutput`` for one Job: ``read_new`` never blocks while the trial runs;
    once ``trial_ended()`` is true it waits (up to ``final_wait_seconds``) for the rest of
    the log, so that a final read after the trial's end gets every line.

    Limitation: with ``restartPolicy: OnFailure`` each restarted container's log is read from
    its start; output an earlier instance wrote while no stream was open is not recovered.
    """

    def __init__(
        self,
        api: KubernetesApi,
        namespace: str,
        job_name: str,
        container: str,
        pod_selector: Selector,
        trial_ended: Callable[[], bool],
        *,
        job_uid: str | None = None,
        position: int = 0,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        poll_seconds: float = 2.0,
        final_wait_seconds: float = 60.0,
        read_timeout_seconds: float = 600.0,
    ) -> None:
        if position < 0 or chunk_bytes < 1 or buffer_bytes < 1:
            raise ValueError(f"position {position} / chunk_bytes / buffer_bytes out of range")
        self.api = api
        self.namespace = namespace
        self.job_name = job_name
        self.container = container
        self.pod_selector = pod_selector
        self.job_uid = job_uid
        self.chunk_bytes = chunk_bytes
        self.buffer_bytes = buffer_bytes
        self.poll_seconds = poll_seconds
        self.final_wait_seconds = final_wait_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self._trial_ended = trial_ended
        self._cond = threading.Condition()
        self._buffer = bytearray()
        self._skip = position  # taken before a restart: dropped as it arrives again
        self._offset = position
        self._eof = False
        self._stopping = threading.Event()
        self._stream: ResponseStream | None = None
        self._consumed = 0  # bytes of the current container instance's log already taken
        self._thread = threading.Thread(
            target=self._run, name=f"pod-log-{namespace}-{job_name}", daemon=True
        )
        self._thread.start()

    # -- TrialOutput ---------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes of the stream returned so far (with the starting position)."""
        with self._cond:
            return self._offset

    def read_new(self, max_bytes: int | None = None) -> bytes:
        ended = self._trial_ended()
        with self._cond:
            if ended and not self._buffer and not self._eof and not self._stopping.is_set():
                # The log is complete on the server now; wait for what is still on its way.
                if not self._cond.wait_for(self._readable, self.final_wait_seconds):
                    log.warning(
                        "trial Job %s/%s ended but its log was not fully read after %.0fs",
                        self.namespace,
                        self.job_name,
                        self.final_wait_seconds,
                    )
            data = bytes(self._buffer[: max_bytes or self.chunk_bytes])
            del self._buffer[: len(data)]
            self._offset += len(data)
            self._cond.notify_all()
            return data

    def close(self) -> None:
        self._stopping.set()
        with self._cond:
            stream = self._stream
            self._cond.notify_all()
        if stream is not None:
            stream.close()

    def __enter__(self) -> PodLogReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def at_end(self) -> bool:
        """Every pod's log has been read to its end (more may come from no pod)."""
        with self._cond:
            return self._eof and not self._buffer

    # -- the thread ----------------------------------------------------------------------

    def _readable(self) -> bool:
        return bool(self._buffer) or self._eof or self._stopping.is_set()

    def _run(self) -> None:
        try:
            finished: set[str] = set()
            while True:
                # Whether the trial had ended is read before the pods are listed: a pod that
                # started, ran and ended between a listing and that check would be missed.
                ended = self._trial_ended()
                pending = [p for p in self._pods() if _uid(p) not in finished]
                if not pending:
                    if ended:
                        return
                    self._sleep(self.poll_seconds)
                    continue
                self._read_pod(pending[0])
                finished.add(_uid(pending[0]))
        except _Closed:
            pass
        except Exception:  # pragma: no cover - a bug must not leave readers waiting
            log.exception("reading the log of Job %s/%s failed", self.namespace, self.job_name)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _pods(self) -> list[Mapping[str, Any]]:
        """The Job's pods, oldest first; retried with backoff until the API answers."""
        failures = 0
        while True:
            try:
                pods = self.api.list_pods(self.namespace, self.pod_selector)
                break
            except KubernetesError as e:
                delay = self.api.retry.delay(failures)
                failures += 1
                log.warning("%s; trying again in %.1fs", e, delay)
                self._sleep(delay)
        pods = [p for p in pods if self._belongs(p)]
        return sorted(pods, key=lambda p: (_meta(p).get("creationTimestamp") or "", _name(p)))

    def _belongs(self, pod: Mapping[str, Any]) -> bool:
        if self.job_uid is None:
            return True
        labels = object_labels(pod)
        return all(labels.get(k, self.job_uid) == self.job_uid for k in CONTROLLER_UID_LABELS)

    def _read_pod(self, pod: Mapping[str, Any]) -> None:
        """Take the primary container's log of ``pod`` until the container has ended."""
        uid, name = _uid(pod), _name(pod)
        self._consumed, restarts, clean_end, failures = 0, None, False, 0
        while True:
            ended = self._trial_ended()  # before the listing, as in _run
            current = next((p for p in self._pods() if _uid(p) == uid), None)
            if current is None:
                return  # deleted (killed, or cleaned up): nothing more will come
            state, count = _container_state(current, self.container)
            if restarts is not None and count != restarts:
                self._consumed, clean_end = 0, False  # a new container instance, a new log
            restarts = count
            if state == "terminated" and clean_end:
                return  # the follow stream ended because the container did: all was read
            if state == "running" and clean_end:
                self._sleep(min(1.0, self.poll_seconds))  # a dropped stream: not in a busy loop
            finished = _phase(current) in _FINISHED_PHASES
            if state in (None, "waiting") and not finished:
                if ended:
                    return  # it never ran, and never will
                self._sleep(self.poll_seconds)
                continue
            # A finished pod whose container has no state yet (its status written in two
            # steps) may still have a log: read once, like a terminated container's.
            follow = state == "running" and not finished
            try:
                self._copy(name, follow=follow)
            except KubernetesError as e:
                if e.status == 404 or (e.status == 400 and state != "terminated"):
                    return  # gone, or a container that never ran: no log to read
                if failures + 1 >= self.api.retry.attempts and finished:
                    log.warning("%s; the log of finished pod %s is not read", e, name)
                    return
                delay = self.api.retry.delay(failures)
                failures += 1
                log.info("%s; reading it again from the start in %.1fs", e, delay)
                clean_end = False
                self._sleep(delay)
                continue
            if not follow:
                return
            clean_end = True  # dropped, or the container ended: the pod's state will tell

    def _copy(self, pod: str, *, follow: bool) -> None:
        stream = self.api.pod_log(
            self.namespace,
            pod,
            self.container,
            follow=follow,
            read_timeout=self.read_timeout_seconds,
        )
        with self._cond:
            self._stream = stream
        try:
            seen = 0
            for chunk in stream.chunks():
                new = chunk[max(0, self._consumed - seen) :]
                seen += len(chunk)
                if new:
                    self._deliver(new)
                    self._consumed = seen
                if self._stopping.is_set():
                    raise _Closed
        finally:
            with self._cond:
                self._stream = None
            stream.close()

    def _deliver(self, data: bytes) -> None:
        with self._cond:
            if self._skip:
                dropped = min(self._skip, len(data))
                data, self._skip = data[dropped:], self._skip - dropped
            # Backpressure: a trial printing faster than the controller reads waits here.
            self._cond.wait_for(
                lambda: len(self._buffer) < self.buffer_bytes or self._stopping.is_set()
            )
            if self._stopping.is_set():
                raise _Closed
            self._buffer += data
            self._cond.notify_all()

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Closed


def _container_state(pod: Mapping[str, Any], container: str) -> tuple[str | None, int]:
    """('waiting' | 'running' | 'terminated' | None, restartCount) of ``container``."""
    status = pod.get("status") or {}
    for item in status.get("containerStatuses") or ():
        if isinstance(item, Mapping) and item.get("name") == container:
            state = item.get("state") or {}
            found = next((s for s in ("terminated", "running", "waiting") if s in state), None)
            return found, int(item.get("restartCount") or 0)
    return None, 0


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _uid(obj: Mapping[str, Any]) -> str:
    # kmock and other test servers may leave uid out; the name is unique per namespace too.
    return str(_meta(obj).get("uid") or _name(obj))


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")
