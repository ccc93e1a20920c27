"""Turning the trial template into one trial's Kubernetes object and process arguments.

Substitution is a single pass over every string of ``trialSpec``: a value that itself looks
like ``${trialParameters.x}`` is not expanded again, and values are placed into argv elements,
never into a shell string, so ``$(rm -rf /)`` or ``; reboot`` stays literal text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.space import SpaceError, Value
from tuner.spec import _template
from tuner.spec._experiment import Experiment
from tuner.spec._issues import SpecError, SpecIssue, short_repr
from tuner.spec._katib import LABEL_EXPERIMENT, LABEL_TRIAL


def find_containers(trial_spec: Mapping[str, Any]) -> list[_template.Container]:
    """Every container of a trial object where its kind keeps them, as its pods name them."""
    return _template.find_containers(trial_spec)


@dataclass(frozen=True)
class RenderedTrial:
    """One trial, ready for an executor.

    ``manifest`` is the trialSpec object with placeholders replaced and ``metadata.name``
    (the trial name), ``metadata.namespace`` (the experiment's) and the labels
    ``katib.kubeflow.org/experiment`` and ``katib.kubeflow.org/trial`` set.
    ``primary_container`` is the primary container inside ``manifest`` (the same dict), or
    ``{}`` for an object that keeps its containers elsewhere (a Tekton ``pipelineRef``).
    ``argv`` is its ``command`` followed by its ``args`` (empty ``command`` means the image's
    entrypoint, which only a container runtime knows). ``env`` holds the env entries with a
    literal ``value``; the names of entries using ``valueFrom`` (secrets, field refs), which
    only Kubernetes can resolve, are in ``env_value_from``.
    """

    name: str
    manifest: dict[str, Any]
    primary_container: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    env_value_from: tuple[str, ...]
    working_dir: str | None


def render_trial(
    experiment: Experiment, trial_name: str, assignment: Mapping[str, Value]
) -> RenderedTrial:
    """Render the trial template for ``trial_name`` with one value per search-space parameter.

    Raises ``SpecError`` (paths start with ``assignment``) when the assignment misses or adds
    a parameter or holds a value its parameter cannot format.
    """
    template = experiment.spec.trial_template
    trial_spec = template.trial_spec or {}
    namespace = experiment.metadata.namespace
    values = _placeholder_values(experiment, trial_name, assignment)

    def replace(text: str) -> str:
        return _template.PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    manifest: dict[str, Any] = _template.substitute(trial_spec, replace)
    metadata = dict(manifest.get("metadata") or {})
    metadata["name"] = trial_name
    metadata["namespace"] = namespace
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        LABEL_EXPERIMENT: experiment.metadata.name,
        LABEL_TRIAL: trial_name,
    }
    manifest["metadata"] = metadata

    found = _template.find_primary_container(manifest, template.primary_container_name)
    # Validation guarantees the container, unless the object keeps none inline (a Tekton
    # pipelineRef...): then there is no command to run here, only the object to create.
    container = found.body if found is not None else {}
    env_entries = container.get("env") or []
    return RenderedTrial(
        name=trial_name,
        manifest=manifest,
        primary_container=container,
        argv=[*(container.get("command") or []), *(container.get("args") or [])],
        env={e["name"]: e.get("value") or "" for e in env_entries if "valueFrom" not in e},
        env_value_from=tuple(e["name"] for e in env_entries if "valueFrom" in e),
        working_dir=container.get("workingDir"),
    )


def _placeholder_values(
    experiment: Experiment, trial_name: str, assignment: Mapping[str, Value]
) -> dict[str, str]:
    """trialParameters[].name -> the text that replaces its placeholder."""
    parameters = {p.name: p.parameter for p in experiment.spec.parameters}
    issues = [
        SpecIssue(f"assignment.{name}", "missing: every parameter needs a value")
        for name in parameters
        if name not in assignment
    ] + [
        SpecIssue(f"assignment.{name}", f"{short_repr(name)} is not a parameter of the experiment")
        for name in assignment
        if name not in parameters
    ]
    template = experiment.spec.trial_template
    trial_spec = template.trial_spec or {}
    values: dict[str, str] = {}
    for trial_parameter in template.trial_parameters:
        reference = trial_parameter.reference
        meta = _template.parse_meta_reference(reference)
        if meta is not None:
            text = _template.meta_value(meta, trial_spec, trial_name, experiment.metadata.namespace)
            assert text is not None, "validation checks labels and annotations references"
            values[trial_parameter.name] = text
        elif reference in assignment:
            try:
                values[trial_parameter.name] = parameters[reference].format(assignment[reference])
            except SpaceError as e:
                issues.append(SpecIssue(f"assignment.{reference}", str(e)))
    if issues:
        raise SpecError(issues, what=f"cannot render trial {short_repr(trial_name)}")
    return values
