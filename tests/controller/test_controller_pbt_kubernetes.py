"""pbt on Kubernetes: each trial's Job mounts ``<experiment>/<trial>`` of the checkpoint
volume at ``suggestion_trial_dir`` (as Katib's webhook does), and a child's Job first copies
its parent's directory there. A real controller and suggestion server, the kubernetes
executor over real HTTP to kmock; the test plays the Job controller and the kubelet."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import support

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.controller import Controller, SuggestionClient  # noqa: E402
from tuner.executors._kubernetes import KubernetesExecutor  # noqa: E402
from tuner.executors._kubernetes_api import RetryPolicy  # noqa: E402
from tuner.spec import Experiment  # noqa: E402
from tuner.store import Store, TrialStatus  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
WAIT = 30.0
CHECKPOINTS = "/var/log/katib/checkpoints"
PARENT = "pbt.suggestion.katib.kubeflow.org/parent"


def experiment(annotations: dict[str, str] | None = None) -> Experiment:
    document = support.experiment_document(
        "exp",
        namespace=NS,
        command=["python3", "train.py", "--lr=${trialParameters.lr}"],
        parameters=[support.double_parameter("lr", 0.01, 0.1)],
        image="trainer:1",
        algorithm="pbt",
        settings={
            "suggestion_trial_dir": CHECKPOINTS,
            "n_population": "5",
            "truncation_threshold": "0.2",
            "random_state": "2",
        },
        parallel=5,
        # Generation 0 has 5 to 9 members (more are drawn while fewer than 5 completed),
        # so at least 3 trials are children.
        max_trials=12,
    )
    if annotations:
        document["metadata"]["annotations"] = annotations
    return Experiment.model_validate(document)


def lr_of(job: dict[str, Any]) -> str:
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    (lr,) = [m.group(1) for a in command if (m := re.fullmatch(r"--lr=(.*)", a))]
    return lr


async def play_jobs(cluster: Any, running: asyncio.Future[Any]) -> None:
    started: set[str] = set()
    while not running.done():
        for name, job in cluster.jobs().items():
            if name in started:
                continue
            started.add(name)
            log = await cluster.start_pod(name, f"{name}-pod")
            log.write(f"loss={lr_of(job)}".encode())
            await cluster.end_pod(f"{name}-pod")
            await cluster.finish_job(name, "Complete")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("annotations", "claim"),
    [(None, "exp-pbt"), ({"tuner.kubeflow.org/checkpoint-volume": "shared"}, "shared")],
    ids=["katib-claim-name", "named-claim"],
)
async def test_jobs_mount_the_checkpoint_volume_and_children_copy_their_parent(
    tmp_path: Path,
    suggestion_address: str,
    kmock: Any,
    cluster: Any,
    validate: Any,
    annotations: dict[str, str] | None,
    claim: str,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'tuner.db'}")
    client = SuggestionClient(suggestion_address)
    executor = KubernetesExecutor(
        host=str(kmock.url),
        retry=RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05),
        log_poll_seconds=0.05,
        final_log_wait_seconds=WAIT,
    )
    try:
        controller = Controller(
            store, experiment(annotations), client, executor, poll_interval=0.05
        )
        running = asyncio.ensure_future(asyncio.to_thread(controller.run))
        player = asyncio.ensure_future(play_jobs(cluster, running))
        result = await asyncio.wait_for(running, WAIT)
        await player
    finally:
        executor.close()
        client.close()
        store.close()

    assert [t.status for t in result.trials] == [TrialStatus.SUCCEEDED] * 12
    jobs = {
        r.data["metadata"]["name"]: r.data for r in cluster.calls() if r.action.name == "CREATE"
    }
    children = {t.name: t.labels[PARENT] for t in result.trials if PARENT in t.labels}
    assert len(children) >= 3
    for trial in result.trials:
        job = jobs[trial.name]
        validate(job)
        pod = job["spec"]["template"]["spec"]
        assert pod["volumes"] == [
            {"name": "tuner-checkpoints", "persistentVolumeClaim": {"claimName": claim}}
        ]
        mount = {"name": "tuner-checkpoints", "subPath": f"exp/{trial.name}"}
        assert pod["containers"][0]["volumeMounts"] == [{**mount, "mountPath": CHECKPOINTS}]
        env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
        assert env["TUNER_CHECKPOINT_DIR"] == CHECKPOINTS
        if trial.name not in children:
            assert "initContainers" not in pod
            continue
        (init,) = pod["initContainers"]
        assert init["image"] == pod["containers"][0]["image"]
        assert init["command"][:3] == ["cp", "-R", "-n"]
        parent_mount, own_mount = init["volumeMounts"]
        assert parent_mount["subPath"] == f"exp/{children[trial.name]}"
        assert parent_mount["readOnly"] is True
        assert own_mount["subPath"] == f"exp/{trial.name}"
        assert init["command"][3:] == [
            f"{parent_mount['mountPath']}/.",
            f"{own_mount['mountPath']}/",
        ]
