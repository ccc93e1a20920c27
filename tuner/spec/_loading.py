"""Reading Experiments from YAML text or files (``yaml.safe_load_all``), every problem of every
document reported together."""

from __future__ import annotations

import os
from typing import Any

import yaml

from tuner.spec._experiment import Experiment
from tuner.spec._issues import SpecError, SpecIssue, short_repr
from tuner.spec._yaml import MAX_TEXT_CHARS, YAMLLimitError, safe_load_all

_REQUIRED_TOP_LEVEL = ("apiVersion", "kind")


def load_file(path: str | os.PathLike[str]) -> list[Experiment]:
    """Every Experiment in a YAML file (several documents may be separated by ``---``).

    Raises ``SpecError`` (issues of all documents) when the file cannot be read, is not YAML,
    holds no document, or any document is not a valid Experiment.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            # One character more than accepted, so that the limit is reported, not read.
            text = f.read(MAX_TEXT_CHARS + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError([SpecIssue("", f"cannot read the file: {e}")], source=source) from e
    return loads(text, source=source)


def loads(text: str, source: str = "<string>") -> list[Experiment]:
    """Every Experiment in YAML ``text``; ``source`` names it in error messages.

    Empty documents are skipped. When the text holds several documents, issue paths start
    with the document's position in the text, e.g. ``[1].spec.maxTrialCount``.
    """
    try:
        documents = safe_load_all(text)
    except yaml.YAMLError as e:
        raise SpecError([_syntax_issue(e)], source=source) from e
    present = [(i, doc) for i, doc in enumerate(documents) if doc is not None]
    if not present:
        raise SpecError([SpecIssue("", "no Experiment found: the YAML is empty")], source=source)
    several = len(present) > 1
    experiments: list[Experiment] = []
    issues: list[SpecIssue] = []
    for index, document in present:
        prefix = f"[{index}]" if several else ""
        try:
            experiments.append(_load_document(document))
        except SpecError as e:
            issues += [issue.under(prefix) for issue in e.issues]
    issues += _repeated_names(experiments, [index for index, _ in present])
    if issues:
        raise SpecError(issues, source=source)
    return experiments


def _repeated_names(experiments: list[Experiment], indexes: list[int]) -> list[SpecIssue]:
    """Two documents of one text naming the same Experiment: a run would refuse the second."""
    if len(experiments) != len(indexes):
        return []  # some document is invalid already
    first: dict[str, int] = {}
    issues = []
    for index, experiment in zip(indexes, experiments, strict=True):
        name = experiment.metadata.name
        if name in first:
            issues.append(
                SpecIssue(
                    f"[{index}].metadata.name",
                    f"{short_repr(name)} is the name of document [{first[name]}] too; each"
                    " Experiment needs its own name",
                )
            )
        else:
            first[name] = index
    return issues


def _load_document(document: Any) -> Experiment:
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise SpecError(
            [
                SpecIssue(
                    "", f"{short_repr(document)} ({kind}) is not a mapping; expected an Experiment"
                )
            ]
        )
    missing = [SpecIssue(key, "required") for key in _REQUIRED_TOP_LEVEL if key not in document]
    try:
        experiment = Experiment.model_validate(document)
    except SpecError as e:
        raise SpecError(missing + e.issues) from e
    if missing:
        raise SpecError(missing)
    return experiment


def _syntax_issue(error: yaml.YAMLError) -> SpecIssue:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    where = "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        where = f"character {error.position + 1}"
        problem = f"{error.reason} (character {error.character!r})"
        context = None
    kind = "YAML refused" if isinstance(error, YAMLLimitError) else "YAML syntax error"
    message = f"{kind}: {problem}" + (f" ({context})" if context else "")
    return SpecIssue(where, message)
