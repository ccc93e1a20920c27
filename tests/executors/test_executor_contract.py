"""The Executor contract (``tuner.executors.Executor``), one suite run over every executor:
the local one (real processes) and the Kubernetes one (real HTTP to kmock's API server, the
test playing the kubelet and the Job controller, fixture ``cluster``).

Each backend is a bench with the same four verbs: a new executor instance, the experiment,
``started`` (the trial runs and has printed its first line) and ``finish`` (the trial exits
with a code). Executor calls block, so they run in threads while kmock serves on the test's
event loop. Waits only guard against hangs; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tuner.executors import (
    Executor,
    ExecutorOptions,
    ExitReason,
    LaunchRequest,
    Outcome,
    TrialHandle,
    get_executor_class,
)
from tuner.spec import Experiment, loads, render_trial

pytestmark = pytest.mark.asyncio

WAIT = 30.0
NAMESPACE = "tuning"  # the cluster fixture's namespace
FIRST_LINE = b"loss=0.5\n"

# Prints FIRST_LINE, then exits with the code written to the file "<trial name>.go" in its
# working directory, once that file exists.
TRIAL = """
import os, sys, time
print("loss=0.5", flush=True)
gate = sys.argv[1] + ".go"
while not os.path.exists(gate):
    time.sleep(0.01)
sys.exit(int(open(gate).read()))
"""


def experiment() -> Experiment:
    return loads(
        f"""
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: exp, namespace: {NAMESPACE}}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss}}
  algorithm: {{algorithmName: random}}
  parameters:
    - {{name: lr, parameterType: double, feasibleSpace: {{min: "0.01", max: "0.1"}}}}
  trialTemplate:
    primaryContainerName: main
    trialParameters:
      - {{name: lr, reference: lr}}
      - {{name: trialName, reference: "${{trialSpec.Name}}"}}
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
                command: [python3, -c, {json.dumps(TRIAL)}, "${{trialParameters.trialName}}"]
                args: ["--lr=${{trialParameters.lr}}"]
