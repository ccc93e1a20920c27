"""The Kubernetes executor over real HTTP against kmock's Kubernetes API emulator.

kmock stores the objects and serves list, watch, create, patch and delete; the test plays the
rest of Kubernetes (fixture ``cluster`` in tests/conftest.py): the Job controller (it patches
Job status) and the kubelet (it creates pods and serves their logs). Executor calls block, so
they run in threads while kmock serves on the test's event loop. Waits only guard against
hangs; nothing asserts how long it took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.executors import ExitReason, LaunchError, Outcome  # noqa: E402
from tuner.executors._kubernetes import KubernetesExecutor, KubernetesTrialHandle  # noqa: E402
from tuner.executors._kubernetes_api import (  # noqa: E402
    TemporaryKubernetesError,
    role_rules,
)
from tuner.executors._kubernetes_jobs import render_job_manifests  # noqa: E402
from tuner.executors._kubernetes_logs import PodLogReader  # noqa: E402
from tuner.executors._labels import Selector  # noqa: E402
from tuner.metrics import StdOutParser  # noqa: E402
from tuner.spec import Experiment, loads, render_trial  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
WAIT = 20.0
ROLE_FILE = Path(__file__).resolve().parents[2] / "manifests" / "base" / "rbac.yaml"


def experiment(name: str = "exp", *, retain: bool = False) -> Experiment:
    return loads(f"""
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: {name}, namespace: {NS}}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss, additionalMetricNames: [acc]}}
  algorithm: {{algorithmName: random}}
  parameters:
    - {{name: lr, parameterType: double, feasibleSpace: {{min: "0.01", max: "0.1"}}}}
  trialTemplate:
    primaryContainerName: main
    primaryPodLabels: {{role: trainer}}
    retain: {str(retain).lower()}
    trialParameters: [{{name: lr, reference: lr}}]
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: main
                image: "trainer:1"
                command: [python3, train.py, "--lr=${{trialParameters.lr}}"]
              - {{name: helper, image: "busybox:1"}}
""")[0]


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def launch(executor: KubernetesExecutor, exp: Experiment, trial: str) -> Any:
    await run(executor.prepare, exp)
    rendered = render_trial(exp, trial, {"lr": 0.05})
    return await run(
        executor.launch, trial, rendered.argv, rendered.env, None, None, manifest=rendered.manifest
    )


async def read_until(reader: Any, expected: bytes) -> bool:
    """Whether the reader returns exactly ``expected`` next (reads never block while the
    trial runs, so this polls; more or other bytes fail)."""
    data = b""
    for _ in range(int(WAIT / 0.02)):
        data += await run(reader.read_new)
        if len(data) >= len(expected):
            assert data == expected
            return True
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {data!r} of {expected!r} arrived")


async def read_all(reader: Any) -> bytes:
    """After the trial's end: everything that is left, up to the end of the stream."""
    data = b""
    while chunk := await run(reader.read_new):
        data += chunk
    return data


def job_in(server: Any, name: str) -> dict[str, Any]:
    return dict(server.objects[kmock.resource("batch", "v1", "jobs"), NS, name])


def metrics(output: bytes) -> list[tuple[str, float]]:
    parser = StdOutParser(["loss", "acc"])
    return [(p.name, p.value) for p in parser.feed(output) + parser.close()]


