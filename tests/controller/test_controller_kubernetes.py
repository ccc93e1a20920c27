"""The controller driving Kubernetes Jobs end to end: a real Controller, a real suggestion
server and SQLite store, and the kubernetes executor talking real HTTP to kmock, while the
test plays the Job controller and the kubelet (fixture ``cluster``, tests/conftest.py): it
starts a pod for every Job it sees, writes ``loss=<lr>`` (the trial's own parameter) to its
log and completes the Job. Waits only guard against hangs."""

from __future__ import annotations

import asyncio
import collections
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import support

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.controller import Controller, ExperimentRefusedError, Snapshot  # noqa: E402
from tuner.controller import SuggestionClient as Client  # noqa: E402
from tuner.executors._kubernetes import KubernetesExecutor  # noqa: E402
from tuner.executors._kubernetes_api import RetryPolicy  # noqa: E402
from tuner.spec import Experiment  # noqa: E402
from tuner.store import ExperimentNotFoundError, ExperimentStatus, Store, TrialStatus  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
WAIT = 20.0


def experiment(*, retain: bool = False, success_condition: str = "") -> Experiment:
    """Three trials, two at a time; each trial's Job runs ``train.py --lr=<lr>``."""
    template: dict[str, object] = {"retain": retain}
    if success_condition:
        template["successCondition"] = success_condition
    document = support.lr_experiment_document(NS, template=template)
    return Experiment.model_validate(document)


class Bench:
    """A store and suggestion client in ``root``; executors pointed at kmock."""

    def __init__(self, root: Path, suggestion_address: str, api_url: str) -> None:
        self.store = Store.open(f"sqlite:///{root / 'tuner.db'}")
        self.client = Client(suggestion_address)
        self.api_url = api_url
        self.executors: list[KubernetesExecutor] = []

    def executor(self) -> KubernetesExecutor:
        self.executors.append(
            KubernetesExecutor(
                host=self.api_url,
                retry=RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05),
                log_poll_seconds=0.05,
                final_log_wait_seconds=WAIT,
            )
        )
        return self.executors[-1]

    def controller(
        self, exp: Experiment, on_progress: Callable[[Snapshot], None] | None = None
    ) -> Controller:
        return Controller(
            self.store,
            exp,
            self.client,
            self.executor(),
            poll_interval=0.05,
            on_progress=on_progress,
        )

    def close(self) -> None:
        for executor in self.executors:
            executor.close()
        self.client.close()
        self.store.close()


@pytest.fixture
def bench(tmp_path: Path, suggestion_address: str, kmock: Any):
    b = Bench(tmp_path, suggestion_address, str(kmock.url))
    yield b
    b.close()


def lr_of(job: dict[str, Any]) -> str:
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    (lr,) = [m.group(1) for a in command if (m := re.fullmatch(r"--lr=(.*)", a))]
    return lr


async def start(cluster: Any, job: str, first_line: bytes = b"epoch 1\n") -> Any:
    log = await cluster.start_pod(job, f"{job}-pod")
    log.write(first_line)
    return log


async def complete(cluster: Any, job: str, log: Any, lr: str) -> None:
    log.write(f"loss={lr}".encode())  # the last line has no newline: read at the end
    await cluster.end_pod(f"{job}-pod")
    await cluster.finish_job(job, "Complete")


async def play_jobs(cluster: Any, running: asyncio.Future[Any], started: set[str]) -> None:
    """The Job controller and kubelet: every new Job runs and completes with its lr as loss;
    Jobs in ``started`` are taken to be running already (their pod logs are in ``cluster``)."""
    while not running.done():
        for name, job in cluster.jobs().items():
            if name in started:
                continue
            started.add(name)
            await complete(cluster, name, await start(cluster, name), lr_of(job))
        await asyncio.sleep(0.02)


async def run_to_end(bench: Bench, controller: Controller, cluster: Any, started: set[str]) -> Any:
    running = asyncio.ensure_future(asyncio.to_thread(controller.run))
    player = asyncio.ensure_future(play_jobs(cluster, running, started))
    result = await asyncio.wait_for(running, WAIT)
    await player
    return result


def creates(cluster: Any) -> collections.Counter[str]:
    """How often the executor POSTed each Job."""
    return collections.Counter(
        r.data["metadata"]["name"] for r in cluster.calls() if r.action.name == "CREATE"
    )


