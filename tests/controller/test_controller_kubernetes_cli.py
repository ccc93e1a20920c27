"""`tuner run` and `tuner controller` with ``--executor kubernetes`` as a user runs them: CLI
subprocesses whose kubeconfig (written by the test, ``--kubeconfig``) points at kmock over
real HTTP, while the test plays the Job controller and kubelet (fixture ``cluster``): every
Job it sees gets a pod whose log says ``loss=<the trial's lr>``, then completes. A SIGKILLed
run is resumed by a second one that adopts the running Jobs. Waits only guard against hangs.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import support
import yaml

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.store import Store, TrialStatus  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
WAIT = 30.0


def experiment_yaml(success_condition: str = "") -> str:
    """Three trials, two at a time; each trial runs ``train.py --lr=<lr>``."""
    template = {"successCondition": success_condition} if success_condition else {}
    document = support.lr_experiment_document(NS, template=template)
    return yaml.safe_dump(document, sort_keys=False)


class Bench:
    """An Experiment file, a kubeconfig for kmock and a SQLite database in ``root``."""

    def __init__(self, root: Path, api_url: str) -> None:
        self.root = root
        self.file = root / "exp.yaml"
        self.file.write_text(experiment_yaml())
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": api_url}}],
                    "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                    "contexts": [
                        {"name": "test", "context": {"cluster": "kmock", "user": "tester"}}
                    ],
                    "current-context": "test",
                }
            )
        )
        self.db_url = f"sqlite:///{root / 'tuner.db'}"
        self.processes: list[asyncio.subprocess.Process] = []

    async def tuner(self, *args: str) -> asyncio.subprocess.Process:
        script = Path(sys.executable).with_name("tuner")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "tuner.cli"]
        self.processes.append(
            await asyncio.create_subprocess_exec(
                *command,
                *args,
                cwd=self.root,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        )
        return self.processes[-1]

    async def run(self, *extra: str) -> asyncio.subprocess.Process:
        return await self.tuner(
            "run",
            str(self.file),
            "--executor=kubernetes",
            f"--kubeconfig={self.kubeconfig}",
            f"--db={self.db_url}",
            "--poll-interval=0.1",
            "--no-progress",
            *extra,
        )

    def trials(self) -> dict[str, Any]:
        with Store.open(self.db_url) as store:
            return {t.name: t for t in store.list_trials("exp")}

    async def close(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest_asyncio.fixture
async def bench(tmp_path: Path, kmock: Any):
    b = Bench(tmp_path, str(kmock.url))
    yield b
    await b.close()


def lr_of(job: dict[str, Any]) -> str:
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    (lr,) = [m.group(1) for a in command if (m := re.fullmatch(r"--lr=(.*)", a))]
    return lr


async def complete(cluster: Any, job: str, log: Any, lr: str) -> None:
    log.write(f"loss={lr}\n".encode())
    await cluster.end_pod(f"{job}-pod")
    await cluster.finish_job(job, "Complete")


async def play_jobs(cluster: Any, until: asyncio.Future[Any], started: set[str]) -> None:
    """Every new Job runs and completes with its lr as loss, until ``until`` is done."""
    while not until.done():
        for name, job in cluster.jobs().items():
            if name not in started:
                started.add(name)
                log = await cluster.start_pod(name, f"{name}-pod")
                await complete(cluster, name, log, lr_of(job))
        await asyncio.sleep(0.02)


async def finish(proc: asyncio.subprocess.Process, cluster: Any, started: set[str]) -> str:
    """Play the cluster until ``proc`` exits; its stderr. The exit code is on ``proc``."""
    done = asyncio.ensure_future(proc.communicate())
    await play_jobs(cluster, done, started)
    _, err = await asyncio.wait_for(done, WAIT)
    return err.decode()


def creates(cluster: Any) -> collections.Counter[str]:
    return collections.Counter(
        r.data["metadata"]["name"] for r in cluster.calls() if r.action.name == "CREATE"
    )


async def until(condition: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


async def test_tuner_run_drives_jobs_through_a_kubeconfig(bench, cluster):
    proc = await bench.run(f"--output={bench.root / 'result.json'}")
    err = await finish(proc, cluster, set())

    assert proc.returncode == 0, err
    result = json.loads((bench.root / "result.json").read_text())
    assert result["status"] == "Succeeded"
    assert result["trialCounts"]["Succeeded"] == result["trialCounts"]["total"] == 3
    trials = bench.trials()
    for trial in trials.values():  # the objective is what the pod's log said
        assert trial.objective_value == float(trial.parameters["lr"])
    assert creates(cluster) == dict.fromkeys(trials, 1)
    assert cluster.jobs() == {}  # finished Jobs are deleted once recorded (retain: false)


async def test_killed_run_is_resumed_by_adopting_its_jobs_never_creating_them_twice(bench, cluster):
    first = await bench.run()
    await until(lambda: len(cluster.jobs()) == 2, "two Jobs")
    jobs = cluster.jobs()
    logs = {name: await cluster.start_pod(name, f"{name}-pod") for name in jobs}
    await until(
        lambda: [t.status for t in bench.trials().values()] == [TrialStatus.RUNNING] * 2,
        "both trials stored Running",
    )
    first.kill()  # SIGKILL: no clean-up of any kind
    await first.wait()

    second = await bench.run()
    for name, job in jobs.items():
        await complete(cluster, name, logs[name], lr_of(job))
    err = await finish(second, cluster, set(jobs))

    assert second.returncode == 0, err
    trials = bench.trials()
    assert [t.status for t in trials.values()] == [TrialStatus.SUCCEEDED] * 3
    assert set(jobs) < set(trials)
    assert creates(cluster) == dict.fromkeys(trials, 1)


async def test_tuner_controller_drives_a_submitted_experiment_on_kubernetes(bench, cluster):
    kube = ("--executor=kubernetes", f"--kubeconfig={bench.kubeconfig}", f"--db={bench.db_url}")
    submit = await bench.tuner("submit", str(bench.file), *kube)
    out, err = await asyncio.wait_for(submit.communicate(), WAIT)
    assert submit.returncode == 0, err.decode()

    controller = await bench.tuner(
        "controller", *kube, "--metrics-address=127.0.0.1:0", "--poll-interval=0.1"
    )

    def succeeded() -> bool:
        with Store.open(bench.db_url) as store:
            return store.get_experiment("exp").status.value == "Succeeded"

    player = asyncio.ensure_future(until(succeeded, "the experiment to succeed"))
    await play_jobs(cluster, player, set())
    await player
    controller.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(controller.communicate(), WAIT)
    assert controller.returncode == 0, err.decode()
    trials = bench.trials()
    assert [t.status for t in trials.values()] == [TrialStatus.SUCCEEDED] * 3
    assert creates(cluster) == dict.fromkeys(trials, 1)


async def test_template_kubernetes_cannot_run_exits_2_and_writes_nothing(bench, cluster):
    bench.file.write_text(experiment_yaml(success_condition="status.*.type"))
    proc = await bench.run()
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)

    assert proc.returncode == 2
    assert "successCondition: 'status.*.type' is not supported" in err.decode()
    with Store.open(bench.db_url) as store:
        assert store.list_experiments() == []
    assert not cluster.calls()


@pytest.mark.parametrize("collector", ["File", "Push"])
async def test_file_and_push_collectors_are_refused_with_kubernetes(bench, cluster, collector):
    spec = yaml.safe_load(experiment_yaml())
    spec["spec"]["metricsCollectorSpec"] = {"collector": {"kind": collector}}
    bench.file.write_text(yaml.safe_dump(spec))
    proc = await bench.run()
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)

    assert proc.returncode == 2
    assert f"collector.kind: {collector!r}" in err.decode()
    assert "with the kubernetes executor use StdOut" in err.decode()
    assert not cluster.calls()


async def test_kubeconfig_without_the_kubernetes_executor_is_a_usage_error(bench):
    proc = await bench.tuner("run", str(bench.file), f"--kubeconfig={bench.kubeconfig}")
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 2
    assert "--kubeconfig configures the kubernetes executor" in err.decode()
