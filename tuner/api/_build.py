"""From the Python API's keyword arguments to a Katib Experiment document, and from Katib's
camelCase error paths back to the names the user wrote (``spec.maxTrialCount`` ->
``max_trials``, ``spec.parameters[0].feasibleSpace.min`` -> ``parameters['lr'].min``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.api._params import PARAM_TYPES
from tuner.api._pickled import FINGERPRINT_FLAG, PICKLED_FLAG, Pickled
from tuner.api._source import SourceError, function_source
from tuner.metrics import collector_class, collector_kinds
from tuner.spec import (
    API_VERSION,
    KIND,
    MAX_OBSERVATIONS_ANNOTATION,
    CollectorKind,
    SpecError,
    SpecIssue,
)

CONTAINER_NAME = "training-container"
RUNNER_COMMAND = ["python", "-m", "tuner.api._fn_runner"]

# `{name}` is a parameter; `{{` and `}}` are literal braces, as in str.format.
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass
class Inputs:
    """The Python API's arguments, as ``tuner.Experiment`` received them."""

    name: str
    parameters: Mapping[str, Any]
    objective: str | Sequence[str]
    goal_type: str | Sequence[str]
    goal: float | None = None
    additional_metrics: Sequence[str] = ()
    metric_strategies: Mapping[str, str] | None = None
    algorithm: str = "random"
    algorithm_settings: Mapping[str, Any] | None = None
    max_trials: int | None = None
    parallel_trials: int | None = None
    max_failed_trials: int | None = None
    command: Sequence[str] | None = None
    objective_fn: Callable[..., Any] | None = None
    early_stopping: str | None = None
    early_stopping_settings: Mapping[str, Any] | None = None
    metrics_collector: str | Mapping[str, Any] | None = None
    image: str | None = None
    env: Mapping[str, str] | None = None
    namespace: str = "default"
    resume_policy: str | None = None
    resources_per_trial: Mapping[str, Any] | None = None
    max_observations_per_metric: int | None = None


