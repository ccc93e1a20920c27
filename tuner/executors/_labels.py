"""Kubernetes labels and label selectors: the checks the API server applies to label keys and
values, the selector strings the Kubernetes executor sends, and the same selectors evaluated
on our side, because the executor never trusts a list or watch to have applied them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuner.executors._base import ExecutorError

# apimachinery's validation: a name part is a qualified name, a prefix a DNS-1123 subdomain.
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_NAME_LENGTH = 63
MAX_PREFIX_LENGTH = 253

# The operators of equality-based selectors; set-based ones (`in`, `notin`) are not needed.
EQUALS, NOT_EQUALS, EXISTS, NOT_EXISTS = "=", "!=", "exists", "!exists"


class LabelError(ExecutorError, ValueError):
    """A label key, label value or selector that Kubernetes would refuse."""


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key, or None if it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before '/' is empty"
    if slash and (len(prefix) > MAX_PREFIX_LENGTH or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return (
            f"the prefix {prefix!r} is not a DNS-1123 subdomain (lower-case letters, digits,"
            f" '-' and '.', at most {MAX_PREFIX_LENGTH} characters)"
        )
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        return (
            f"the name {name!r} must be 1 to {MAX_NAME_LENGTH} letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None if it is (the empty value is valid)."""
    if value and (len(value) > MAX_NAME_LENGTH or not _NAME.fullmatch(value)):
        return (
            f"must be at most {MAX_NAME_LENGTH} letters, digits, '-', '_' or '.', starting and"
            " ending with a letter or digit"
        )
    return None


def dns1123_label_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 label (what a Job name must be), or None if it is."""
    if len(name) > MAX_NAME_LENGTH or not _DNS1123_LABEL.fullmatch(name):
        return (
            f"must be 1 to {MAX_NAME_LENGTH} lower-case letters, digits or '-', starting and"
            " ending with a letter or digit"
        )
    return None


def check_labels(labels: Mapping[str, str], path: str) -> None:
    """Raise :class:`LabelError` naming ``path`` for the first invalid key or value."""
    for key, value in labels.items():
        if not isinstance(key, str) or (problem := label_key_problem(key)) is not None:
            raise LabelError(f"{path}: label key {key!r}: {problem or 'is not a string'}")
        if not isinstance(value, str) or (problem := label_value_problem(value)) is not None:
            raise LabelError(f"{path}.{key}: label value {value!r}: {problem or 'not a string'}")


@dataclass(frozen=True)
class Requirement:
    """One term of a selector: ``key=value``, ``key!=value``, ``key`` or ``!key``."""

    key: str
    operator: str
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == EQUALS:
            return labels.get(self.key) == self.value
        if self.operator == NOT_EQUALS:  # as in Kubernetes: a missing label is "not equal"
            return labels.get(self.key) != self.value
        if self.operator == EXISTS:
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == NOT_EXISTS:
            return f"!{self.key}"
        return f"{self.key}{self.operator}{self.value}"


@dataclass(frozen=True)
class Selector:
    """An equality-based label selector: all of its requirements must hold.

    ``str(selector)`` is the ``labelSelector`` query parameter; :meth:`matches` evaluates the
    same selector on an object's labels. The empty selector matches everything.
    """

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def equal(cls, labels: Mapping[str, str]) -> Selector:
        """``k1=v1,k2=v2...`` for every label, keys sorted (so the string is stable)."""
        check_labels(labels, "selector")
        return cls(tuple(Requirement(k, EQUALS, labels[k]) for k in sorted(labels)))

    @classmethod
    def exists(cls, *keys: str) -> Selector:
        for key in keys:
            if (problem := label_key_problem(key)) is not None:
                raise LabelError(f"selector: label key {key!r}: {problem}")
        return cls(tuple(Requirement(k, EXISTS) for k in keys))

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Read a selector string: comma-separated ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""
        requirements = []
        for raw in (t.strip() for t in text.split(",")) if text.strip() else ():
            if "!=" in raw:
                key, _, value = raw.partition("!=")
                term = Requirement(key.strip(), NOT_EQUALS, value.strip())
            elif "=" in raw:
                key, _, value = raw.partition("==" if "==" in raw else "=")
                term = Requirement(key.strip(), EQUALS, value.strip())
            elif raw.startswith("!"):
                term = Requirement(raw[1:].strip(), NOT_EXISTS)
            else:
                term = Requirement(raw, EXISTS)
            if (problem := label_key_problem(term.key)) is not None:
                raise LabelError(f"selector {text!r}: {raw!r}: label key {term.key!r}: {problem}")
            if (problem := label_value_problem(term.value)) is not None:
                raise LabelError(f"selector {text!r}: {raw!r}: value {term.value!r} {problem}")
            requirements.append(term)
        return cls(tuple(requirements))

    def __and__(self, other: Selector) -> Selector:
        return Selector(self.requirements + other.requirements)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def select(self, objects: Iterable[Mapping[str, object]]) -> list[Mapping[str, object]]:
        """The objects (API dicts) whose ``metadata.labels`` match."""
        return [o for o in objects if self.matches(object_labels(o))]

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def object_labels(obj: Mapping[str, object]) -> dict[str, str]:
    """``metadata.labels`` of an API object as a dict (empty when absent)."""
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return dict(labels) if isinstance(labels, Mapping) else {}
