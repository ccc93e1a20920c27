"""Every trial kind Katib runs, on the Kubernetes executor over real HTTP (kmock's API server,
which honours label selectors): the Kubeflow training jobs, Kubeflow Trainer's TrainJob, an
Argo Workflow, a Tekton PipelineRun and a custom kind with the user's conditions.

Per kind the test plays the kind's operator: it creates the pods the operator would (labelled
as that operator labels them: the primary one and another replica that prints a decoy
metric) and sets the object's status. Checked: the object is created with the parameters
substituted and tuner's labels, its metrics come from the primary pod's log only, it
succeeds and fails by its conditions, it is deleted when finished, and a new executor (a
restarted controller) adopts it by reference and by trial name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.executors import ExitReason  # noqa: E402
from tuner.executors._kubernetes import KubernetesExecutor  # noqa: E402
from tuner.executors._kubernetes_api import TRIAL_OBJECT_VERBS  # noqa: E402
from tuner.executors._kubernetes_jobs import JobSettings, job_manifest  # noqa: E402
from tuner.metrics import StdOutParser  # noqa: E402
from tuner.spec import Experiment, find_containers, loads, render_trial  # noqa: E402

pytestmark = pytest.mark.asyncio

NS = "tuning"
WAIT = 20.0
TRIAL_LABEL = "katib.kubeflow.org/trial"


@dataclass(frozen=True)
class Kind:
    """One trial kind: its template, how its operator labels pods, its end states."""

    name: str
    api_version: str
    kind: str
    plural: str
    trial_spec: str  # YAML of trialSpec.spec, ${trialParameters.lr} somewhere in a command
    container: str  # primaryContainerName (as pods name it)
    pod_labels: dict[str, str]  # what the operator puts on every pod; {trial} -> trial name
    primary_labels: dict[str, str]  # what it puts on the primary pod only
    succeeded: dict[str, Any]
    failed: dict[str, Any]
    template: dict[str, Any] = field(default_factory=dict)  # more trialTemplate fields

    @property
    def resource(self) -> Any:
        group, _, version = self.api_version.rpartition("/")
        return kmock.resource(group, version, self.plural)


def _conditions(kind: str, reason: str = "") -> dict[str, Any]:
    return {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": kind}]}


def _replicas(key: str, container: str, primary: str, worker: str = "Worker") -> str:
    return f"""
{key}:
  {primary}:
    replicas: 1
    restartPolicy: OnFailure
    template:
      spec:
        containers:
          - name: {container}
            image: "trainer:1"
            command: [python3, train.py, "--lr=${{trialParameters.lr}}"]
  {worker}:
    replicas: 2
    template:
      spec:
        containers:
          - {{name: {container}, image: "trainer:1", command: [python3, train.py]}}
"""


def _training(name: str, kind: str, key: str, container: str, primary: str = "Master") -> Kind:
    return Kind(
        name,
        "kubeflow.org/v1",
        kind,
        kind.lower() + "s",
        _replicas(key, container, primary),
        container,
        {"training.kubeflow.org/job-name": "{trial}"},
        {"training.kubeflow.org/job-role": "master"},  # Katib's default primaryPodLabels
        _conditions("Succeeded"),
        _conditions("Failed", "ReplicaFailed"),
    )


KINDS = [
    _training("tfjob", "TFJob", "tfReplicaSpecs", "tensorflow", "Chief"),
    _training("pytorchjob", "PyTorchJob", "pytorchReplicaSpecs", "pytorch"),
    Kind(
        "mpijob",
        "kubeflow.org/v1",
        "MPIJob",
        "mpijobs",
        _replicas("mpiReplicaSpecs", "mpi-launcher", "Launcher"),
        "mpi-launcher",
        {"training.kubeflow.org/job-name": "{trial}"},
        {"training.kubeflow.org/job-role": "launcher"},
        _conditions("Succeeded"),
        _conditions("Failed"),
        template={"primaryPodLabels": {"training.kubeflow.org/job-role": "launcher"}},
    ),
    _training("xgboostjob", "XGBoostJob", "xgbReplicaSpecs", "xgboost"),
    Kind(
        "trainjob",
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
        "trainjobs",
        """
runtimeRef: {name: torch-distributed}
trainer:
  numNodes: 2
  image: "trainer:1"
  command: [python3, train.py, "--lr=${trialParameters.lr}"]