def katib_document(inputs: Inputs, image: str, pickled: Pickled | None = None) -> dict[str, Any]:
    """The Experiment in Katib's form; SpecError (Python names) for what the model cannot
    check itself: parameter objects, placeholders, the objective function. A function
    objective travels as its source, or as a pickle file when ``pickled`` is given."""
    issues: list[SpecIssue] = []
    parameters = _parameters(inputs.parameters, issues)
    collector = _collector(inputs.metrics_collector, issues)
    if (inputs.command is None) == (inputs.objective_fn is None):
        issues.append(
            SpecIssue("command", "give exactly one of command=[...] and objective_fn=function")
        )
        raise SpecError(issues)
    if inputs.command is not None:
        container, used = _command_container(inputs.command, list(inputs.parameters), issues)
        issues += [
            SpecIssue(
                f"parameters[{name!r}]",
                f"not used in command; pass it to the trial as {{{name}}}",
            )
            for name in inputs.parameters
            if name not in used
        ]
    else:
        container = _function_container(inputs, parameters, collector, issues, pickled)
        used = list(inputs.parameters)
    limits = _limits(inputs.resources_per_trial, issues)
    if issues:
        raise SpecError(issues)
    container = {"name": CONTAINER_NAME, "image": inputs.image or image, **container}
    if limits:
        container["resources"] = {"limits": limits}
    if inputs.env:
        container["env"] = [{"name": k, "value": v} for k, v in inputs.env.items()]
    parallel = inputs.parallel_trials
    if parallel is None and isinstance(inputs.max_trials, int) and 1 <= inputs.max_trials < 3:
        parallel = inputs.max_trials  # the default 3 must not contradict max_trials
    spec: dict[str, Any] = {
        "objective": _objective(inputs),
        "algorithm": _algorithm(inputs.algorithm, inputs.algorithm_settings),
        "parameters": parameters,
        "trialTemplate": {
            "primaryContainerName": CONTAINER_NAME,
            "trialParameters": [{"name": n, "reference": n} for n in used],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}
                },
            },
        },
    }
    if inputs.early_stopping is not None:
        spec["earlyStopping"] = _algorithm(inputs.early_stopping, inputs.early_stopping_settings)
    for key, value in (
        ("parallelTrialCount", parallel),
        ("maxTrialCount", inputs.max_trials),
        ("maxFailedTrialCount", inputs.max_failed_trials),
        ("metricsCollectorSpec", collector),
        # LongRunning unless told otherwise: raising max_trials continues a finished
        # experiment (Katib restarts only LongRunning and FromVolume ones).
        ("resumePolicy", inputs.resume_policy or "LongRunning"),
    ):
        if value is not None:
            spec[key] = value
    metadata: dict[str, Any] = {"name": inputs.name, "namespace": inputs.namespace}
    cap = inputs.max_observations_per_metric
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise SpecError(
                [
                    SpecIssue(
                        "max_observations_per_metric",
                        f"{cap!r:.80} is not a positive integer; pass a whole number of reports"
                        " per metric such as 1000, or None to store every report",
                    )
                ]
            )
        metadata["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: str(cap)}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _parameters(given: Mapping[str, Any], issues: list[SpecIssue]) -> list[dict[str, Any]]:
    if not isinstance(given, Mapping):
        issues.append(
            SpecIssue("parameters", f"{given!r:.80} is not a dict of name -> Double/Int/...")
        )
        return []
    out = []
    for name, parameter in given.items():
        if not isinstance(parameter, PARAM_TYPES):
            issues.append(
                SpecIssue(
                    f"parameters[{name!r}]",
                    f"{parameter!r:.80} is not a parameter; use Double(min, max), Int(min, "
                    "max), Discrete([...]) or Categorical([...])",
                )
            )
            continue
        try:
            out.append(parameter.to_katib(name))
        except SpecError as e:
            issues += e.issues
    return out


def objectives(inputs: Inputs) -> list[tuple[str, str]]:
    """(metric, goal type) of each objective: ``objective`` and ``goal_type`` are a name and a
    direction, or lists of the same length (several objectives)."""
    names = [inputs.objective] if isinstance(inputs.objective, str) else list(inputs.objective)
    types = [inputs.goal_type] if isinstance(inputs.goal_type, str) else list(inputs.goal_type)
    if len(names) != len(types) or not names:
        raise SpecError(
            [
                SpecIssue(
                    "goal_type",
                    f"{inputs.goal_type!r:.80} gives {len(types)} direction(s) for the"
                    f" {len(names)} objective(s) {inputs.objective!r:.80}; give one per objective",
                )
            ]
        )
    return list(zip(names, types, strict=True))


def _objective(inputs: Inputs) -> dict[str, Any]:
    (first, first_type), *more = objectives(inputs)
    objective: dict[str, Any] = {"type": first_type, "objectiveMetricName": first}
    if more:
        objective["additionalObjectives"] = [{"metricName": n, "type": t} for n, t in more]
    if inputs.goal is not None:
        objective["goal"] = inputs.goal
    if inputs.additional_metrics:
        objective["additionalMetricNames"] = list(inputs.additional_metrics)
    if inputs.metric_strategies:
        objective["metricStrategies"] = [
            {"name": k, "value": v} for k, v in inputs.metric_strategies.items()
        ]
    return objective


def _algorithm(name: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    algorithm: dict[str, Any] = {"algorithmName": name}
    if settings:
        algorithm["algorithmSettings"] = [
            {"name": k, "value": _setting_text(v)} for k, v in settings.items()
        ]
    return algorithm


def _setting_text(value: Any) -> Any:
    # Katib settings are strings; a Python bool has no YAML spelling problem, so say it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _collector(given: str | Mapping[str, Any] | None, issues: list[SpecIssue]) -> Any:
    if given is None or isinstance(given, Mapping):
        return dict(given) if given is not None else None
    kinds = {kind.value.lower(): kind.value for kind in CollectorKind}
    if isinstance(given, str) and given.lower() in kinds:
        return {"collector": {"kind": kinds[given.lower()]}}
    known = ", ".join(collector_kinds())
    issues.append(
        SpecIssue(
            "metrics_collector",
            f"{given!r} is not a collector kind ({known}) or a Katib metricsCollectorSpec dict",
        )
    )
    return None


# ``resources_per_trial`` keys -> the container's ``resources.limits`` names.
_RESOURCE_NAMES = {
    "gpu": "nvidia.com/gpu",
    "nvidia.com/gpu": "nvidia.com/gpu",
    "amd.com/gpu": "amd.com/gpu",
    "cpu": "cpu",
    "memory": "memory",
}


def _limits(resources: Mapping[str, Any] | None, issues: list[SpecIssue]) -> dict[str, Any]:
    """``{"gpu": 1, "cpu": 2}`` as Kubernetes limits (GPUs whole numbers, the rest as given
    in Kubernetes quantities: ``2``, ``0.5``, ``"500m"``, ``"4Gi"``)."""
    limits: dict[str, Any] = {}
    for key, value in (resources or {}).items():
        where = f"resources_per_trial[{key!r}]"
        name = _RESOURCE_NAMES.get(key)
        if name is None:
            issues.append(
                SpecIssue(where, f"is not a resource; use one of {', '.join(_RESOURCE_NAMES)}")
            )
        elif name.endswith("/gpu"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                issues.append(SpecIssue(where, f"{value!r} is not a whole number of GPUs"))
            else:
                limits[name] = value
        elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
            issues.append(SpecIssue(where, f"{value!r} is not a quantity like 2, 0.5 or '500m'"))
        else:
            limits[name] = str(value)
    return limits


def _command_container(
    command: Sequence[str], names: list[str], issues: list[SpecIssue]
) -> tuple[dict[str, Any], list[str]]:
    if isinstance(command, (str, bytes)) or not isinstance(command, Sequence) or not command:
        issues.append(
            SpecIssue("command", f"{command!r:.80} is not a non-empty list of arguments (argv)")
        )
        return {}, []
    used: list[str] = []
    argv = []
    for i, arg in enumerate(command):
        if not isinstance(arg, str):
            issues.append(SpecIssue(f"command[{i}]", f"{arg!r} is not a string"))
            continue
        argv.append(_placeholders(arg, names, used, f"command[{i}]", issues))
    return {"command": argv}, used


def _placeholders(
    arg: str, names: list[str], used: list[str], at: str, issues: list[SpecIssue]
) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name = match.group(1)
        if name is None:
            issues.append(SpecIssue(at, f"{arg!r}: a lone {text!r}; write {text * 2} for a brace"))
            return text
        if name not in names:
            hint = ""
            if name.startswith("trialParameters."):
                hint = f"; write {{{name.removeprefix('trialParameters.')}}} in Python"
            issues.append(
                SpecIssue(
                    at,
                    f"{{{name}}} names no parameter (parameters: {', '.join(map(repr, names))})"
                    f"{hint}; write {{{{ and }}}} for literal braces",
                )
            )
            return text
        if name not in used:
            used.append(name)
        return "${trialParameters." + name + "}"

    return _FIELD.sub(replace, arg)


def _function_container(
    inputs: Inputs,
    parameters: list[dict[str, Any]],
    collector: Any,
    issues: list[SpecIssue],
    pickled: Pickled | None,
) -> dict[str, Any]:
    fn = inputs.objective_fn
    if pickled is not None:
        shipped = [PICKLED_FLAG, pickled.path, FINGERPRINT_FLAG, pickled.fingerprint]
        name = getattr(fn, "__name__", None) or type(fn).__name__
    else:
        try:
            captured = function_source(fn)  # type: ignore[arg-type]
        except SourceError as e:
            issues.append(SpecIssue("objective_fn", str(e)))
            return {}
        shipped = ["--source", captured.source]
        name = captured.name
    kind = ((collector or {}).get("collector") or {}).get("kind")
    args = ["--function", name, "--metric", str(objectives(inputs)[0][0])]
    # Under Push (or None) printed lines are not read: the returned metrics are pushed too.
    if kind in collector_kinds() and not collector_class(kind).reads_output:
        args.append("--push")
    args += ["--space", json.dumps(parameters, separators=(",", ":"))]
    for name in inputs.parameters:
        args += ["--value", name, "${trialParameters." + name + "}"]
    args += shipped
    return {"command": list(RUNNER_COMMAND), "args": args}


# Katib path prefix -> Python argument, most specific first.
_PATHS = (
    ("metadata.name", "name"),
    ("metadata.namespace", "namespace"),
    ("spec.objective.objectiveMetricName", "objective"),
    ("spec.objective.type", "goal_type"),
    ("spec.objective.goal", "goal"),
    ("spec.objective.additionalMetricNames", "additional_metrics"),
    ("spec.objective.metricStrategies", "metric_strategies"),
    ("spec.objective.additionalObjectives", "objective"),
    ("spec.objective", "objective"),
    ("spec.algorithm.algorithmName", "algorithm"),
    ("spec.algorithm.algorithmSettings", "algorithm_settings"),
    ("spec.algorithm", "algorithm"),
    ("spec.earlyStopping.algorithmName", "early_stopping"),
    ("spec.earlyStopping.algorithmSettings", "early_stopping_settings"),
    ("spec.earlyStopping", "early_stopping"),
    ("spec.parallelTrialCount", "parallel_trials"),
    ("spec.maxTrialCount", "max_trials"),
    ("spec.maxFailedTrialCount", "max_failed_trials"),
    ("spec.metricsCollectorSpec", "metrics_collector"),
    ("spec.resumePolicy", "resume_policy"),
)
_PARAMETER = re.compile(r"spec\.parameters\[(\d+)\](.*)")
_KEYED = re.compile(
    r"(algorithm_settings|early_stopping_settings|metric_strategies)\[(\d+)\](\.\w+)?"
)
_COMMAND = re.compile(r"spec\.trialTemplate\..*\.containers\[0\]\.command\[(\d+)\]")


def python_issues(error: SpecError, inputs: Inputs) -> list[SpecIssue]:
    """``error``'s issues with paths named as the Python API's arguments where one fits;
    other paths (inside a Katib dict the user passed) keep Katib's spelling."""
    return [
        SpecIssue(_python_path(issue.path, inputs), _WORDS.sub(_word, issue.message))
        for issue in error.issues
    ]


# Katib field names that messages mention, and the argument that sets them.
_MESSAGE_WORDS = {
    "maxTrialCount": "max_trials",
    "parallelTrialCount": "parallel_trials",
    "maxFailedTrialCount": "max_failed_trials",
    "objectiveMetricName": "objective",
    "additionalMetricNames": "additional_metrics",
}
_WORDS = re.compile(r"\b(?:spec\.)?(" + "|".join(_MESSAGE_WORDS) + r")\b")


def _word(match: re.Match[str]) -> str:
    return _MESSAGE_WORDS[match.group(1)]


_KATIB_HEAD = re.compile(r"(?:spec|metadata)(?:\.\w+|\[\d+\])*")


def python_message(message: str, inputs: Inputs | None) -> str:
    """A refusal the engine phrased for YAML (``spec.parallelTrialCount: ...``, ``--db``)
    in the Python API's words; unchanged for an Experiment read from YAML (no inputs)."""
    if inputs is None:
        return message
    head, sep, rest = message.partition(": ")
    if sep and _KATIB_HEAD.fullmatch(head):
        message = python_path(head, inputs) + sep + rest
    message = _WORDS.sub(_word, message)
    return message.replace("feasibleSpace.step", "step").replace("--db", "db=")


def python_path(path: str, inputs: Inputs) -> str:
    """The Python argument that sets Katib ``path`` (``spec.maxTrialCount`` ->
    ``max_trials``); the path itself where none fits."""
    return _python_path(path, inputs)


def _python_path(path: str, inputs: Inputs) -> str:
    match = _PARAMETER.fullmatch(path)
    if match:
        names = list(inputs.parameters)
        index = int(match.group(1))
        name = names[index] if index < len(names) else index
        rest = match.group(2).replace(".feasibleSpace.list", ".values")
        rest = rest.replace(".feasibleSpace", "")
        if rest in (".parameterType", ".name"):
            rest = ""
        return f"parameters[{name!r}]{rest}"
    if path == "spec.parameters":
        return "parameters"
    match = _COMMAND.fullmatch(path)
    if match and inputs.command is not None:
        return f"command[{match.group(1)}]"
    if path.startswith("spec.trialTemplate"):
        return "command" if inputs.command is not None else "objective_fn"
    for katib, python in _PATHS:
        if path == katib or path.startswith((katib + ".", katib + "[")):
            return _keyed(python + path[len(katib) :], inputs)
    return path


def _keyed(path: str, inputs: Inputs) -> str:
    """``algorithm_settings[0].value`` -> ``algorithm_settings['name']``: the dict key the
    user wrote instead of a list index (same for metric_strategies)."""
    match = _KEYED.fullmatch(path)
    if not match:
        return path
    given = {
        "algorithm_settings": inputs.algorithm_settings,
        "early_stopping_settings": inputs.early_stopping_settings,
        "metric_strategies": inputs.metric_strategies,
    }[match.group(1)]
    names = list(given or {})
    index = int(match.group(2))
    return f"{match.group(1)}[{names[index]!r}]" if index < len(names) else path