"""
    )[0]


class LocalBench:
    """Trials are processes in ``tmp_path``; the test ends one by writing its gate file."""

    name = "local"
    stoppable_by_reference = True  # `tuner delete --force` stops its trials

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.options = ExecutorOptions(run_dir=tmp_path / "run", working_dir=tmp_path)

    def executor(self) -> Executor:
        cls = get_executor_class(self.name)
        executor = cls.create(self.options)
        assert isinstance(executor, cls)
        return executor

    async def started(self, trial: str) -> None:
        """Nothing to do: the process prints its first line by itself."""

    async def finish(self, trial: str, exit_code: int) -> None:
        (self.tmp_path / f"{trial}.go").write_text(str(exit_code))

    def touched(self) -> bool:
        return (self.tmp_path / "run").exists()

    def stop_leftovers(self, executor: Executor) -> None:
        """Stop what a failed test left running, through the public API."""
        run_dir = self.tmp_path / "run"
        for trial_dir in run_dir.iterdir() if run_dir.is_dir() else ():
            handle = executor.find(trial_dir.name)
            if handle is not None:
                executor.kill(handle)
                executor.wait(handle, WAIT)


class KubernetesBench:
    """Trials are Jobs in kmock's API server; the test is their pods' kubelet."""

    name = "kubernetes"
    stoppable_by_reference = False  # needs the cluster configuration of its controller

    def __init__(self, cluster: Any) -> None:
        from tuner.executors._kubernetes_api import RetryPolicy

        self.cluster = cluster
        self.options = ExecutorOptions(
            extra={
                "host": str(cluster.server.url),
                "retry": RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05),
                # kmock has no resourceVersions: a late watch misses events, and the
                # executor's periodic re-list catches up (quickly here).
                "resync_seconds": 0.5,
                "log_poll_seconds": 0.05,
                "final_log_wait_seconds": WAIT,
            }
        )

    def executor(self) -> Executor:
        cls = get_executor_class(self.name)
        return cls.create(self.options)

    async def started(self, trial: str) -> None:
        log = await self.cluster.start_pod(trial, f"{trial}-pod")
        log.write(FIRST_LINE)

    async def finish(self, trial: str, exit_code: int) -> None:
        await self.cluster.end_pod(f"{trial}-pod", exit_code)
        if exit_code == 0:
            await self.cluster.finish_job(trial, "Complete")
        else:
            await self.cluster.finish_job(trial, "Failed", "BackoffLimitExceeded", "failed")

    def touched(self) -> bool:
        return bool(self.cluster.calls())

    def stop_leftovers(self, executor: Executor) -> None:
        """Nothing runs: the Jobs go with the API server."""


@pytest.fixture(params=["local", "kubernetes"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "local":
        made: LocalBench | KubernetesBench = LocalBench(tmp_path)
    else:
        pytest.importorskip("kmock", reason="kmock needs Python 3.11+")
        made = KubernetesBench(request.getfixturevalue("cluster"))
    yield made


@pytest_asyncio.fixture
async def executors(bench: Any) -> AsyncIterator[Callable[[], Executor]]:
    """New executor instances of the bench (a controller, then its restart), closed at the
    end, after what a failed test left running is stopped."""
    made: list[Executor] = []

    def make() -> Executor:
        made.append(bench.executor())
        return made[-1]

    yield make
    if made:
        await asyncio.to_thread(bench.stop_leftovers, made[-1])
    for executor in made:
        await asyncio.to_thread(executor.close)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def launch(executor: Executor, trial: str) -> TrialHandle:
    exp = experiment()
    await run(executor.prepare, exp)
    rendered = render_trial(exp, trial, {"lr": 0.05})
    return await run(
        executor.launch,
        trial,
        rendered.argv,
        rendered.env,
        rendered.working_dir,
        None,
        manifest=rendered.manifest,
    )


async def wait(executor: Executor, handle: TrialHandle) -> Outcome:
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome is not None, f"trial {handle.trial_name} did not end"
    return outcome


async def read_first_line(executor: Executor, handle: TrialHandle) -> None:
    """The trial's output, through ``open_output``, starts with FIRST_LINE."""
    reader = await run(executor.open_output, handle)
    data = b""
    try:
        for _ in range(int(WAIT / 0.02)):
            data += await run(reader.read_new)
            if len(data) >= len(FIRST_LINE):
                break
            await asyncio.sleep(0.02)
    finally:
        await run(reader.close)
    assert data.startswith(FIRST_LINE), data


async def test_a_trial_runs_until_it_succeeds_and_its_output_is_read(bench, executors):
    executor = executors()
    handle = await launch(executor, "exp-ok")
    assert handle.trial_name == "exp-ok"
    assert json.loads(json.dumps(handle.reference)) == handle.reference
    assert await run(executor.poll, handle) is None

    await bench.started("exp-ok")
    await read_first_line(executor, handle)
    assert await run(executor.poll, handle) is None
    await bench.finish("exp-ok", 0)
    outcome = await wait(executor, handle)

    assert outcome.reason is ExitReason.COMPLETED and outcome.succeeded
    assert await run(executor.poll, handle) == outcome  # final: every poll says the same
    await run(executor.cleanup, handle)
    await run(executor.cleanup, handle)  # a trial already cleaned up is no error


async def test_a_trial_that_exits_non_zero_fails(bench, executors):
    executor = executors()
    handle = await launch(executor, "exp-bad")
    await bench.started("exp-bad")
    await bench.finish("exp-bad", 3)
    outcome = await wait(executor, handle)

    assert outcome.reason is ExitReason.FAILED and not outcome.succeeded
    assert await run(executor.poll, handle) == outcome