@pytest.mark.parametrize("retain", [False, True], ids=["delete-finished", "retain"])
async def test_experiment_runs_as_jobs_with_objectives_from_pod_logs(bench, cluster, retain):
    result = await run_to_end(bench, bench.controller(experiment(retain=retain)), cluster, set())

    assert result.experiment.status is ExperimentStatus.SUCCEEDED, result.experiment.message
    assert len(result.trials) == 3
    for trial in result.trials:
        assert trial.status is TrialStatus.SUCCEEDED, trial.message
        assert trial.objective_value == float(trial.parameters["lr"])
        assert trial.executor_kind == "kubernetes"
    names = {t.name for t in result.trials}
    assert creates(cluster) == dict.fromkeys(names, 1)
    # A pod gets no environment from the controller: its trial name is in the Job itself
    # (no DBManager address: this controller's is on loopback, out of a pod's reach).
    for request in cluster.calls():
        if request.action.name == "CREATE":
            [container] = request.data["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container.get("env") or []}
            assert env.get("KATIB_TRIAL_NAME") == request.data["metadata"]["name"]
            assert "TUNER_DBMANAGER_ADDRESS" not in env
    deletes = [r for r in cluster.calls() if r.action.name == "DELETE"]
    if retain:
        assert not deletes
        assert set(cluster.jobs()) == names
    else:
        assert sorted((r.name, r.params.get("propagationPolicy")) for r in deletes) == sorted(
            (name, "Background") for name in names
        )
        assert cluster.jobs() == {}


async def test_restarted_controller_adopts_running_jobs_and_never_creates_them_again(
    bench, cluster
):
    exp = experiment()
    crash = threading.Event()

    class Crash(Exception):
        """The first controller dies mid-run (its trials keep running)."""

    def crash_when_asked(snapshot: Snapshot) -> None:
        if crash.is_set():
            raise Crash

    first = bench.controller(exp, crash_when_asked)
    running = asyncio.ensure_future(asyncio.to_thread(first.run))
    for _ in range(int(WAIT / 0.02)):
        if len(cluster.jobs()) == 2 or running.done():
            break
        await asyncio.sleep(0.02)
    jobs = cluster.jobs()
    assert len(jobs) == 2
    logs = {name: await start(cluster, name, b"loss=0.9\n") for name in jobs}
    # The first controller reads a line of each log before it dies.
    for _ in range(int(WAIT / 0.02)):
        observed = [await asyncio.to_thread(bench.store.get_observations, n) for n in jobs]
        if all(observed):
            break
        await asyncio.sleep(0.02)
    crash.set()
    with pytest.raises(Crash):
        await asyncio.wait_for(running, WAIT)
    stored = {t.name: t for t in bench.store.list_trials("exp")}
    assert {n: t.status for n, t in stored.items()} == dict.fromkeys(jobs, TrialStatus.RUNNING)

    second = bench.controller(exp)
    running = asyncio.ensure_future(asyncio.to_thread(second.run))
    for name, job in jobs.items():
        await complete(cluster, name, logs[name], lr_of(job))
    player = asyncio.ensure_future(play_jobs(cluster, running, set(jobs)))
    result = await asyncio.wait_for(running, WAIT)
    await player

    assert result.experiment.status is ExperimentStatus.SUCCEEDED, result.experiment.message
    assert [t.status for t in result.trials] == [TrialStatus.SUCCEEDED] * 3
    assert creates(cluster) == dict.fromkeys((t.name for t in result.trials), 1)
    for name in jobs:  # read again from the start after the restart, each line once
        values = [o.value for o in bench.store.get_observations(name)]
        assert values == [0.9, float(lr_of(jobs[name]))]


async def test_template_the_executor_cannot_run_is_refused_before_anything_is_written(
    bench, cluster
):
    # A condition outside the GJSON subset tuner evaluates (a wildcard).
    controller = bench.controller(experiment(success_condition="status.*.type"))
    with pytest.raises(ExperimentRefusedError, match=r"successCondition: 'status.\*.type' is not"):
        await asyncio.to_thread(controller.prepare)
    with pytest.raises(ExperimentNotFoundError):
        bench.store.get_experiment("exp")
    assert not cluster.calls()
