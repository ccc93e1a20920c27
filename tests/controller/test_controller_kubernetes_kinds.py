"""The controller driving a non-Job trial kind end to end: a real Controller, suggestion server
and SQLite store, and the kubernetes executor over real HTTP to kmock (which honours label
selectors), while the test plays the training operator of PyTorchJobs: for every PyTorchJob
it sees it starts the master pod (printing ``loss=<lr>``) and a worker pod (printing a decoy),
then marks the PyTorchJob Succeeded. Waits only guard against hangs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import support

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.controller import Controller  # noqa: E402
from tuner.controller import SuggestionClient as Client  # noqa: E402
from tuner.executors._kubernetes import KubernetesExecutor  # noqa: E402
from tuner.executors._kubernetes_api import RetryPolicy  # noqa: E402
from tuner.spec import Experiment  # noqa: E402
from tuner.store import ExperimentStatus, Store, TrialStatus  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
WAIT = 30.0
PYTORCHJOBS = f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs"


def pytorchjob_experiment() -> Experiment:
    document = support.lr_experiment_document(NS)
    template = document["spec"]["trialTemplate"]
    pod = template["trialSpec"]["spec"]["template"]
    pod["spec"]["containers"][0]["name"] = "pytorch"
    template["primaryContainerName"] = "pytorch"
    template["trialSpec"] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": pod},
                "Worker": {"replicas": 1, "template": pod},
            }
        },
    }
    return Experiment.model_validate(document)


def lr_of(job: dict[str, Any]) -> str:
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    (lr,) = [m.group(1) for a in master["command"] if (m := re.fullmatch(r"--lr=(.*)", a))]
    return lr


class Operator:
    """The training operator and kubelet for PyTorchJobs, through kmock's HTTP API."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        cluster.server.resources["kubeflow.org/v1/pytorchjobs"] = {}
        self.resource = kmock.resource("kubeflow.org", "v1", "pytorchjobs")

    def jobs(self) -> dict[str, dict[str, Any]]:
        objects = self.cluster.server.objects
        return {
            name: dict(obj.last.raw)
            for (resource, namespace, name), obj in objects.items()
            if resource == self.resource and namespace == NS and not obj.deleted
        }

    async def pod(self, job: str, role: str, output: bytes) -> None:
        name = f"{job}-{role}-0"
        log = self.cluster.new_log(name)
        log.write(output)  # the whole log is there before the pod is seen
        log.end()
        labels = {"training.kubeflow.org/job-name": job, "training.kubeflow.org/job-role": role}
        status = {"containerStatuses": [{"name": "pytorch", "restartCount": 0, "state": {}}]}
        response = await self.cluster.server.post(
            f"/api/v1/namespaces/{NS}/pods",
            json={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": labels},
                "status": {**status, "phase": "Succeeded"},
            },
        )
        assert response.status in (200, 201), await response.text()
        status["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0}}
        await self.cluster.patch(f"/api/v1/namespaces/{NS}/pods/{name}/status", {"status": status})

    async def play(self, running: asyncio.Future[Any]) -> None:
        started: set[str] = set()
        while not running.done():
            for name, job in self.jobs().items():
                if name in started:
                    continue
                started.add(name)
                await self.pod(name, "worker", b"loss=99\n")
                await self.pod(name, "master", f"loss={lr_of(job)}\n".encode())
                condition = {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"}
                await self.cluster.patch(
                    f"{PYTORCHJOBS}/{name}/status", {"status": {"conditions": [condition]}}
                )
            await asyncio.sleep(0.02)


async def test_pytorchjob_experiment_succeeds_with_objectives_from_the_master_pod(
    tmp_path: Path, suggestion_address: str, kmock: Any, cluster: Any
):
    store = Store.open(f"sqlite:///{tmp_path / 'tuner.db'}")
    client = Client(suggestion_address)
    executor = KubernetesExecutor(
        host=str(kmock.url),
        retry=RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05),
        resync_seconds=0.5,
        log_poll_seconds=0.05,
        final_log_wait_seconds=WAIT,
    )
    operator = Operator(cluster)
    try:
        controller = Controller(
            store, pytorchjob_experiment(), client, executor, poll_interval=0.05
        )
        running = asyncio.ensure_future(asyncio.to_thread(controller.run))
        player = asyncio.ensure_future(operator.play(running))
        result = await asyncio.wait_for(running, WAIT)
        await player
    finally:
        await asyncio.to_thread(executor.close)
        client.close()

    assert result.experiment.status is ExperimentStatus.SUCCEEDED, result.experiment.message
    assert len(result.trials) == 3
    for trial in result.trials:
        assert trial.status is TrialStatus.SUCCEEDED, trial.message
        assert trial.objective_value == float(trial.parameters["lr"])  # never the worker's 99
    assert operator.jobs() == {}  # each deleted once finished
    store.close()
