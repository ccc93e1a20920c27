"""The Kubernetes executor: each trial is the trial template's object (a batch/v1 Job, a
Kubeflow training job, a TrainJob, an Argo Workflow, a Tekton PipelineRun or any custom kind),
created in the experiment's namespace, watched through the API, its metrics read from its
primary pod's log."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.executors._base import (
    OUTPUT_TAIL_BYTES,
    Executor,
    ExecutorOptions,
    ExitReason,
    LaunchError,
    LaunchPlanner,
    Outcome,
    TrialHandle,
)
from tuner.executors._kubernetes_api import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    KubernetesApi,
    KubernetesError,
    PermanentKubernetesError,
    RetryPolicy,
    TemporaryKubernetesError,
    load_configuration,
)
from tuner.executors._kubernetes_informer import JobInformer
from tuner.executors._kubernetes_jobs import (
    EXECUTOR_NAME,
    JobReference,
    JobSettings,
    job_manifest,
)
from tuner.executors._kubernetes_logs import PodLogReader
from tuner.executors._kubernetes_outcome import job_name, job_uid, judge
from tuner.executors._labels import Selector, object_labels
from tuner.spec import LABEL_EXPERIMENT, LABEL_TRIAL, TrialKind

if TYPE_CHECKING:
    from tuner.spec import Experiment

log = logging.getLogger(__name__)

OUTPUT_TAIL_LINES = 50
"""Lines of a trial's pod log read to explain how it ended (``tailLines``)."""

# Kill waits for the pods: the trial counts as ended only once they are gone, so that a
# replacement never runs beside the trial it replaces. A finished Job has no running pods,
# so its clean-up need not wait.
KILL_PROPAGATION = "Foreground"
CLEANUP_PROPAGATION = "Background"
HTTP_CONFLICT = 409


class KubernetesTrialHandle(TrialHandle):
    """A trial run by :class:`KubernetesExecutor` (its object is named after the trial)."""

    def __init__(self, job: JobReference) -> None:
        super().__init__(job.trial_name, job.to_dict())
        self.job = job
        self.lock = threading.Lock()
        self.outcome: Outcome | None = None
        self.kill_requested = False
        self.deleting = False

    @property
    def namespace(self) -> str:
        return self.job.settings.namespace

    @property
    def kind(self) -> TrialKind:
        return self.job.settings.kind


