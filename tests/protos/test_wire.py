"""Messages of ``tuner.protos`` encode exactly as Katib's ``api.v1.beta1`` on the wire.

Expected bytes come from a tiny hand-written encoder using Katib's field numbers, so they do
not depend on the generated code; both directions (serialize, parse) are checked.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tuner.protos import api_pb2

# --- a tiny protobuf encoder (wire format spec, independent of the generated code) --------

VARINT, FIXED64, LEN = 0, 1, 2


def varint(n: int) -> bytes:
    assert n >= 0
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def num(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def dbl(number: int, value: float) -> bytes:
    return tag(number, FIXED64) + struct.pack("<d", value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return tag(number, LEN) + varint(len(data)) + data


def msg(*fields: bytes) -> bytes:
    return b"".join(fields)


def kv(number: int, key: str, value: str) -> bytes:
    # A map<string, string> entry is a nested message {key = 1, value = 2}.
    return ld(number, msg(ld(1, key), ld(2, value)))


# Katib enum values used below.
DOUBLE, CATEGORICAL = 1, 4
MAXIMIZE = 2
EARLYSTOPPED = 6
LESS = 2


def pair(name: str, value: str) -> bytes:
    """ParameterAssignment / Metric / AlgorithmSetting: name = 1, value = 2."""
    return msg(ld(1, name), ld(2, value))


def objective_bytes() -> bytes:
    # ObjectiveSpec: type = 1, goal = 2 (double), objective_metric_name = 3,
    # additional_metric_names = 4.
    return msg(num(1, MAXIMIZE), dbl(2, 0.99), ld(3, "accuracy"), ld(4, "loss"))


def experiment_bytes() -> bytes:
    lr = msg(ld(1, "lr"), num(2, DOUBLE), ld(3, msg(ld(1, "0.1"), ld(2, "0.001"), ld(4, "0.01"))))
    opt = msg(ld(1, "opt"), num(2, CATEGORICAL), ld(3, msg(ld(3, "sgd"), ld(3, "adam"))))
    spec = msg(
        ld(1, msg(ld(1, lr), ld(1, opt))),  # parameter_specs.parameters
        ld(2, objective_bytes()),
        ld(3, msg(ld(1, "random"), ld(2, pair("random_state", "42")))),  # algorithm
        ld(4, msg(ld(1, "medianstop"), ld(2, pair("min_trials_required", "3")))),
        num(5, 3),  # parallel_trial_count
        num(6, 12),  # max_trial_count
    )
    return msg(ld(1, "exp"), ld(2, spec))


def trial_bytes() -> bytes:
    spec = msg(
        ld(2, objective_bytes()),
        ld(3, msg(ld(1, pair("lr", "0.01")), ld(1, pair("opt", "adam")))),
        kv(4, "team", "ml"),
    )
    status = msg(
        ld(1, "2024-01-01T00:00:00Z"),
        ld(2, "2024-01-01T00:05:00Z"),
        num(3, EARLYSTOPPED),
        ld(4, msg(ld(1, pair("accuracy", "0.9")))),  # observation.metrics
    )
    return msg(ld(1, "exp-abc"), ld(2, spec), ld(3, status))


def objective_msg() -> Any:
    return api_pb2.ObjectiveSpec(
        type=api_pb2.MAXIMIZE,
        goal=0.99,
        objective_metric_name="accuracy",
        additional_metric_names=["loss"],
    )


def experiment_msg() -> Any:
    spec = api_pb2.ExperimentSpec(
        objective=objective_msg(),
        algorithm=api_pb2.AlgorithmSpec(
            algorithm_name="random",
            algorithm_settings=[api_pb2.AlgorithmSetting(name="random_state", value="42")],
        ),
        early_stopping=api_pb2.EarlyStoppingSpec(
            algorithm_name="medianstop",
            algorithm_settings=[
                api_pb2.EarlyStoppingSetting(name="min_trials_required", value="3")
            ],
        ),
        parallel_trial_count=3,
        max_trial_count=12,
    )
    params = spec.parameter_specs.parameters
    params.add(
        name="lr",
        parameter_type=api_pb2.DOUBLE,
        feasible_space=api_pb2.FeasibleSpace(max="0.1", min="0.001", step="0.01"),
    )
    params.add(
        name="opt",
        parameter_type=api_pb2.CATEGORICAL,
        feasible_space=api_pb2.FeasibleSpace(list=["sgd", "adam"]),
    )
    return api_pb2.Experiment(name="exp", spec=spec)


def trial_msg() -> Any:
    trial = api_pb2.Trial(name="exp-abc")
    trial.spec.objective.CopyFrom(objective_msg())
    trial.spec.parameter_assignments.assignments.add(name="lr", value="0.01")
    trial.spec.parameter_assignments.assignments.add(name="opt", value="adam")
    trial.spec.labels["team"] = "ml"
    trial.status.start_time = "2024-01-01T00:00:00Z"
    trial.status.completion_time = "2024-01-01T00:05:00Z"
    trial.status.condition = api_pb2.TrialStatus.EARLYSTOPPED
    trial.status.observation.metrics.add(name="accuracy", value="0.9")
    return trial


def suggestions_request() -> tuple[Any, bytes]:
    hand = msg(ld(1, experiment_bytes()), ld(2, trial_bytes()), num(4, 2), num(5, 5))
    built = api_pb2.GetSuggestionsRequest(
        experiment=experiment_msg(),
        trials=[trial_msg()],
        current_request_number=2,
        total_request_number=5,
    )
    return built, hand


def suggestions_reply() -> tuple[Any, bytes]:
    assignments = msg(ld(1, pair("lr", "0.05")), ld(2, "exp-t1"), kv(3, "origin", "tpe"))
    rule = msg(ld(1, "accuracy"), ld(2, "0.8"), num(3, LESS), num(4, 4))
    hand = msg(ld(1, assignments), ld(2, msg(ld(1, "tpe"))), ld(3, rule))
    built = api_pb2.GetSuggestionsReply(algorithm=api_pb2.AlgorithmSpec(algorithm_name="tpe"))
    one = built.parameter_assignments.add(trial_name="exp-t1")
    one.assignments.add(name="lr", value="0.05")
    one.labels["origin"] = "tpe"
    built.early_stopping_rules.add(
        name="accuracy", value="0.8", comparison=api_pb2.LESS, start_step=4
    )
    return built, hand


def trial() -> tuple[Any, bytes]:
    return trial_msg(), trial_bytes()


def report_observation_log() -> tuple[Any, bytes]:
    log = msg(ld(1, msg(ld(1, "2024-01-01T00:01:00Z"), ld(2, pair("loss", "0.25")))))
    hand = msg(ld(1, "exp-abc"), ld(2, log))
    built = api_pb2.ReportObservationLogRequest(trial_name="exp-abc")
    built.observation_log.metric_logs.add(
        time_stamp="2024-01-01T00:01:00Z", metric=api_pb2.Metric(name="loss", value="0.25")
    )
    return built, hand


CASES = [suggestions_request, suggestions_reply, trial, report_observation_log]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_serialized_bytes_match_hand_encoding(case: Any) -> None:
    built, hand = case()
    # Each map holds one entry, so deterministic output is exactly the hand-built order.
    assert built.SerializeToString(deterministic=True) == hand


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_hand_encoding_parses_to_the_same_message(case: Any) -> None:
    built, hand = case()
    parsed = type(built).FromString(hand)
    assert parsed == built
    # A field number we do not know would survive parsing as an unknown field; dropping
    # unknown fields must therefore leave every hand-encoded byte in place.
    parsed.DiscardUnknownFields()
    assert parsed.SerializeToString(deterministic=True) == hand


def test_parsed_request_fields_land_in_katibs_places() -> None:
    _, hand = suggestions_request()
    req = api_pb2.GetSuggestionsRequest.FromString(hand)
    spec = req.experiment.spec
    assert req.experiment.name == "exp"
    assert spec.algorithm.algorithm_name == "random"
    assert [(s.name, s.value) for s in spec.algorithm.algorithm_settings] == [
        ("random_state", "42")
    ]
    assert spec.early_stopping.algorithm_name == "medianstop"
    assert (spec.parallel_trial_count, spec.max_trial_count) == (3, 12)
    assert spec.objective.type == api_pb2.MAXIMIZE and spec.objective.goal == 0.99
    assert spec.objective.objective_metric_name == "accuracy"
    lr, opt = spec.parameter_specs.parameters
    assert (lr.name, lr.parameter_type) == ("lr", api_pb2.DOUBLE)
    assert (lr.feasible_space.min, lr.feasible_space.max, lr.feasible_space.step) == (
        "0.001",
        "0.1",
        "0.01",
    )
    assert (opt.parameter_type, list(opt.feasible_space.list)) == (
        api_pb2.CATEGORICAL,
        ["sgd", "adam"],
    )
    (t,) = req.trials
    assert [(a.name, a.value) for a in t.spec.parameter_assignments.assignments] == [
        ("lr", "0.01"),
        ("opt", "adam"),
    ]
    assert dict(t.spec.labels) == {"team": "ml"}
    assert t.status.condition == api_pb2.TrialStatus.EARLYSTOPPED
    assert [(m.name, m.value) for m in t.status.observation.metrics] == [("accuracy", "0.9")]
    assert (req.current_request_number, req.total_request_number) == (2, 5)


def test_parsed_reply_fields_land_in_katibs_places() -> None:
    _, hand = suggestions_reply()
    reply = api_pb2.GetSuggestionsReply.FromString(hand)
    (one,) = reply.parameter_assignments
    assert [(a.name, a.value) for a in one.assignments] == [("lr", "0.05")]
    assert one.trial_name == "exp-t1" and dict(one.labels) == {"origin": "tpe"}
    assert reply.algorithm.algorithm_name == "tpe"
    (rule,) = reply.early_stopping_rules
    assert (rule.name, rule.value, rule.comparison, rule.start_step) == (
        "accuracy",
        "0.8",
        api_pb2.LESS,
        4,
    )
    log = api_pb2.ReportObservationLogRequest.FromString(report_observation_log()[1])
    (entry,) = log.observation_log.metric_logs
    assert (log.trial_name, entry.time_stamp, entry.metric.name, entry.metric.value) == (
        "exp-abc",
        "2024-01-01T00:01:00Z",
        "loss",
        "0.25",
    )
