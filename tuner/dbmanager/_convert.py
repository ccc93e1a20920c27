"""The DBManager's protobuf conversions: Katib's wire strings parsed once, into store values,
and stored observations back into ``api.v1.beta1`` messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tuner.errors import TunerError
from tuner.metrics import format_time, format_value, parse_number, parse_rfc3339
from tuner.protos import api_pb2
from tuner.store import Observation

UNAVAILABLE_VALUE = "unavailable"
"""Katib's placeholder (``consts.UnavailableMetricValue``) that its collectors report for an
objective metric they did not find; it carries no value, so it is accepted and not stored."""


class RequestError(TunerError, ValueError):
    """A request field is malformed; the message names the field, the value and the rule."""


@dataclass(frozen=True)
class Report:
    """One metric value of a ReportObservationLog request; ``timestamp`` None: not given."""

    metric: str
    value: float
    timestamp: datetime | None


def parse_trial_name(name: str) -> str:
    if not name:
        raise RequestError("trial_name: required; name the trial whose log this is")
    return name


def parse_reports(request: api_pb2.ReportObservationLogRequest) -> list[Report]:
    """The request's metric values; refuses the whole request if one of them is malformed."""
    reports = []
    for i, log in enumerate(request.observation_log.metric_logs):
        where = f"observation_log.metric_logs[{i}]"
        name, text = log.metric.name, log.metric.value
        if not name:
            raise RequestError(f"{where}.metric.name: required")
        if text.strip().lower() == UNAVAILABLE_VALUE:
            continue
        value = parse_number(text)
        if value is None:
            raise RequestError(
                f"{where}.metric.value: {text!r} for metric {name!r} is not a finite decimal"
                f" number (e.g. '0.25'); report numbers only"
            )
        reports.append(Report(name, value, parse_time(log.time_stamp, f"{where}.time_stamp")))
    return reports


def parse_time(text: str, field: str) -> datetime | None:
    """An RFC 3339 timestamp; None for ``""`` (not given)."""
    if not text:
        return None
    moment = parse_rfc3339(text)
    if moment is None:
        raise RequestError(
            f"{field}: {text!r} is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)"
        )
    return moment


def parse_step(text: str | None) -> int | None:
    """The ``tuner-step`` metadata value: a non-negative integer, or None when absent."""
    if text is None:
        return None
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step < 0:
        raise RequestError(f"metadata tuner-step: {text!r} is not a non-negative integer")
    return step


def observations(
    trial: str,
    reports: Sequence[Report],
    steps: Sequence[int | None],
    now: datetime,
) -> list[Observation]:
    """The store's observations of ``reports``; those without a timestamp get ``now``."""
    return [
        Observation(trial, r.metric, r.value, step, r.timestamp or now)
        for r, step in zip(reports, steps, strict=True)
    ]


def log_reply(found: Iterable[Observation]) -> api_pb2.GetObservationLogReply:
    reply = api_pb2.GetObservationLogReply()
    logs = reply.observation_log.metric_logs
    for obs in found:
        logs.add(
            time_stamp=format_time(obs.timestamp),
            metric=api_pb2.Metric(name=obs.metric_name, value=format_value(obs.value)),
        )
    return reply
