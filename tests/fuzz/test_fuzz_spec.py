"""Fuzzing Experiment YAML: mutated valid Experiments and raw text. Every input is either
loaded (and then converts to Katib's wire message and to the store's JSON) or refused with
``SpecError`` whose issues each name a field path or a line; nothing else is raised."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tuner.controller._wire import experiment_proto
from tuner.spec import SpecError, loads

SCALE = 25 if os.environ.get("TUNER_FUZZ_PROFILE") == "fuzz" else 1
VALID = Path(__file__).resolve().parents[1] / "spec" / "valid" / "random-job.yaml"
BASE: dict[str, Any] = yaml.safe_load(VALID.read_text(encoding="utf-8"))

# Document-level issues have no field path; everything else names one.
_DOCUMENT_LEVEL = ("is not a mapping", "no Experiment found", "the YAML is empty")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "2147483648", "${trialParameters.x}", "="]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


@st.composite
def mutated_experiments(draw: st.DrawFn) -> Any:
    document: Any = json.loads(json.dumps(BASE))  # a deep copy
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        delete = bool(path) and draw(st.booleans()) and draw(st.booleans())
        document = _mutate(document, path, draw(values), delete)
        if not isinstance(document, (dict, list)):
            break
    return document


def check_loading(text: str) -> None:
    try:
        experiments = loads(text)
    except SpecError as e:
        assert e.issues, "a SpecError without issues"
        for issue in e.issues:
            assert issue.path or any(m in issue.message for m in _DOCUMENT_LEVEL), str(issue)
            assert len(issue.message) < 2_000, "a message that holds a whole value"
        return
    for experiment in experiments:
        # What a run does next with an accepted Experiment must not fail either.
        experiment_proto(experiment)
        json.dumps(experiment.to_dict(), allow_nan=False)


def _seed(path: tuple[Any, ...], value: Any) -> Any:
    return _mutate(json.loads(json.dumps(BASE)), path, value, delete=False)


@settings(max_examples=600 * SCALE)
# Seeds found by this suite: a trialSpec kind that is not a string (TypeError).
@example(_seed(("spec", "trialTemplate", "trialSpec", "kind"), []))
@given(mutated_experiments())
def test_mutated_experiments_load_or_are_refused_naming_a_field(document: Any) -> None:
    check_loading(yaml.safe_dump(document, sort_keys=False))


# Seeds: inputs that once crashed `tuner validate` or `tuner run` (issue 17).
@settings(max_examples=400 * SCALE)
@example(VALID.read_text().replace("maxTrialCount: 12", "maxTrialCount: 2147483648"))
@example(VALID.read_text().replace('max: "5"', 'max: "' + "9" * 400 + '"'))
@example(VALID.read_text().replace("maxTrialCount: 12", "maxTrialCount: " + "9" * 5000))
@example("a: " + "[" * 10_000 + "]" * 10_000)
@example("{a: " * 3_000 + "1" + "}" * 3_000)
@example(
    "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]"
)
@example("x: &x {y: *x}")
@example("?")  # a null key: pydantic raised a bare TypeError ("keywords must be strings")
@example("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec: {1: 2}")
@example("!!python/object/apply:os.system ['true']")
@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda at, junk: (lambda t: t[: at % (len(t) + 1)] + junk + t[at % (len(t) + 1) :])(
                VALID.read_text()
            ),
            st.integers(min_value=0),
            st.text(max_size=20),
        ),
    )
)
def test_raw_yaml_text_loads_or_is_refused_naming_a_field_or_line(text: str) -> None:
    check_loading(text)
