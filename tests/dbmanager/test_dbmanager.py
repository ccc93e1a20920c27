"""The DBManager service over real gRPC, backed by a SQLite store: report, read with filters,
delete, steps, and the status codes of malformed requests and unknown trials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tuner.dbmanager import SERVICE_NAME
from tuner.protos import api_pb2

T0 = "2024-05-01T12:00:0{}Z"


def report(
    served: Any,
    trial: str,
    entries: Sequence[tuple[str, str, str]],
    metadata: Sequence[tuple[str, str]] = (),
) -> None:
    """ReportObservationLog of (metric, value, time_stamp) entries."""
    served.stub.ReportObservationLog(
        api_pb2.ReportObservationLogRequest(
            trial_name=trial,
            observation_log=api_pb2.ObservationLog(
                metric_logs=[
                    api_pb2.MetricLog(time_stamp=t, metric=api_pb2.Metric(name=m, value=v))
                    for m, v, t in entries
                ]
            ),
        ),
        metadata=list(metadata),
        timeout=10,
    )


def read(served: Any, trial: str, **filters: str) -> list[tuple[str, str, str]]:
    reply = served.stub.GetObservationLog(
        api_pb2.GetObservationLogRequest(trial_name=trial, **filters), timeout=10
    )
    return [
        (m.metric.name, m.metric.value, m.time_stamp) for m in reply.observation_log.metric_logs
    ]


def status_of(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_reported_values_are_stored_and_read_back_in_time_order(served: Any) -> None:
    report(served, "exp-a", [("loss", "0.5", T0.format(2)), ("acc", "0.7", T0.format(2))])
    report(served, "exp-a", [("loss", "0.75", T0.format(1))])

    assert read(served, "exp-a") == [
        ("loss", "0.75", "2024-05-01T12:00:01.000000Z"),
        ("loss", "0.5", "2024-05-01T12:00:02.000000Z"),
        ("acc", "0.7", "2024-05-01T12:00:02.000000Z"),
    ]
    stored = served.store.get_observations("exp-a", "loss")
    assert [(o.value, o.step) for o in stored] == [(0.75, 1), (0.5, 0)]
    assert read(served, "exp-b") == []


def test_get_filters_by_metric_and_inclusive_time_range(served: Any) -> None:
    report(served, "exp-a", [("loss", str(i), T0.format(i)) for i in range(5)])
    report(served, "exp-a", [("acc", "9", T0.format(2))])

    assert [v for _, v, _ in read(served, "exp-a", metric_name="loss")] == [
        "0.0",
        "1.0",
        "2.0",
        "3.0",
        "4.0",
    ]
    window = read(served, "exp-a", start_time=T0.format(1), end_time=T0.format(3))
    assert [(m, v) for m, v, _ in window] == [
        ("loss", "1.0"),
        ("loss", "2.0"),
        ("acc", "9.0"),
        ("loss", "3.0"),
    ]
    assert [v for _, v, _ in read(served, "exp-a", start_time=T0.format(4))] == ["4.0"]
    assert [v for _, v, _ in read(served, "exp-a", end_time="2024-05-01T12:00:00Z")] == ["0.0"]


def test_steps_come_from_metadata_or_count_each_metrics_reports(served: Any) -> None:
    for _ in range(3):
        report(served, "exp-a", [("loss", "1", ""), ("acc", "2", "")])
    report(served, "exp-a", [("loss", "1", "")], metadata=[("tuner-step", "40")])

    steps = [(o.metric_name, o.step) for o in served.store.get_observations("exp-a")]
    assert sorted(steps) == sorted(
        [("loss", 0), ("acc", 0), ("loss", 1), ("acc", 1), ("loss", 2), ("acc", 2), ("loss", 40)]
    )


def test_steps_are_sent_back_in_the_trailing_metadata_when_asked(served: Any) -> None:
    report(served, "exp-a", [("loss", "1", T0.format(1))], metadata=[("tuner-step", "10")])
    report(served, "exp-a", [("loss", "2", T0.format(2))], metadata=[("tuner-step", "20")])
    request = api_pb2.GetObservationLogRequest(trial_name="exp-a", metric_name="loss")

    _, asked = served.stub.GetObservationLog.with_call(
        request, metadata=[("tuner-with-steps", "true")], timeout=10
    )
    _, plain = served.stub.GetObservationLog.with_call(request, timeout=10)

    assert dict(asked.trailing_metadata())["tuner-steps"] == "10,20"
    assert "tuner-steps" not in dict(plain.trailing_metadata() or ())  # Katib's clients


def test_a_retried_report_id_is_stored_once(served: Any) -> None:
    for _ in range(2):
        report(served, "exp-a", [("loss", "1", "")], metadata=[("tuner-report-id", "r1")])
    report(served, "exp-a", [("loss", "2", "")], metadata=[("tuner-report-id", "r2")])

    assert [o.value for o in served.store.get_observations("exp-a")] == [1.0, 2.0]


def test_katibs_unavailable_placeholder_is_accepted_and_not_stored(served: Any) -> None:
    report(served, "exp-a", [("loss", "unavailable", T0.format(1)), ("acc", "0.5", T0.format(1))])

    assert [(o.metric_name, o.value) for o in served.store.get_observations("exp-a")] == [
        ("acc", 0.5)
    ]


@pytest.mark.parametrize("value", ["abc", "nan", "inf", ""])
def test_a_value_that_is_not_a_finite_number_refuses_the_whole_report(
    served: Any, value: str
) -> None:
    error = status_of(lambda: report(served, "exp-a", [("acc", "0.5", ""), ("loss", value, "")]))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metric_logs[1].metric.value" in error.details()
    assert f"{value!r} for metric 'loss'" in error.details()
    assert served.store.get_observations("exp-a") == []


def test_malformed_timestamps_and_steps_are_invalid_arguments(served: Any) -> None:
    bad_time = status_of(lambda: report(served, "exp-a", [("loss", "1", "yesterday")]))
    bad_filter = status_of(lambda: read(served, "exp-a", start_time="2024-13-01"))
    bad_step = status_of(
        lambda: report(served, "exp-a", [("loss", "1", "")], metadata=[("tuner-step", "-1")])
    )

    assert bad_time.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metric_logs[0].time_stamp: 'yesterday'" in bad_time.details()
    assert bad_filter.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in bad_filter.details()
    assert bad_step.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tuner-step" in bad_step.details()


def test_unknown_trials_are_not_found_for_every_method(served: Any) -> None:
    calls = [
        lambda: report(served, "nope", [("loss", "1", "")]),
        lambda: read(served, "nope"),
        lambda: served.stub.DeleteObservationLog(
            api_pb2.DeleteObservationLogRequest(trial_name="nope"), timeout=10
        ),
    ]
    for call in calls:
        error = status_of(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "'nope'" in error.details()


def test_delete_removes_the_trials_log_and_restarts_its_step_count(served: Any) -> None:
    report(served, "exp-a", [("loss", "1", ""), ("loss", "2", "")])
    report(served, "exp-b", [("loss", "3", "")])

    served.stub.DeleteObservationLog(
        api_pb2.DeleteObservationLogRequest(trial_name="exp-a"), timeout=10
    )
    report(served, "exp-a", [("loss", "4", "")])

    assert [(o.value, o.step) for o in served.store.get_observations("exp-a")] == [(4.0, 0)]
    assert [o.value for o in served.store.get_observations("exp-b")] == [3.0]


def test_health_reports_serving_for_the_dbmanager(served: Any) -> None:
    with grpc.insecure_channel(served.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)

    assert SERVICE_NAME == "api.v1.beta1.DBManager"
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