async def test_job_runs_to_completion_with_metrics_from_its_pod_log(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(), "exp-t1")
    job = job_in(cluster.server, "exp-t1")
    trial_labels = {"katib.kubeflow.org/experiment": "exp", "katib.kubeflow.org/trial": "exp-t1"}
    assert trial_labels.items() <= job["metadata"]["labels"].items()
    assert {**trial_labels, "role": "trainer"}.items() <= (
        job["spec"]["template"]["metadata"]["labels"].items()
    )
    assert await run(executor.poll, handle) is None

    log = await cluster.start_pod("exp-t1", "exp-t1-a")
    # A pod of the same Job without the primary pod labels is not the trial's output.
    other = await cluster.start_pod("exp-t1", "exp-t1-sidecar", labels={"role": "ps"})
    other.write(b"loss=99\n")
    reader = await run(executor.open_output, handle)
    log.write(b"epoch 1\nloss=0.5 acc=0.7\n")
    assert await read_until(reader, b"epoch 1\nloss=0.5 acc=0.7\n")
    assert await run(executor.poll, handle) is None

    log.write(b"loss=0.25")  # the last line has no newline
    await cluster.end_pod("exp-t1-a")
    await cluster.finish_job("exp-t1", "Complete")
    outcome: Outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is ExitReason.COMPLETED
    assert outcome.finished_at is not None and outcome.started_at is not None
    rest = await read_all(reader)
    assert metrics(b"epoch 1\nloss=0.5 acc=0.7\n" + rest) == [
        ("loss", 0.5),
        ("acc", 0.7),
        ("loss", 0.25),
    ]
    await run(reader.close)

    await run(executor.cleanup, handle)  # retain is false: the finished Job goes
    deletes = [r for r in cluster.calls() if r.action.name == "DELETE"]
    assert [(r.name, r.params.get("propagationPolicy")) for r in deletes] == [
        ("exp-t1", "Background")
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("BackoffLimitExceeded", ExitReason.FAILED),
        ("DeadlineExceeded", ExitReason.DEADLINE_EXCEEDED),
    ],
)
async def test_failed_job_reports_kubernetes_reason(cluster, executors, reason, expected):
    executor = executors()
    handle = await launch(executor, experiment(retain=True), "exp-f1")
    await cluster.start_pod("exp-f1", "exp-f1-a")
    await cluster.end_pod("exp-f1-a", exit_code=1)
    await cluster.finish_job("exp-f1", "Failed", reason, "Job has reached its limit")
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is expected
    assert outcome.message == f"{reason}: Job has reached its limit"
    await run(executor.cleanup, handle)  # retain: the Job stays for inspection
    assert not [r for r in cluster.calls() if r.action.name == "DELETE"]
    assert job_in(cluster.server, "exp-f1")


async def test_a_failed_trials_output_tail_is_the_end_of_its_primary_pods_log(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(retain=True), "exp-f2")
    log = await cluster.start_pod("exp-f2", "exp-f2-a")
    other = await cluster.start_pod("exp-f2", "exp-f2-sidecar", labels={"role": "ps"})
    other.write(b"not the trial's output\n")
    log.write(b"".join(b"line %d\n" % i for i in range(200)) + b"Traceback: boom\n")
    await cluster.end_pod("exp-f2-a", exit_code=1)
    await cluster.finish_job("exp-f2", "Failed", "BackoffLimitExceeded", "limit")
    assert (await run(executor.wait, handle, WAIT)).reason is ExitReason.FAILED

    tail = await run(executor.output_tail, handle)
    # The last lines only (the kubelet's tailLines), ending with the failure.
    assert tail.endswith(b"line 199\nTraceback: boom\n")
    assert b"line 0\n" not in tail and b"not the trial's output" not in tail
    assert len(await run(executor.output_tail, handle, 10)) == 10


async def test_output_tail_without_a_pod_is_empty(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(), "exp-f3")
    assert await run(executor.output_tail, handle) == b""


async def test_create_conflict_adopts_the_trials_own_job_only(cluster, executors):
    exp = experiment()
    [body] = render_job_manifests(exp, {"exp-c1": {"lr": 0.05}})
    assert (await cluster.server.post(JOBS, json=body)).status in (200, 201)
    executor = executors()
    handle = await launch(executor, exp, "exp-c1")  # a retried create: 409, then adopted
    assert isinstance(handle, KubernetesTrialHandle)
    assert [r.action.name for r in cluster.calls() if r.action.name in ("CREATE", "FETCH")] == [
        "CREATE",
        "FETCH",
    ]

    foreign = {**body, "metadata": {"name": "exp-c2", "namespace": NS, "labels": {"app": "x"}}}
    assert (await cluster.server.post(JOBS, json=foreign)).status in (200, 201)
    with pytest.raises(LaunchError, match="already exists and is not this trial's"):
        await launch(executor, exp, "exp-c2")


async def test_watch_gone_lists_again(cluster, executors):
    gone = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version",
        },
    }
    cluster.server["watch", kmock.resource("batch", "v1", "jobs")][:1] << (gone,)
    executor = executors(resync_seconds=300)  # no periodic re-list to blur the sequence
    handle = await launch(executor, experiment(), "exp-w1")
    for _ in range(int(WAIT / 0.02)):
        job_calls = [
            r.action.name
            for r in cluster.calls()
            if r.resource.plural == "jobs" and r.action.name in ("LIST", "WATCH")
        ]
        if job_calls.count("WATCH") >= 2:
            break
        await asyncio.sleep(0.02)
    assert job_calls[:4] == ["LIST", "WATCH", "LIST", "WATCH"]  # 410, then a fresh list
    await cluster.finish_job("exp-w1", "Complete")
    assert (await run(executor.wait, handle, WAIT)).reason is ExitReason.COMPLETED


