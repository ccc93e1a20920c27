"""Every message and enum of ``tuner.protos`` matches Katib's ``api.v1.beta1`` schema.

The table below is written from Katib's api.proto; it also catches messages added or dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tuner.protos import api_pb2

PACKAGE = "api.v1.beta1"

# Katib's api.v1.beta1 messages: "Message: field=number type; ..." ("[]" marks repeated).
KATIB_MESSAGES = """
Experiment: name=1 string; spec=2 ExperimentSpec
ExperimentSpec: parameter_specs=1 ExperimentSpec.ParameterSpecs; objective=2 ObjectiveSpec;
    algorithm=3 AlgorithmSpec; early_stopping=4 EarlyStoppingSpec; parallel_trial_count=5 int32;
    max_trial_count=6 int32; nas_config=7 NasConfig
ExperimentSpec.ParameterSpecs: parameters=1 []ParameterSpec
ParameterSpec: name=1 string; parameter_type=2 ParameterType; feasible_space=3 FeasibleSpace
FeasibleSpace: max=1 string; min=2 string; list=3 []string; step=4 string;
    distribution=5 Distribution
ObjectiveSpec: type=1 ObjectiveType; goal=2 double; objective_metric_name=3 string;
    additional_metric_names=4 []string
AlgorithmSpec: algorithm_name=1 string; algorithm_settings=2 []AlgorithmSetting
AlgorithmSetting: name=1 string; value=2 string
EarlyStoppingSpec: algorithm_name=1 string; algorithm_settings=2 []EarlyStoppingSetting
EarlyStoppingSetting: name=1 string; value=2 string
NasConfig: graph_config=1 GraphConfig; operations=2 NasConfig.Operations
NasConfig.Operations: operation=1 []Operation
GraphConfig: num_layers=1 int32; input_sizes=2 []int32; output_sizes=3 []int32
Operation: operation_type=1 string; parameter_specs=2 Operation.ParameterSpecs
Operation.ParameterSpecs: parameters=1 []ParameterSpec
Trial: name=1 string; spec=2 TrialSpec; status=3 TrialStatus
TrialSpec: objective=2 ObjectiveSpec; parameter_assignments=3 TrialSpec.ParameterAssignments;
    labels=4 map
TrialSpec.ParameterAssignments: assignments=1 []ParameterAssignment
ParameterAssignment: name=1 string; value=2 string
TrialStatus: start_time=1 string; completion_time=2 string;
    condition=3 TrialStatus.TrialConditionType; observation=4 Observation
Observation: metrics=1 []Metric
Metric: name=1 string; value=2 string
ReportObservationLogRequest: trial_name=1 string; observation_log=2 ObservationLog
ReportObservationLogReply:
ObservationLog: metric_logs=1 []MetricLog
MetricLog: time_stamp=1 string; metric=2 Metric
GetObservationLogRequest: trial_name=1 string; metric_name=2 string; start_time=3 string;
    end_time=4 string
GetObservationLogReply: observation_log=1 ObservationLog
DeleteObservationLogRequest: trial_name=1 string
DeleteObservationLogReply:
GetSuggestionsRequest: experiment=1 Experiment; trials=2 []Trial;
    current_request_number=4 int32; total_request_number=5 int32
GetSuggestionsReply: parameter_assignments=1 []GetSuggestionsReply.ParameterAssignments;
    algorithm=2 AlgorithmSpec; early_stopping_rules=3 []EarlyStoppingRule
GetSuggestionsReply.ParameterAssignments: assignments=1 []ParameterAssignment;
    trial_name=2 string; labels=3 map
ValidateAlgorithmSettingsRequest: experiment=1 Experiment
ValidateAlgorithmSettingsReply:
GetEarlyStoppingRulesRequest: experiment=1 Experiment; trials=2 []Trial;
    db_manager_address=3 string
