"""Reading a trial template: ``${trialParameters.x}`` placeholders, ``${trialSpec.Name}``-style
metadata references, and the containers of the Kubernetes object in ``trialSpec``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tuner.spec import _kinds
from tuner.spec._issues import child
from tuner.spec._kinds import Container

# Katib's TrialTemplateParamReplaceFormatRegex is `\$\{trialParameters\..+?\}`; braces are
# excluded from names here (Katib forbids them in trialParameters[].name) so that
# `${trialParameters.}` is caught as an undefined name rather than swallowing text.
PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^{}]*)\}")

META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
META_INDEXED_KEYS = ("Labels", "Annotations")
_META = re.compile(r"\$\{trialSpec\.(?P<key>\w+)(?:\[(?P<index>[^\]]+)\])?\}")
META_FORMS = (
    "${trialSpec.Name}, ${trialSpec.Namespace}, ${trialSpec.Kind}, ${trialSpec.APIVersion},"
    " ${trialSpec.Labels[<key>]}, ${trialSpec.Annotations[<key>]}"
)


@dataclass(frozen=True)
class MetaReference:
    """A trialParameters[].reference to trial metadata instead of a search-space parameter:
    ``key`` is one of ``META_KEYS`` or ``META_INDEXED_KEYS`` (then ``index`` is the label or
    annotation key)."""

    key: str
    index: str | None = None


def is_meta_syntax(reference: str) -> bool:
    """Whether a reference is meant as trial metadata (it may still be malformed)."""
    return reference.startswith("${")


def parse_meta_reference(reference: str) -> MetaReference | None:
    """The metadata reference in Katib's forms (see ``META_FORMS``), or None."""
    match = _META.fullmatch(reference)
    if match is None:
        return None
    key, index = match.group("key"), match.group("index")
    if (key in META_KEYS and index is None) or (key in META_INDEXED_KEYS and index is not None):
        return MetaReference(key, index)
    return None


def object_meta(trial_spec: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = trial_spec.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def meta_value(
    ref: MetaReference, trial_spec: Mapping[str, Any], trial_name: str, namespace: str
) -> str | None:
    """The value Katib substitutes for a metadata reference; None for a label or annotation
    the template does not set. Labels and annotations are the template's own, as in Katib."""
    if ref.key == "Name":
        return trial_name
    if ref.key == "Namespace":
        return namespace
    if ref.key == "Kind":
        return str(trial_spec.get("kind", ""))
    if ref.key == "APIVersion":
        return str(trial_spec.get("apiVersion", ""))
    table = object_meta(trial_spec).get(ref.key.lower())
    if not isinstance(table, Mapping) or ref.index not in table:
        return None
    return str(table[ref.index])


def walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a YAML tree, mapping keys included, with the path where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield child(path, key), key
            yield from walk_strings(item, child(path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_strings(item, child(path, i))


def substitute(value: Any, replace: Callable[[str], str]) -> Any:
    """A deep copy of a YAML tree with ``replace`` applied once to every string (keys too)."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, Mapping):
        return {
            (replace(k) if isinstance(k, str) else k): substitute(v, replace)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(item, replace) for item in value]
    return value


def find_containers(trial_spec: Mapping[str, Any]) -> list[Container]:
    """Every container of a trial object, where its kind keeps them (``tuner.spec._kinds``),
    in document order, with its path and the name its pods give it."""
    return _kinds.of(trial_spec).containers(trial_spec)


def find_primary_container(trial_spec: Mapping[str, Any], name: str) -> Container | None:
    """The first container named ``name`` (Katib's primaryContainerName) as pods name it."""
    for container in find_containers(trial_spec):
        if container.name == name:
            return container
    return None