""",
        "node",
        {
            "jobset.sigs.k8s.io/jobset-name": "{trial}",
            "jobset.sigs.k8s.io/replicatedjob-name": "node",
        },
        {"batch.kubernetes.io/job-completion-index": "0"},  # Katib's defaults select node 0
        _conditions("Complete"),
        _conditions("Failed"),
    ),
    Kind(
        "argo",
        "argoproj.io/v1alpha1",
        "Workflow",
        "workflows",
        """
entrypoint: hp
templates:
  - name: hp
    steps: [[{name: prepare, template: prepare}], [{name: train, template: train}]]
  - name: prepare
    script: {image: "python:3.12", command: [python], source: "print(3)"}
  - name: train
    metadata: {labels: {katib.kubeflow.org/model-training: "true"}}
    container:
      image: "trainer:1"
      command: [python3, train.py, "--lr=${trialParameters.lr}"]
""",
        "main",  # Argo's main container, whatever the template calls it
        {"workflows.argoproj.io/workflow": "{trial}"},
        {"katib.kubeflow.org/model-training": "true"},
        {"phase": "Succeeded"},
        {"phase": "Failed", "message": "child failed"},
        template={
            "primaryPodLabels": {"katib.kubeflow.org/model-training": "true"},
            "successCondition": 'status.[@this].#(phase=="Succeeded")#',
            "failureCondition": 'status.[@this].#(phase=="Failed")#',
        },
    ),
    Kind(
        "tekton",
        "tekton.dev/v1",
        "PipelineRun",
        "pipelineruns",
        """
pipelineSpec:
  tasks:
    - name: prepare
      taskSpec:
        steps: [{name: prepare, image: "python:3.12", command: [python, -c, "print(3)"]}]
    - name: model-training
      runAfter: [prepare]
      taskSpec:
        steps:
          - name: model-training
            image: "trainer:1"
            command: [python3, train.py, "--lr=${trialParameters.lr}"]
""",
        "step-model-training",  # Tekton names a step's container step-<name>
        {"tekton.dev/pipelineRun": "{trial}"},
        {"tekton.dev/pipelineTask": "model-training"},
        {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]},
        {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]},
        template={
            "primaryPodLabels": {"tekton.dev/pipelineTask": "model-training"},
            "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="False")#',
        },
    ),
    Kind(
        "custom",
        "example.com/v1",
        "TrainingRun",
        "trainingruns",  # the plural Kubernetes guesses for an unlisted kind
        """
template:
  spec:
    restartPolicy: Never
    containers:
      - name: learner
        image: "trainer:1"
        command: [python3, train.py, "--lr=${trialParameters.lr}"]
