"""Katib's success/failure conditions (a GJSON subset) evaluated on Job JSON as Katib does:
a condition holds when the result is an object or a non-empty array."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.executors import LaunchError
from tuner.executors._kubernetes_conditions import Condition, UnsupportedConditionError

# Katib's defaults for batch/v1 Job (pkg/apis/controller/experiments/v1beta1/constants.go).
SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


def job(*conditions: tuple[str, str, str], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "status": {
            **status,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{t} because {r}"}
                for t, s, r in conditions
            ],
        },
    }


def test_default_conditions_on_a_running_job_hold_neither():
    running = job(active=1)
    assert Condition.parse(SUCCESS).match(running) is None
    assert Condition.parse(FAILURE).match(running) is None
    assert Condition.parse(SUCCESS).match({"metadata": {"name": "no-status-yet"}}) is None


def test_default_success_condition_returns_the_matched_condition():
    complete = job(("SuccessCriteriaMet", "True", "Done"), ("Complete", "True", "Done"))
    found = Condition.parse(SUCCESS).match(complete)
    assert found is not None and found["type"] == "Complete" and found["reason"] == "Done"
    assert Condition.parse(FAILURE).match(complete) is None


def test_a_condition_with_status_false_does_not_hold():
    # Only a condition whose status is "True" counts: the pipe filters the type's matches.
    not_yet = job(("Failed", "False", "Retrying"))
    assert Condition.parse(FAILURE).match(not_yet) is None


def test_failure_reason_and_message_come_from_the_condition():
    failed = job(
        ("FailureTarget", "True", "DeadlineExceeded"), ("Failed", "True", "DeadlineExceeded")
    )
    found = Condition.parse(FAILURE).match(failed)
    assert found == {
        "type": "Failed",
        "status": "True",
        "reason": "DeadlineExceeded",
        "message": "Failed because DeadlineExceeded",
    }


def test_first_match_query_and_indices():
    complete = job(("Complete", "True", "Done"))
    assert Condition.parse('status.conditions.#(type=="Complete")').match(complete) is not None
    assert Condition.parse("status.conditions.0").match(complete)["type"] == "Complete"
    assert Condition.parse("status.conditions.1").match(complete) is None
    assert Condition.parse('status.conditions.#(type=="Other")').match(complete) is None


def test_scalar_results_never_hold():
    # As in Katib: only objects and non-empty arrays count, so a number is not "done".
    assert Condition.parse("status.succeeded").match(job(succeeded=1)) is None
    assert Condition.parse("status").match(job()) == job()["status"]


@pytest.mark.parametrize(
    ("query", "holds"),
    [
        ("#(succeeded>=1)#", True),
        ("#(succeeded>1)#", False),
        ("#(succeeded<2)#", True),
        ("#(succeeded==1)#", True),
        ("#(succeeded!=1)#", False),
        ('#(succeeded=="1")#', False),  # a string never equals a number
        ('#(succeeded!="1")#', True),
        ("#(ready==true)#", True),
        ("#(missing!=1)#", False),  # a missing field matches no operator, "!=" included
    ],
)
def test_query_operators_compare_by_json_type(query, holds):
    doc = {"items": [{"succeeded": 1, "ready": True}]}
    assert (Condition.parse(f"items.{query}").match(doc) is not None) is holds


def test_nested_query_fields():
    doc = {"pods": [{"status": {"phase": "Running"}}, {"status": {"phase": "Succeeded"}}]}
    found = Condition.parse('pods.#(status.phase=="Succeeded")').match(doc)
    assert found == {"status": {"phase": "Succeeded"}}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('status.[@this,@that].#(phase=="Succeeded")#', "wildcards and modifiers are refused"),
        ("status.@reverse", "wildcards and modifiers are refused"),
        ("status.conditions.*", "wildcards and modifiers are refused"),
        ('status.conditions.#(type=="Complete")#.status', "use '|' to continue"),
        ("status.conditions.#(type)#", "is not 'field OP value'"),
        ("status.conditions.#(type=Complete)#", "is not 'field OP value'"),
        ("status.conditions.#(type==Complete)#", "not a JSON string"),
        ('status.conditions.#(type=="Complete"', "unterminated quote or parenthesis"),
        ("status.conditions|", "empty path"),
        ("status.", "ends with '.'"),
    ],
)
def test_unsupported_forms_are_refused_with_the_field_and_the_reason(text, fragment):
    with pytest.raises(UnsupportedConditionError) as caught:
        Condition.parse(text, "spec.trialTemplate.successCondition")
    message = str(caught.value)
    assert message.startswith(f"spec.trialTemplate.successCondition: {text!r} is not supported")
    assert fragment in message
    assert isinstance(caught.value, LaunchError)  # an experiment that cannot launch trials


@pytest.mark.parametrize(
    ("status", "expected"),
    [({"phase": "Succeeded"}, {"phase": "Succeeded"}), ({"phase": "Running"}, None), ({}, None)],
)
def test_this_wraps_the_status_as_katibs_argo_conditions_use_it(status, expected):
    condition = Condition.parse('status.[@this].#(phase=="Succeeded")#')
    assert condition.match({"status": status}) == expected