class KubernetesExecutor(Executor):
    """Runs each trial as the trial template's object: a batch/v1 Job or any other kind
    (``tuner.spec.TrialKind``; "Job" below stands for the trial object of any kind).

    Call :meth:`prepare` for each experiment first: it reads the trial template's settings
    and refuses templates this executor cannot run (no primary container, an unsupported
    condition, a File collector). Then, per the :class:`Executor` contract:

    - ``launch`` creates the rendered object (``manifest``; argv, env, working_dir,
      deadline_seconds and grace_period_seconds are already in it and otherwise ignored:
      ``activeDeadlineSeconds``, ``backoffLimit`` and ``terminationGracePeriodSeconds`` are
      left to Kubernetes). A 409 for an object of the same trial adopts it. The API refusing
      the object (400, 403, 422...) or staying unreachable after retries raises
      :class:`LaunchError` with the API's message: the controller fails that trial.
    - ``poll`` judges the object as Katib does: the failure condition first, then the success
      condition; a Failed condition with reason ``DeadlineExceeded`` is
      ``DEADLINE_EXCEEDED``. States come from one watch per namespace and kind (see
      :class:`JobInformer`), so polling costs no API call.
    - ``kill`` deletes the object with ``propagationPolicy: Foreground``; the outcome is
      ``KILLED`` once it (and so its pods) is gone.
    - ``open_output`` follows the pods' logs (:class:`PodLogReader`); ``log_path`` is None.
    - ``cleanup`` deletes a finished object unless ``trialTemplate.retain``; call it after the
      trial's metrics are read and stored, since the logs go with the pods.
    - ``adopt`` / ``find`` after a restart: by the stored reference, or by the label
      ``katib.kubeflow.org/trial`` in the namespaces of the prepared experiments. An object is
      never created twice for one trial.

    API calls are retried with backoff on 408/429/5xx and connection errors (``retry``).
    ``host`` skips kubeconfig and in-cluster configuration (tests, ``kubectl proxy``).
    """

    name = EXECUTOR_NAME
    supports_dry_run = True
    cli_options = frozenset({"kubeconfig", "context"})

    def __init__(
        self,
        *,
        host: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        retry: RetryPolicy | None = None,
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        resync_seconds: float = 300.0,
        watch_seconds: int = 240,
        log_poll_seconds: float = 2.0,
        final_log_wait_seconds: float = 60.0,
    ) -> None:
        self._stopping = threading.Event()
        self.api = KubernetesApi(
            load_configuration(host=host, kubeconfig=kubeconfig, context=context),
            retry=retry,
            request_timeout=request_timeout_seconds,
            stopping=self._stopping,
        )
        self.resync_seconds = resync_seconds
        self.watch_seconds = watch_seconds
        self.log_poll_seconds = log_poll_seconds
        self.final_log_wait_seconds = final_log_wait_seconds
        self._lock = threading.Lock()
        self._settings: dict[tuple[str, str], JobSettings] = {}
        self._informers: dict[tuple[str, str, str, str], JobInformer] = {}
        self._readers: weakref.WeakSet[PodLogReader] = weakref.WeakSet()

    # -- capabilities --------------------------------------------------------------------

    @classmethod
    def dry_run(
        cls, experiment: Experiment, options: ExecutorOptions, plan: LaunchPlanner
    ) -> list[dict[str, Any]]:
        """The objects it would create, in kubectl's key order; no cluster is asked."""
        settings = JobSettings.from_experiment(experiment)
        return [
            _kubectl_order(job_manifest(request.manifest, settings, request.trial_name))
            for request in plan(None)
        ]

    # -- setup ---------------------------------------------------------------------------

    def prepare(self, experiment: Experiment) -> None:
        settings = JobSettings.from_experiment(experiment)
        with self._lock:
            self._settings[(settings.namespace, settings.experiment)] = settings
        self._informer(settings.namespace, settings.kind)  # watching before the first launch

    # -- launch --------------------------------------------------------------------------

    def launch(
        self,
        trial_name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        working_dir: str | Path | None,
        deadline_seconds: float | None,
        *,
        manifest: Mapping[str, Any] | None = None,
        grace_period_seconds: float | None = None,
    ) -> KubernetesTrialHandle:
        if manifest is None:
            raise LaunchError(
                f"trial {trial_name!r}: the kubernetes executor needs manifest= (the trial"
                " object rendered by render_trial)"
            )
        metadata = manifest.get("metadata") or {}
        key = (
            str(metadata.get("namespace")),
            str((metadata.get("labels") or {}).get(LABEL_EXPERIMENT)),
        )
        with self._lock:
            settings = self._settings.get(key)
        if settings is None:
            raise LaunchError(
                f"trial {trial_name!r}: experiment {key[0]}/{key[1]} was not prepared; call"
                " executor.prepare(experiment) before launching its trials"
            )
        body = job_manifest(manifest, settings, trial_name)
        informer = self._informer(settings.namespace, settings.kind)
        informer.track(trial_name)
        job: Mapping[str, Any]
        try:
            job = self.api.create_object(settings.kind, settings.namespace, body)
        except PermanentKubernetesError as e:
            if e.status != HTTP_CONFLICT:
                informer.forget(trial_name)
                raise LaunchError(
                    f"trial {trial_name!r}: Kubernetes refused {settings.kind.kind}"
                    f" {settings.namespace}/{trial_name}: {e.api_message or e}"
                ) from e
            job = self._existing_job(settings, trial_name, e)
        except KubernetesError as e:
            informer.forget(trial_name)
            raise LaunchError(f"trial {trial_name!r}: {e}") from e
        informer.seed(job)
        return KubernetesTrialHandle(JobReference(trial_name, settings, job_uid(job)))

    def _existing_job(
        self, settings: JobSettings, trial_name: str, conflict: KubernetesError
    ) -> Mapping[str, Any]:
        """The Job a 409 refers to, if it is this trial's (a retried or repeated create)."""
        where = f"{settings.namespace}/{trial_name}"
        try:
            job = self.api.get_object(settings.kind, settings.namespace, trial_name)
        except KubernetesError as e:
            raise LaunchError(f"trial {trial_name!r}: Job {where} exists but: {e}") from e
        labels = object_labels(job or {})
        mine = {LABEL_EXPERIMENT: settings.experiment, LABEL_TRIAL: trial_name}
        if job is None or any(labels.get(k) != v for k, v in mine.items()):
            raise LaunchError(
                f"trial {trial_name!r}: a Job named {where} already exists and is not this"
                f" trial's (its labels: {labels}); delete it or rename the experiment"
            ) from conflict
        if (job.get("metadata") or {}).get("deletionTimestamp"):
            raise LaunchError(
                f"trial {trial_name!r}: the existing Job {where} is being deleted; try again"
                " once it is gone"
            ) from conflict
        log.info("trial %s: its Job %s already existed; adopted it", trial_name, where)
        return job

    # -- watch ---------------------------------------------------------------------------

    def poll(self, handle: TrialHandle) -> Outcome | None:
        h = self._own(handle)
        with h.lock:
            if h.outcome is None:
                state = self._informer(h.namespace, h.kind).get(h.job.job_name)
                if state is not None:
                    h.outcome = judge(state, h.job, kill_requested=h.kill_requested)
            return h.outcome

    def wait(self, handle: TrialHandle, timeout: float | None = None) -> Outcome | None:
        h = self._own(handle)
        informer = self._informer(h.namespace, h.kind)
        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            generation = informer.generation
            outcome = self.poll(h)
            if outcome is not None:
                return outcome
            left = 1.0 if give_up is None else give_up - time.monotonic()
            if left <= 0:
                return None
            if self._stopping.is_set():
                # Closed: the informer has stopped and nothing will change any more. Waiting
                # out the timeout keeps a caller that waits in a loop from spinning.
                time.sleep(min(left, 1.0))
            else:
                informer.wait_changed(generation, min(left, 1.0))

    def kill(self, handle: TrialHandle) -> None:
        h = self._own(handle)
        with h.lock:
            if h.outcome is not None:
                return
            h.kill_requested = True
        if self.poll(h) is not None:
            return  # it ended by itself meanwhile: nothing to kill
        with h.lock:
            if h.deleting:
                return
            h.deleting = True
        try:
            self._delete(h, KILL_PROPAGATION)
        except TemporaryKubernetesError as e:
            log.warning("trial %s: %s; will keep trying to delete its Job", h.trial_name, e)
            threading.Thread(
                target=self._keep_deleting, args=(h,), name=f"kill-{h.trial_name}", daemon=True
            ).start()
        except KubernetesError:
            with h.lock:
                h.deleting = False  # a later kill() tries again
            raise

    def _delete(self, h: KubernetesTrialHandle, propagation: str) -> None:
        if not self.api.delete_object(h.kind, h.namespace, h.job.job_name, propagation):
            self._informer(h.namespace, h.kind).mark_deleted(h.job.job_name)

    def _keep_deleting(self, h: KubernetesTrialHandle) -> None:
        failures = 1
        while not self._stopping.wait(self.api.retry.delay(failures)):
            try:
                self._delete(h, KILL_PROPAGATION)
                return
            except TemporaryKubernetesError as e:
                failures += 1
                log.warning("trial %s: %s; will keep trying to delete its Job", h.trial_name, e)
            except KubernetesError as e:
                log.error("trial %s: cannot delete its Job: %s", h.trial_name, e)
                with h.lock:
                    h.deleting = False
                return

    def log_path(self, handle: TrialHandle) -> Path | None:
        self._own(handle)
        return None

    def _primary_pods(self, h: KubernetesTrialHandle) -> Selector:
        # The label the kind's controller puts on its pods (a Job's job-name, a training
        # job's training.kubeflow.org/job-name...) and the primary pod's labels.
        return Selector.equal({h.kind.pod_name_label or LABEL_TRIAL: h.job.job_name}) & (
            Selector.equal(dict(h.job.settings.primary_pod_labels))
        )

    def output_tail(self, handle: TrialHandle, max_bytes: int = OUTPUT_TAIL_BYTES) -> bytes:
        """The last lines of the primary container's log in the newest primary pod (one
        request for its tail, no follow); ``b""`` when there is no pod or log to read."""
        h = self._own(handle)
        settings = h.job.settings
        try:
            pods = self.api.list_pods(settings.namespace, self._primary_pods(h))
            if not pods:
                return b""
            newest = max(
                pods,
                key=lambda p: (
                    (p.get("metadata") or {}).get("creationTimestamp") or "",
                    (p.get("metadata") or {}).get("name") or "",
                ),
            )
            stream = self.api.pod_log(
                settings.namespace,
                (newest.get("metadata") or {}).get("name") or "",
                settings.primary_container,
                follow=False,
                read_timeout=self.api.request_timeout,
                tail_lines=OUTPUT_TAIL_LINES,
            )
            data = b""
            try:
                for chunk in stream.chunks():
                    data = (data + chunk)[-max_bytes:]
            finally:
                stream.close()
            return data
        except KubernetesError as e:
            log.info(
                "trial %s: its output could not be read to explain its end: %s", h.trial_name, e
            )
            return b""

    def open_output(self, handle: TrialHandle, position: int = 0) -> PodLogReader:
        h = self._own(handle)
        settings = h.job.settings
        selector = self._primary_pods(h)
        reader = PodLogReader(
            self.api,
            settings.namespace,
            h.job.job_name,
            settings.primary_container,
            selector,
            lambda: self.poll(h) is not None,
            # Only a Job's own pods carry its uid (a TrainJob's pods carry their Job's).
            job_uid=h.job.uid if settings.is_job else None,
            position=position,
            poll_seconds=self.log_poll_seconds,
            final_wait_seconds=self.final_log_wait_seconds,
        )
        with self._lock:
            self._readers.add(reader)
        return reader

    def cleanup(self, handle: TrialHandle) -> None:
        h = self._own(handle)
        outcome = self.poll(h)
        if outcome is None:
            log.warning("trial %s: cleanup of a running trial ignored", h.trial_name)
            return
        if not h.job.settings.retain and outcome.reason not in (ExitReason.KILLED, ExitReason.LOST):
            try:
                self.api.delete_object(h.kind, h.namespace, h.job.job_name, CLEANUP_PROPAGATION)
            except KubernetesError as e:  # the finished Job stays: untidy, not wrong
                log.warning("trial %s: finished Job not deleted: %s", h.trial_name, e)
        self._informer(h.namespace, h.kind).forget(h.job.job_name)

    # -- adopt ---------------------------------------------------------------------------

    def adopt(self, reference: Mapping[str, Any]) -> KubernetesTrialHandle | None:
        ref = JobReference.from_dict(reference)
        namespace, name, kind = ref.settings.namespace, ref.job_name, ref.settings.kind
        informer = self._informer(namespace, kind)
        informer.track(name)
        job = self.api.get_object(kind, namespace, name)
        problem = None
        if job is None:
            problem = "no longer exists"
        elif object_labels(job).get(LABEL_TRIAL) != ref.trial_name or (
            ref.uid is not None and job_uid(job) not in (None, ref.uid)
        ):
            problem = f"was replaced by another {kind.kind} of the same name"
        if problem is not None:
            informer.forget(name)
            handle = KubernetesTrialHandle(ref)
            handle.outcome = Outcome(
                ExitReason.LOST, message=f"lost: {kind.kind} {namespace}/{name} {problem}"
            )
            return handle
        assert job is not None
        informer.seed(job)
        return KubernetesTrialHandle(JobReference(ref.trial_name, ref.settings, job_uid(job)))

    def find(self, trial_name: str) -> KubernetesTrialHandle | None:
        with self._lock:
            prepared = dict(self._settings)
        selector = Selector.equal({LABEL_TRIAL: trial_name})
        kinds = {(s.namespace, s.kind) for s in prepared.values()}
        for namespace, kind in sorted(kinds, key=lambda k: (k[0], k[1].key)):
            jobs, _ = self.api.list_objects(kind, namespace, selector)
            # The object named after the trial first; a copy under another name is a fallback.
            for job in sorted(jobs, key=lambda j: job_name(j) != trial_name):
                settings = prepared.get((namespace, object_labels(job).get(LABEL_EXPERIMENT, "")))
                if settings is None or settings.kind != kind:
                    continue
                informer = self._informer(namespace, kind)
                informer.track(trial_name)
                informer.seed(job)
                return KubernetesTrialHandle(JobReference(trial_name, settings, job_uid(job)))
        return None

    # -- internals -----------------------------------------------------------------------

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            informers = list(self._informers.values())
            readers = list(self._readers)
        for reader in readers:
            reader.close()
        for informer in informers:
            informer.close()
        self.api.close()

    def _informer(self, namespace: str, kind: TrialKind) -> JobInformer:
        key = (namespace, kind.group, kind.version, kind.plural)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = JobInformer(
                    self.api,
                    kind,
                    namespace,
                    Selector.exists(LABEL_TRIAL),
                    resync_seconds=self.resync_seconds,
                    watch_seconds=self.watch_seconds,
                )
                self._informers[key] = informer
                if not self._stopping.is_set():
                    informer.start()
            return informer

    def _own(self, handle: TrialHandle) -> KubernetesTrialHandle:
        if not isinstance(handle, KubernetesTrialHandle):
            raise TypeError(f"handle: {handle!r} was not returned by a KubernetesExecutor")
        return handle


def _kubectl_order(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The same object with apiVersion, kind and metadata first, as people read manifests."""
    first = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    return {**first, **{k: v for k, v in obj.items() if k not in first}}
