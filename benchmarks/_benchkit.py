"""Shared by the benchmarks: Katib-shaped gRPC messages and Experiment documents, Markdown
tables, and replacing one benchmark's section of RESULTS.md while leaving the other
sections intact."""

from __future__ import annotations

import os
import platform
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tuner.protos import api_pb2

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def compile_sources() -> None:
    """Byte-compile tuner's and the suggestion service's modules where they are imported
    from, as installing a package does. With PYTHONDONTWRITEBYTECODE set (as on this
    workplace's machines) a checkout installed in editable mode is otherwise compiled again
    by every process the benchmark starts: ~0.1 s of CPU per `tuner run` that an installed
    copy does not pay."""
    import compileall

    import suggestion
    import tuner

    for package in (tuner, suggestion):
        compileall.compile_dir(os.path.dirname(package.__file__), quiet=1)


# -- Experiment documents -------------------------------------------------------------


def job_experiment(
    name: str,
    command: Sequence[str],
    *,
    trials: int,
    parallel: int,
    parameter: tuple[str, str, str],
    settings: Mapping[str, str] = {},  # noqa: B006 - read only
    max_failed: int | None = None,
    namespace: str | None = None,
    container: str = "main",
    image: str = "python:3.11",
) -> dict[str, Any]:
    """A Katib Experiment (as ``tuner run`` reads it) minimising ``loss``, random search over
    one parameter ``x`` (``parameter``: its type, min and max), each trial a batch Job
    running ``command`` (``${trialParameters.x}`` in it is the trial's value)."""
    kind, low, high = parameter
    algorithm: dict[str, Any] = {"algorithmName": "random"}
    if settings:
        algorithm["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": algorithm,
        "parallelTrialCount": parallel,
        "maxTrialCount": trials,
    }
    if max_failed is not None:
        spec["maxFailedTrialCount"] = max_failed
    spec["parameters"] = [
        {"name": "x", "parameterType": kind, "feasibleSpace": {"min": low, "max": high}}
    ]
    spec["trialTemplate"] = {
        "primaryContainerName": container,
        "trialParameters": [{"name": "x", "reference": "x"}],
        "trialSpec": {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": container, "image": image, "command": list(command)}
                        ],
                    }
                }
            },
        },
    }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": metadata,
        "spec": spec,
    }


# -- protobuf -------------------------------------------------------------------------


def experiment(
    name: str,
    algorithm: str,
    doubles: Sequence[tuple[str, float, float]],
    *,
    settings: Mapping[str, str] = {},  # noqa: B006 - read only
    step: float | None = None,
) -> api_pb2.Experiment:
    """A minimising experiment over double parameters (stepped when ``step`` is given)."""
    params = [
        api_pb2.ParameterSpec(
            name=n,
            parameter_type=api_pb2.DOUBLE,
            feasible_space=api_pb2.FeasibleSpace(
                min=repr(lo), max=repr(hi), step="" if step is None else repr(step)
            ),
        )
        for n, lo, hi in doubles
    ]
    return api_pb2.Experiment(
        name=name,
        spec=api_pb2.ExperimentSpec(
            parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=params),
            objective=api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE, objective_metric_name="loss"),
            algorithm=api_pb2.AlgorithmSpec(
                algorithm_name=algorithm,
                algorithm_settings=[
                    api_pb2.AlgorithmSetting(name=k, value=v) for k, v in settings.items()
                ],
            ),
        ),
    )


def trial(
    name: str, assignment: Mapping[str, str], index: int, value: float | None
) -> api_pb2.Trial:
    """SUCCEEDED with ``loss=value`` (completed ``index`` seconds after a fixed epoch, the
    order CMA-ES reads), or RUNNING when ``value`` is None."""
    if value is None:
        status = api_pb2.TrialStatus(condition=api_pb2.TrialStatus.RUNNING)
    else:
        status = api_pb2.TrialStatus(
            condition=api_pb2.TrialStatus.SUCCEEDED,
            completion_time=(_EPOCH + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            observation=api_pb2.Observation(
                metrics=[api_pb2.Metric(name="loss", value=repr(value))]
            ),
        )
    return api_pb2.Trial(
        name=name,
        spec=api_pb2.TrialSpec(
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(
                assignments=[
                    api_pb2.ParameterAssignment(name=k, value=v) for k, v in assignment.items()
                ]
            )
        ),
        status=status,
    )


def request(
    exp: api_pb2.Experiment, trials: Sequence[api_pb2.Trial], count: int
) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(
        experiment=exp, trials=list(trials), current_request_number=count
    )


def assignments(reply: api_pb2.GetSuggestionsReply) -> list[dict[str, str]]:
    return [{a.name: a.value for a in p.assignments} for p in reply.parameter_assignments]


# -- reporting ------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int) -> str:
    """A Markdown table; columns from ``numeric_from`` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def command_line(script: str, argv: Sequence[str]) -> str:
    return shlex.join(["python", f"benchmarks/{script}", *argv])


def machine_notes() -> str:
    import grpc
    import numpy
    import optuna
    import skopt

    return (
        f"{os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, optuna "
        f"{optuna.__version__}, scikit-optimize {skopt.__version__}, numpy {numpy.__version__}."
        " A shared virtual machine: other work ran beside the benchmark, so timings are noisy"
        " (expect +-30 % between runs)."
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``## heading`` section of ``path``, leaving the others."""
    marker = f"## {heading}"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    match = re.search(rf"^{re.escape(marker)}[ \t]*$", old, re.MULTILINE)
    if match is None:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        following = re.search(r"^## ", old[match.end() :], re.MULTILINE)
        end = len(old) if following is None else match.end() + following.start()
        rest = old[end:]
        new = old[: match.start()] + text.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    path.write_text(new.rstrip("\n") + "\n")
