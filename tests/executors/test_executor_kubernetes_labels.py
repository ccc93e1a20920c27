"""Label selectors as the Kubernetes executor sends and re-checks them (a proxy or test API
server may ignore ``labelSelector``, so the client-side match also keeps foreign objects out;
the tests' own kmock server honours it)."""

from __future__ import annotations

import pytest

from tuner.executors._labels import (
    LabelError,
    Selector,
    check_labels,
    dns1123_label_problem,
    label_key_problem,
    label_value_problem,
)

TRIAL = "katib.kubeflow.org/trial"


def pod(**labels: str) -> dict[str, object]:
    return {"metadata": {"name": "p", "labels": labels}}


def test_equality_selector_string_is_sorted_and_stable():
    selector = Selector.equal({"role": "trainer", "job-name": "exp-t1"})
    assert str(selector) == "job-name=exp-t1,role=trainer"
    assert str(Selector.exists(TRIAL)) == TRIAL
    assert str(Selector.equal({"a": "1"}) & Selector.exists("b")) == "a=1,b"


def test_equality_selector_needs_every_label_to_match():
    selector = Selector.equal({"job-name": "exp-t1", "role": "trainer"})
    assert selector.matches({"job-name": "exp-t1", "role": "trainer", "extra": "x"})
    assert not selector.matches({"job-name": "exp-t1", "role": "ps"})
    assert not selector.matches({"job-name": "exp-t1"})
    assert not selector.matches(None)


def test_existence_selectors():
    assert Selector.exists(TRIAL).matches({TRIAL: ""})
    assert not Selector.exists(TRIAL).matches({"other": "x"})
    assert Selector.parse(f"!{TRIAL}").matches({"other": "x"})
    assert not Selector.parse(f"!{TRIAL}").matches({TRIAL: "t"})


def test_empty_selector_matches_everything():
    assert Selector().matches({}) and Selector.parse("").matches({"a": "b"})
    assert str(Selector()) == ""


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "1"}, True),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {}, True),  # a missing label is "not equal", as in Kubernetes
        ("a!=1", {"a": "1"}, False),
        ("a=1, b", {"a": "1", "b": ""}, True),
        ("a=1,b", {"a": "1"}, False),
    ],
)
def test_parsed_selectors_match_as_kubernetes_does(text, labels, expected):
    assert Selector.parse(text).matches(labels) is expected


def test_select_filters_api_objects():
    objects = [pod(**{"job-name": "t1"}), pod(**{"job-name": "t2"}), {"metadata": {}}]
    assert Selector.equal({"job-name": "t1"}).select(objects) == [objects[0]]


def test_parse_round_trips_what_it_formats():
    selector = Selector.parse("job-name=t1,role!=ps,katib.kubeflow.org/trial,!x")
    assert Selector.parse(str(selector)) == selector


@pytest.mark.parametrize(
    "key",
    ["katib.kubeflow.org/trial", "job-name", "a", "A_b.c-d", "x" * 63, "example.com/" + "x" * 63],
)
def test_valid_label_keys(key):
    assert label_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "name ''"),
        ("/x", "prefix before '/' is empty"),
        ("Example.com/x", "not a DNS-1123 subdomain"),
        ("x" * 64, "1 to 63"),
        ("-x", "starting and ending"),
        ("a b", "1 to 63"),
    ],
)
def test_invalid_label_keys_say_why(key, fragment):
    assert fragment in (label_key_problem(key) or "")


def test_label_values_and_job_names():
    assert label_value_problem("") is None
    assert label_value_problem("exp-t1") is None
    assert "at most 63" in (label_value_problem("x" * 64) or "")
    assert dns1123_label_problem("exp-abc123") is None
    assert dns1123_label_problem("Exp_1") is not None
    assert dns1123_label_problem("x" * 64) is not None


def test_check_labels_names_the_path_and_value():
    with pytest.raises(LabelError, match=r"primaryPodLabels.role: label value 'a b'"):
        check_labels({"role": "a b"}, "spec.trialTemplate.primaryPodLabels")
    with pytest.raises(LabelError, match=r"'bad key=1': label key 'bad key'"):
        Selector.parse("bad key=1")