async def test_dropped_log_stream_resumes_without_repeating_a_line(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(), "exp-d1")
    log = await cluster.start_pod("exp-d1", "exp-d1-a")
    reader = await run(executor.open_output, handle)
    log.write(b"loss=0.5\nacc")
    assert await read_until(reader, b"loss=0.5\nacc")
    log.drop()  # the stream ends while the container runs: the reader reads the log again
    log.write(b"=0.9\n")
    assert await read_until(reader, b"=0.9\n")
    assert log.requests >= 2

    log.write(b"loss=0.25\n")
    await cluster.end_pod("exp-d1-a")
    await cluster.finish_job("exp-d1", "Complete")
    await run(executor.wait, handle, WAIT)
    assert await read_all(reader) == b"loss=0.25\n"
    await run(reader.close)


async def test_retried_job_output_is_every_pod_oldest_first(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(), "exp-r1")
    first = await cluster.start_pod("exp-r1", "exp-r1-a", created="2026-01-01T00:00:00Z")
    first.write(b"loss=0.9\n")
    await cluster.end_pod("exp-r1-a", exit_code=1)
    second = await cluster.start_pod("exp-r1", "exp-r1-b", created="2026-01-01T00:00:30Z")
    second.write(b"loss=0.4\n")
    await cluster.end_pod("exp-r1-b")
    await cluster.finish_job("exp-r1", "Complete")
    await run(executor.wait, handle, WAIT)
    reader = await run(executor.open_output, handle, 9)  # resumed after the first pod's log
    assert await read_all(reader) == b"loss=0.4\n"
    await run(reader.close)


async def test_a_pod_that_lives_and_ends_between_two_listings_is_still_read(cluster, executors):
    """The trial's end is read before the pods are listed: a quick pod that is created, runs
    and ends (and its Job completes) right before that check is in the listing that follows,
    so its log is read, not skipped because the trial has ended."""
    executor = executors()
    await launch(executor, experiment(), "exp-q1")
    loop = asyncio.get_running_loop()
    calls = 0

    async def whole_pod_life() -> None:
        log = await cluster.start_pod("exp-q1", "exp-q1-a")
        log.write(b"loss=0.3\n")
        await cluster.end_pod("exp-q1-a")
        await cluster.finish_job("exp-q1", "Complete")

    def trial_ended() -> bool:
        # The pod's whole life happens just before the reader first asks whether the trial
        # has ended; a listing made before that question could not have shown the pod.
        nonlocal calls
        calls += 1
        if calls == 1:
            asyncio.run_coroutine_threadsafe(whole_pod_life(), loop).result(WAIT)
        return True

    reader = PodLogReader(
        executor.api,
        NS,
        "exp-q1",
        "main",
        Selector.parse("job-name=exp-q1"),
        trial_ended,
        poll_seconds=0.05,
        final_wait_seconds=WAIT,
    )
    assert await read_all(reader) == b"loss=0.3\n"
    await run(reader.close)


async def test_a_finished_pod_whose_container_has_no_state_yet_is_read(cluster, executors):
    """A pod seen Succeeded before its container's terminated state is written (the status
    arrives in two steps) still has its log read."""
    executor = executors()
    handle = await launch(executor, experiment(), "exp-s1")
    log = cluster.new_log("exp-s1-a")
    log.write(b"loss=0.7\n")
    log.end()
    response = await cluster.server.post(
        cluster.pods_path,
        json={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "exp-s1-a",
                "namespace": NS,
                "labels": {"job-name": "exp-s1", "role": "trainer"},
            },
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [{"name": "main", "restartCount": 0, "state": {}}],
            },
        },
    )
    assert response.status in (200, 201), await response.text()
    await cluster.finish_job("exp-s1", "Complete")
    await run(executor.wait, handle, WAIT)
    reader = await run(executor.open_output, handle)
    assert await read_all(reader) == b"loss=0.7\n"
    await run(reader.close)