GetEarlyStoppingRulesReply: early_stopping_rules=1 []EarlyStoppingRule
EarlyStoppingRule: name=1 string; value=2 string; comparison=3 ComparisonType;
    start_step=4 int32
ValidateEarlyStoppingSettingsRequest: early_stopping=1 EarlyStoppingSpec
ValidateEarlyStoppingSettingsReply:
SetTrialStatusRequest: trial_name=1 string
SetTrialStatusReply:
"""

KATIB_ENUMS = {
    "ParameterType": {"UNKNOWN_TYPE": 0, "DOUBLE": 1, "INT": 2, "DISCRETE": 3, "CATEGORICAL": 4},
    "Distribution": {
        "DISTRIBUTION_UNSPECIFIED": 0,
        "UNIFORM": 1,
        "LOG_UNIFORM": 2,
        "NORMAL": 3,
        "LOG_NORMAL": 4,
    },
    "ObjectiveType": {"UNKNOWN": 0, "MINIMIZE": 1, "MAXIMIZE": 2},
    "ComparisonType": {"UNKNOWN_COMPARISON": 0, "EQUAL": 1, "LESS": 2, "GREATER": 3},
    "TrialStatus.TrialConditionType": {
        "CREATED": 0,
        "RUNNING": 1,
        "SUCCEEDED": 2,
        "KILLED": 3,
        "FAILED": 4,
        "METRICSUNAVAILABLE": 5,
        "EARLYSTOPPED": 6,
        "UNKNOWN": 7,
    },
}

SCALARS = {
    "string": FieldDescriptor.TYPE_STRING,
    "int32": FieldDescriptor.TYPE_INT32,
    "double": FieldDescriptor.TYPE_DOUBLE,
}


def katib_messages() -> dict[str, dict[str, tuple[int, str]]]:
    """Parses KATIB_MESSAGES into {message: {field: (number, type)}}."""
    joined = KATIB_MESSAGES.replace("\n    ", " ")
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for line in filter(None, joined.splitlines()):
        name, _, body = line.partition(":")
        fields: dict[str, tuple[int, str]] = {}
        for item in filter(None, (part.strip() for part in body.split(";"))):
            left, typ = item.split(" ")
            field, number = left.split("=")
            fields[field] = (int(number), typ)
        out[name] = fields
    return out


def all_messages(descriptors: Any) -> Iterator[Descriptor]:
    for d in descriptors:
        if d.GetOptions().map_entry:
            continue
        yield d
        yield from all_messages(d.nested_types)


def field_type(f: FieldDescriptor) -> str:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        assert (key.type, value.type) == (FieldDescriptor.TYPE_STRING,) * 2
        return "map"
    repeated = "[]" if f.is_repeated else ""
    named = f.message_type or f.enum_type
    if named is not None:
        return repeated + named.full_name.removeprefix(f"{PACKAGE}.")
    (scalar,) = (name for name, t in SCALARS.items() if t == f.type)
    return repeated + scalar


def test_every_message_matches_katib_field_by_field() -> None:
    expected = katib_messages()
    ours = {
        d.full_name.removeprefix(f"{PACKAGE}."): {
            f.name: (f.number, field_type(f)) for f in d.fields
        }
        for d in all_messages(api_pb2.DESCRIPTOR.message_types_by_name.values())
    }
    assert api_pb2.DESCRIPTOR.package == PACKAGE
    assert set(ours) == set(expected)
    for name, fields in expected.items():
        assert ours[name] == fields, name


def test_every_enum_matches_katib() -> None:
    ours = {
        e.full_name.removeprefix(f"{PACKAGE}."): {v.name: v.number for v in e.values}
        for e in [
            *api_pb2.DESCRIPTOR.enum_types_by_name.values(),
            *(
                e
                for d in all_messages(api_pb2.DESCRIPTOR.message_types_by_name.values())
                for e in d.enum_types
            ),
        ]
    }
    assert ours == KATIB_ENUMS