""",
        "learner",
        # An unlisted kind: tuner labels its pod template with the trial, and selects by that.
        {TRIAL_LABEL: "{trial}"},
        {"example.com/role": "learner"},
        {"state": "Done"},
        {"state": "Broken", "reason": "OutOfMemory"},
        template={
            "primaryPodLabels": {"example.com/role": "learner"},
            "successCondition": 'status.[@this].#(state=="Done")#',
            "failureCondition": 'status.[@this].#(state=="Broken")#',
        },
    ),
]


def experiment_of(kind: Kind, *, retain: bool = False) -> Experiment:
    template = {
        "primaryContainerName": kind.container,
        "retain": retain,
        **kind.template,
        "trialParameters": [{"name": "lr", "reference": "lr"}],
        "trialSpec": {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "spec": yaml.safe_load(kind.trial_spec),
        },
    }
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "exp", "namespace": NS},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.01", "max": "0.1"},
                }
            ],
            "trialTemplate": template,
        },
    }
    return loads(yaml.safe_dump(document))[0]


class Operator:
    """The kind's operator and the kubelet, played through kmock's HTTP API."""

    def __init__(self, cluster: Any, kind: Kind) -> None:
        self.cluster, self.server, self.kind = cluster, cluster.server, kind
        self.path = f"/apis/{kind.api_version}/namespaces/{NS}/{kind.plural}"
        self.server.resources[f"{kind.api_version}/{kind.plural}"] = {}

    async def start_pod(self, trial: str, pod: str, *, primary: bool) -> Any:
        log = self.cluster.new_log(pod)
        labels = {k: v.format(trial=trial) for k, v in self.kind.pod_labels.items()}
        if primary:
            labels |= self.kind.primary_labels
        response = await self.server.post(
            f"/api/v1/namespaces/{NS}/pods",
            json={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": NS, "uid": f"uid-{pod}", "labels": labels},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {"name": self.kind.container, "restartCount": 0, "state": {"running": {}}}
                    ],
                },
            },
        )
        assert response.status in (200, 201), await response.text()
        return log

    async def end_pod(self, pod: str, exit_code: int) -> None:
        state = {"terminated": {"exitCode": exit_code}}
        status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"name": self.kind.container, "restartCount": 0, "state": state}],
        }
        await self.patch(f"/api/v1/namespaces/{NS}/pods/{pod}/status", {"status": status})
        self.cluster.logs[pod].end()

    async def set_status(self, trial: str, status: dict[str, Any]) -> None:
        await self.patch(f"{self.path}/{trial}/status", {"status": status})

    async def patch(self, path: str, body: dict[str, Any]) -> None:
        response = await self.server.patch(path, json=body)
        assert response.status == 200, await response.text()

    def stored(self, trial: str) -> dict[str, Any] | None:
        key = (self.kind.resource, NS, trial)
        if key not in self.server.objects or self.server.objects[key].deleted:
            return None
        return dict(self.server.objects[key].last.raw)


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param


@pytest_asyncio.fixture
async def operator(cluster: Any, kind: Kind) -> Operator:
    return Operator(cluster, kind)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def launch(executor: KubernetesExecutor, exp: Experiment, trial: str) -> Any:
    await run(executor.prepare, exp)
    rendered = render_trial(exp, trial, {"lr": 0.05})
    return await run(
        executor.launch, trial, rendered.argv, rendered.env, None, None, manifest=rendered.manifest
    )


async def output_of(executor: KubernetesExecutor, handle: Any) -> list[tuple[str, float]]:
    reader = await run(executor.open_output, handle)
    data = b""
    while chunk := await run(reader.read_new):
        data += chunk
    await run(reader.close)
    parser = StdOutParser(["loss"])
    return [(p.name, p.value) for p in parser.feed(data) + parser.close()]


async def play_trial(operator: Operator, trial: str, exit_code: int) -> None:
    """The operator starts the primary pod and a worker (which prints a decoy metric), the
    primary prints its metric and ends."""
    worker = await operator.start_pod(trial, f"{trial}-worker-0", primary=False)
    worker.write(b"loss=99\n")
    primary = await operator.start_pod(trial, f"{trial}-primary-0", primary=True)
    primary.write(b"epoch 1\nloss=0.25\n")
    await operator.end_pod(f"{trial}-primary-0", exit_code)


async def test_trial_object_is_created_with_parameters_and_labels(operator, executors, kind):
    await launch(executors(), experiment_of(kind), "exp-c1")
    stored = operator.stored("exp-c1")
    assert stored is not None, f"no {kind.kind} exp-c1 was created"
    assert (stored["apiVersion"], stored["kind"]) == (kind.api_version, kind.kind)
    identity = {"katib.kubeflow.org/experiment": "exp", TRIAL_LABEL: "exp-c1"}
    assert identity.items() <= stored["metadata"]["labels"].items()
    [primary] = [c for c in find_containers(stored) if "--lr=0.05" in c.body.get("command", [])]
    assert primary.name == kind.container
    assert "${trialParameters" not in yaml.safe_dump(stored)


async def test_trial_succeeds_by_its_condition_with_metrics_of_the_primary_pod(
    operator, executors, kind
):
    executor = executors()
    handle = await launch(executor, experiment_of(kind), "exp-s1")
    await play_trial(operator, "exp-s1", 0)
    assert await run(executor.poll, handle) is None  # pods ended, the object has not
    await operator.set_status("exp-s1", kind.succeeded)
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is ExitReason.COMPLETED
    assert await output_of(executor, handle) == [("loss", 0.25)]
    await run(executor.cleanup, handle)  # retain is false: the finished object goes
    assert operator.stored("exp-s1") is None


async def test_trial_fails_by_its_condition_and_is_retained(operator, executors, kind):
    executor = executors()
    handle = await launch(executor, experiment_of(kind, retain=True), "exp-f1")
    await play_trial(operator, "exp-f1", 1)
    await operator.set_status("exp-f1", kind.failed)
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is ExitReason.FAILED, outcome
    await run(executor.cleanup, handle)  # retain: the failed object stays for inspection
    assert operator.stored("exp-f1") is not None


async def test_restarted_controller_adopts_the_trial_object(operator, executors, kind):
    exp = experiment_of(kind)
    first = executors()
    handle = await launch(first, exp, "exp-a1")
    reference = handle.reference
    await run(first.close)  # the controller dies; the trial runs on

    second = executors()
    await run(second.prepare, exp)
    adopted = await run(second.adopt, reference)
    found = await run(second.find, "exp-a1")
    assert adopted is not None and found is not None
    assert await run(second.poll, adopted) is None
    await play_trial(operator, "exp-a1", 0)
    await operator.set_status("exp-a1", kind.succeeded)
    assert (await run(second.wait, adopted, WAIT)).reason is ExitReason.COMPLETED
    assert (await run(second.wait, found, WAIT)).reason is ExitReason.COMPLETED
    assert await output_of(second, adopted) == [("loss", 0.25)]


async def test_watch_gone_lists_the_kind_again(cluster, operator, executors, kind):
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    cluster.server["watch", kind.resource][:1] << (gone,)
    executor = executors(resync_seconds=300)  # no periodic re-list to blur the sequence
    handle = await launch(executor, experiment_of(kind), "exp-w1")
    calls: list[str] = []
    for _ in range(int(WAIT / 0.02)):
        calls = [
            r.action.name
            for r in cluster.calls()
            if r.resource.plural == kind.plural and r.action.name in ("LIST", "WATCH")
        ]
        if calls.count("WATCH") >= 2:
            break
        await asyncio.sleep(0.02)
    assert calls[:4] == ["LIST", "WATCH", "LIST", "WATCH"]  # 410, then a fresh list
    await operator.set_status("exp-w1", kind.succeeded)
    assert (await run(executor.wait, handle, WAIT)).reason is ExitReason.COMPLETED


async def test_killed_trial_object_is_deleted(operator, executors, kind):
    executor = executors()
    handle = await launch(executor, experiment_of(kind), "exp-k1")
    await run(executor.kill, handle)
    outcome = await run(executor.wait, handle, WAIT)
    assert outcome.reason is ExitReason.KILLED
    assert operator.stored("exp-k1") is None


ROLE_FILE = Path(__file__).resolve().parents[2] / "manifests" / "base" / "rbac.yaml"


def role_grants() -> set[tuple[str, str, str]]:
    roles = [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d["kind"] == "Role"]
    return {
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


async def test_role_grants_exactly_the_calls_made_on_each_kind(cluster, operator, executors, kind):
    exp = experiment_of(kind)
    rendered = render_trial(exp, "exp-r1", {"lr": 0.05})
    body = job_manifest(rendered.manifest, JobSettings.from_experiment(exp), "exp-r1")
    assert (await cluster.server.post(operator.path, json=body)).status in (200, 201)
    executor = executors()
    handle = await launch(executor, exp, "exp-r1")  # create: 409, then get
    await play_trial(operator, "exp-r1", 0)
    await operator.set_status("exp-r1", kind.succeeded)
    await run(executor.wait, handle, WAIT)
    await output_of(executor, handle)  # pods list, pods/log get
    await run(executor.cleanup, handle)  # delete
    await run(executor.find, "exp-r1")  # list
    killed = await launch(executor, exp, "exp-r2")
    await run(executor.kill, killed)
    await run(executor.wait, killed, WAIT)

    group = kind.api_version.rpartition("/")[0]
    calls = cluster.verbs()
    on_kind = {verb for g, resource, verb in calls if (g, resource) == (group, kind.plural)}
    # What docs/kubernetes.md tells to grant for a kind that is not listed.
    assert on_kind == set(TRIAL_OBJECT_VERBS)
    granted = role_grants()
    if kind.name == "custom":  # not in the Role: its user adds the rule
        granted |= {(group, kind.plural, verb) for verb in TRIAL_OBJECT_VERBS}
    assert calls <= granted, calls - granted
    assert on_kind == {v for g, r, v in granted if (g, r) == (group, kind.plural)}