async def test_kill_deletes_the_job_and_its_pods(cluster, executors):
    executor = executors()
    handle = await launch(executor, experiment(), "exp-k1")
    await cluster.start_pod("exp-k1", "exp-k1-a")
    await run(executor.kill, handle)
    await run(executor.kill, handle)  # idempotent: one delete
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is ExitReason.KILLED
    deletes = [r for r in cluster.calls() if r.action.name == "DELETE"]
    assert [(r.name, r.params.get("propagationPolicy")) for r in deletes] == [
        ("exp-k1", "Foreground")
    ]


async def test_a_new_executor_adopts_running_jobs_without_creating_them_again(cluster, executors):
    exp = experiment()
    first = executors()
    handle = await launch(first, exp, "exp-a1")
    reference = handle.reference
    await run(first.close)  # the controller dies; the Job keeps running

    second = executors()
    await run(second.prepare, exp)
    adopted = await run(second.adopt, reference)
    found = await run(second.find, "exp-a1")
    assert adopted.trial_name == found.trial_name == "exp-a1"
    assert await run(second.find, "exp-never") is None
    await cluster.finish_job("exp-a1", "Complete")
    assert (await run(second.wait, adopted, WAIT)).reason is ExitReason.COMPLETED
    assert [r.action.name for r in cluster.calls()].count("CREATE") == 1

    await cluster.server.delete(f"{JOBS}/exp-a1")
    lost = await run(second.adopt, reference)
    assert (await run(second.poll, lost)).reason is ExitReason.LOST


async def test_server_errors_are_retried_with_backoff(cluster, executors):
    cluster.server["post", kmock.resource("batch", "v1", "jobs")][:1] << 500
    cluster.server["list", kmock.resource("batch", "v1", "jobs")][:2] << 503
    executor = executors()
    handle = await launch(executor, experiment(), "exp-e1")
    assert isinstance(handle, KubernetesTrialHandle)
    assert await run(executor.find, "exp-e1") is not None
    creates = [r for r in cluster.calls() if r.action.name == "CREATE"]
    assert len(creates) == 2  # the 500 was retried (kmock had stored the first: a 409 then)


async def test_validation_error_fails_the_launch_with_the_api_message(cluster, executors):
    message = 'Job.batch "exp-v1" is invalid: spec.template.spec.containers[0].image: Required'
    cluster.server["post", kmock.resource("batch", "v1", "jobs")] << kmock.KubernetesError(
        status=422, reason="Invalid", message=message
    )
    executor = executors()
    with pytest.raises(LaunchError, match="is invalid: spec.template") as caught:
        await launch(executor, experiment(), "exp-v1")
    assert len([r for r in cluster.calls() if r.action.name == "CREATE"]) == 1  # not retried
    assert message in str(caught.value)


async def test_unreachable_api_gives_up_with_a_launch_error(executors, unused_tcp_port):
    executor = executors(host=f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(LaunchError, match="cannot reach the Kubernetes API") as caught:
        await launch(executor, experiment(), "exp-u1")
    assert isinstance(caught.value.__cause__, TemporaryKubernetesError)


async def test_role_allows_exactly_the_calls_the_executor_makes(cluster, executors):
    executor = executors()
    exp = experiment()
    [body] = render_job_manifests(exp, {"exp-b1": {"lr": 0.05}})
    await cluster.server.post(JOBS, json=body)
    done = await launch(executor, exp, "exp-b1")  # create, 409, get
    log = await cluster.start_pod("exp-b1", "exp-b1-a")
    log.write(b"loss=1\n")
    await cluster.end_pod("exp-b1-a")
    await cluster.finish_job("exp-b1", "Complete")
    await run(executor.wait, done, WAIT)
    reader = await run(executor.open_output, done)
    await read_all(reader)
    await run(reader.close)
    await run(executor.cleanup, done)
    await run(executor.find, "exp-b1")
    killed = await launch(executor, exp, "exp-b2")
    await run(executor.kill, killed)
    await run(executor.wait, killed, WAIT)

    roles = [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d["kind"] == "Role"]
    allowed = {
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if group in ("", "batch")  # the other kinds: test_executor_kubernetes_kinds.py
    }
    assert cluster.verbs() == allowed


async def test_role_is_built_from_the_table_of_kinds():
    [role] = [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d["kind"] == "Role"]
    assert role["rules"] == role_rules()