async def test_kill_ends_a_running_trial_as_killed_and_may_be_repeated(bench, executors):
    executor = executors()
    handle = await launch(executor, "exp-kill")
    await bench.started("exp-kill")
    await read_first_line(executor, handle)
    await run(executor.kill, handle)
    await run(executor.kill, handle)
    outcome = await wait(executor, handle)

    assert outcome.reason is ExitReason.KILLED
    await run(executor.kill, handle)  # after the end: a no-op
    assert await run(executor.poll, handle) == outcome


async def test_a_new_executor_adopts_a_running_trial_by_reference_and_by_name(bench, executors):
    first = executors()
    handle = await launch(first, "exp-adopt")
    await bench.started("exp-adopt")
    reference = json.loads(json.dumps(handle.reference))  # as the store keeps it
    await run(first.close)  # the controller goes; the trial keeps running

    second = executors()
    await run(second.prepare, experiment())
    adopted = await run(second.adopt, reference)
    found = await run(second.find, "exp-adopt")
    assert adopted is not None and found is not None
    assert adopted.trial_name == found.trial_name == "exp-adopt"
    assert await run(second.poll, adopted) is None
    assert await run(second.find, "exp-never-launched") is None

    await read_first_line(second, adopted)
    await bench.finish("exp-adopt", 0)
    assert (await wait(second, adopted)).reason is ExitReason.COMPLETED
    assert (await wait(second, found)).reason is ExitReason.COMPLETED


async def test_capabilities_agree_with_what_the_executor_does(bench, executors):
    executor = executors()
    cls = type(executor)
    assert cls.name == bench.name
    rendered = render_trial(experiment(), "exp-cap", {"lr": 0.05})
    cls.check_template(rendered)  # a runnable template passes

    handle = await launch(executor, "exp-cap")
    await bench.started("exp-cap")
    await read_first_line(executor, handle)
    log = executor.log_path(handle)
    if log is not None:  # a local log file holds the same output
        assert log.read_bytes().startswith(FIRST_LINE)
    if executor.run_dir is not None:  # one directory per trial
        assert (executor.run_dir / "exp-cap").is_dir()
    await bench.finish("exp-cap", 0)
    await wait(executor, handle)


async def test_a_dry_run_describes_each_planned_trial_and_touches_nothing(bench):
    cls = get_executor_class(bench.name)
    if not cls.supports_dry_run:
        pytest.skip(f"the {cls.name} executor has no dry run")
    exp = experiment()
    planned_dirs: list[Path | None] = []

    def plan(run_dir: Path | None) -> list[LaunchRequest]:
        planned_dirs.append(run_dir)
        requests = []
        for name in ("exp-d1", "exp-d2"):
            rendered = render_trial(exp, name, {"lr": 0.05})
            requests.append(
                LaunchRequest(name, {"lr": 0.05}, rendered.argv, {}, None, None, rendered.manifest)
            )
        return requests

    documents = await run(cls.dry_run, exp, bench.options, plan)

    assert len(planned_dirs) == 1
    texts = [json.dumps(d) for d in documents]
    assert [("exp-d1" in t, "exp-d2" in t) for t in texts] == [(True, False), (False, True)]
    assert not bench.touched()


async def test_an_instance_for_a_stored_reference_alone_can_stop_its_trial(bench, executors):
    executor = executors()
    handle = await launch(executor, "exp-ref")
    await bench.started("exp-ref")
    reference = json.loads(json.dumps(handle.reference))
    stopper = type(executor).for_reference(reference)
    assert (stopper is not None) == bench.stoppable_by_reference
    if stopper is None:  # the default: this executor needs its configuration to adopt
        await bench.finish("exp-ref", 0)
        await wait(executor, handle)
        return
    adopted = await run(stopper.adopt, reference)
    assert adopted is not None and adopted.trial_name == "exp-ref"
    await run(stopper.kill, adopted)
    assert (await wait(stopper, adopted)).reason is ExitReason.KILLED
    assert (await wait(executor, handle)).reason is ExitReason.KILLED
