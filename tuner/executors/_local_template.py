"""What the local executor makes of a trial template of any kind: it runs the primary
container's command of the primary replica as one process, says once per experiment which
template fields it does not apply, and refuses kinds without a single primary container."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.executors._base import LaunchError
from tuner.spec import Experiment, find_containers, trial_kind


def check_kind(trial_spec: Mapping[str, Any]) -> None:
    """Refuse, naming the kind, a trial whose work is spread over several containers in
    sequence (Argo Workflow, Tekton PipelineRun): no one process can stand for it."""
    kind = trial_kind(str(trial_spec.get("apiVersion")), str(trial_spec.get("kind")))
    if not kind.single_primary:
        raise LaunchError(
            f"spec.trialTemplate.trialSpec: a {kind.kind} ({kind.api_version}) has no single"
            " primary container the local executor could run as a process (its steps run in"
            " containers one after another); run it with --executor kubernetes"
        )


def ignored_fields(experiment: Experiment) -> list[str]:
    """The parts of the trial template that a local run does not apply, as phrases."""
    template = experiment.spec.trial_template
    trial_spec = template.trial_spec or {}
    containers = find_containers(trial_spec)
    primary = next((c for c in containers if c.name == template.primary_container_name), None)
    if primary is None:
        return []
    body = primary.body
    ignored = []
    if body.get("image"):
        ignored.append(f"image {body['image']!r} (the command runs on this machine)")
    others = [c for c in containers if c is not primary]
    if others:
        shown = ", ".join(f"{c.name} at {c.path}" for c in others[:4])
        more = f" and {len(others) - 4} more" if len(others) > 4 else ""
        ignored.append(f"{len(others)} other container(s) or replica(s): {shown}{more}")
    replicas = _replicas_of(trial_spec, primary.path)
    if isinstance(replicas, int) and replicas > 1:
        ignored.append(f"replicas: {replicas} of the primary replica (one process runs)")
    unapplied = _unapplied_resources(body.get("resources"))
    if unapplied:
        ignored.append(
            "resources of the primary container other than the cpu and GPU limits: "
            + ", ".join(unapplied)
        )
    if body.get("volumeMounts") or _has_key(trial_spec, "volumes"):
        ignored.append("volumes and volumeMounts (paths are this machine's)")
    num_nodes = (trial_spec.get("spec") or {}).get("trainer", {}).get("numNodes")
    if isinstance(num_nodes, int) and num_nodes > 1:
        ignored.append(f"trainer.numNodes: {num_nodes} (one process runs)")
    return ignored


# The limits the local executor applies (tuner/executors/_devices.py): GPUs shared out, cpu
# as thread counts and affinity.
_APPLIED_LIMITS = frozenset({"cpu", "nvidia.com/gpu", "amd.com/gpu"})


def _unapplied_resources(resources: Any) -> list[str]:
    """``requests.<name>`` and ``limits.<name>`` that a local run does not apply (it applies
    cpu and GPU limits, or their requests when no limit is given)."""
    if not isinstance(resources, Mapping):
        return []
    limits = resources.get("limits")
    limits = limits if isinstance(limits, Mapping) else {}
    unapplied = []
    for section in ("requests", "limits"):
        entries = resources.get(section)
        if not isinstance(entries, Mapping):
            continue
        for name in entries:
            # A cpu or GPU limit applies; so does its request when no limit is given.
            applied = name in _APPLIED_LIMITS and (section == "limits" or name not in limits)
            if not applied:
                unapplied.append(f"{section}.{name}")
    return unapplied


def _replicas_of(trial_spec: Mapping[str, Any], container_path: str) -> Any:
    """``replicas`` of the replica spec holding the container (training jobs), if any."""
    node: Any = trial_spec
    found = None
    for part in container_path.replace("[", ".").replace("]", "").split("."):
        if isinstance(node, Mapping):
            if "replicas" in node and "template" in node:
                found = node["replicas"]
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            break
    return found


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, Mapping):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False
