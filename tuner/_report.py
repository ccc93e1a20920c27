"""``tuner.report_metrics``: a trial pushes metric values to its controller (Katib's Push
collector), over the DBManager's ``ReportObservationLog`` gRPC call."""

from __future__ import annotations

import math
import numbers
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 10.0
# How long an unreachable controller is waited for: a controller that crashed and is started
# again (a new pod, a rerun of `tuner run`) takes seconds to serve its DBManager again. The
# environment variable overrides the default for every report of a trial.
DEFAULT_RETRY_SECONDS = 60.0
RETRY_SECONDS_ENV = "TUNER_REPORT_RETRY_SECONDS"
# Delays between attempts double from the first to the last; each attempt carries the same
# report id, so a retry of a call that did arrive is not stored twice.
_FIRST_DELAY, _MAX_DELAY = 0.2, 2.0
# The channel reconnects as often as the attempts come (gRPC's default backoff grows to
# two minutes).
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

_channels: dict[tuple[int, str, bool], Any] = {}
_channels_lock = threading.Lock()
# The last value sent of each metric, so the function runner does not store a returned
# value the function already reported (tuner/api/_fn_runner.py).
_last: dict[str, float] = {}
_outside_notice_shown = False


def report_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    *,
    timestamp: datetime | float | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    retry_seconds: float | None = None,
) -> None:
    """Store metric values of the running trial, e.g. once per epoch.

    >>> import tuner
    >>> for epoch in range(10):                                    # doctest: +SKIP
    ...     loss = train_one_epoch()
    ...     tuner.report_metrics({"loss": loss}, step=epoch)

    ``metrics`` maps metric names to finite numbers (ints, floats, numpy scalars). ``step``
    (an int >= 0) is stored with every value of this report; None numbers each metric's
    reports 0, 1, 2... ``timestamp`` (an aware datetime, or seconds since the epoch; default
    now) orders the reports: the trial's value of a metric under the ``latest`` strategy is
    the one with the latest timestamp.

    Works inside a trial that tuner started: the controller sets ``KATIB_TRIAL_NAME`` and
    ``TUNER_DBMANAGER_ADDRESS`` in its environment, and ``TUNER_DBMANAGER_TLS_CA`` (with
    ``TUNER_DBMANAGER_TLS_CERT``/``_KEY`` for mutual TLS) when its DBManager serves TLS.
    Used with the experiment's collector ``Push`` (or ``None``), the objective is computed
    from these reports when the trial ends; a trial that exits 0 without reporting the
    objective is MetricsUnavailable.

    Outside a trial (``KATIB_TRIAL_NAME`` unset: an objective called directly to try it)
    nothing is stored: the values are printed on stderr, with a notice the first time.

    A controller that cannot be reached (UNAVAILABLE, or no answer within ``timeout``
    seconds) is tried again, with growing delays, for ``retry_seconds`` (default
    ``TUNER_REPORT_RETRY_SECONDS`` from the environment, else 60): long enough for a
    controller that crashed to be started again and adopt the trial. The first retry says so
    on stderr.

    Raises ``RuntimeError`` inside a trial without ``TUNER_DBMANAGER_ADDRESS``, for a TLS
    file that is missing or not PEM (naming its variable), or when the controller still
    cannot be reached after ``retry_seconds``; ``ValueError`` / ``TypeError`` for a
    malformed metric, step, timestamp or retry setting.
    """
    from tuner.metrics import DBMANAGER_ADDRESS_ENV, TRIAL_NAME_ENV

    values = _check_metrics(metrics)
    _check_step(step)
    stamp = _timestamp(timestamp)
    budget = _retry_seconds(retry_seconds)
    trial = os.environ.get(TRIAL_NAME_ENV)
    if not trial:
        _print_outside_trial(values, step)
        return
    address = _environment(DBMANAGER_ADDRESS_ENV)
    _send(trial, address, values, step, stamp, timeout, budget)
    _last.update(values)


def _retry_seconds(given: float | None) -> float:
    """``retry_seconds`` checked, or the environment's, or the default."""
    if given is None:
        raw = os.environ.get(RETRY_SECONDS_ENV)
        if raw is None or not raw.strip():
            return DEFAULT_RETRY_SECONDS
        try:
            given = float(raw)
        except ValueError:
            raise ValueError(
                f"tuner.report_metrics: {RETRY_SECONDS_ENV}={raw[:40]!r} is not a number of seconds"
            ) from None
        where = f"{RETRY_SECONDS_ENV}={raw[:40]!r}"
    else:
        if isinstance(given, bool) or not isinstance(given, numbers.Real):
            raise TypeError(
                f"tuner.report_metrics: retry_seconds must be a number, not {type(given).__name__}"
            )
        where = f"retry_seconds={given!r}"
    if not math.isfinite(given) or given < 0:
        raise ValueError(f"tuner.report_metrics: {where} must be a finite number >= 0")
    return float(given)


def last_reported() -> dict[str, float]:
    """The last value this process reported of each metric."""
    return dict(_last)


def _print_outside_trial(values: Mapping[str, float], step: int | None) -> None:
    global _outside_notice_shown
    from tuner.metrics import TRIAL_NAME_ENV

    if not _outside_notice_shown:
        _outside_notice_shown = True
        print(
            f"tuner.report_metrics: not inside a trial ({TRIAL_NAME_ENV} is not set), so"
            " nothing is stored; the values are printed here instead",
            file=sys.stderr,
        )
    shown = " ".join(f"{name}={value!r}" for name, value in values.items())
    where = "" if step is None else f" (step {step})"
    print(f"tuner.report_metrics: {shown}{where}", file=sys.stderr)


def _environment(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"tuner.report_metrics: the environment variable {name} is not set; metrics can"
            " only be reported from inside a trial started by tuner (tuner run,"
            " Experiment.run), which sets it"
        )
    return value


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(metrics, Mapping) or not metrics:
        raise TypeError(f"metrics: {metrics!r} is not a non-empty dict of name -> number")
    values = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"metrics: key {name!r} is not a non-empty metric name")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metrics[{name!r}]: {value!r} is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(
                f"metrics[{name!r}]: {number!r} is not a finite number; only finite values"
                " can be stored (a diverged run can skip the report or exit non-zero)"
            )
        values[name] = number
    return values


def _check_step(step: object) -> None:
    if step is None:
        return
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
        raise ValueError(f"step: {step!r} is not an integer >= 0")


def _timestamp(value: datetime | float | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(
                f"timestamp: {value.isoformat()} is a naive datetime; pass an aware one,"
                " e.g. datetime.now(timezone.utc)"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"timestamp: {value!r} is not a datetime or seconds since the epoch")
    return datetime.fromtimestamp(float(value), timezone.utc)


def _send(
    trial: str,
    address: str,
    values: Mapping[str, float],
    step: int | None,
    stamp: datetime,
    timeout: float,
    retry_seconds: float,
) -> None:
    # Imported on first use: `import tuner` in a training script stays cheap.
    import grpc

    from tuner.metrics import REPORT_ID_METADATA_KEY, STEP_METADATA_KEY, format_time, format_value
    from tuner.protos import api_pb2, api_pb2_grpc
    from tuner.tokens import TOKEN_METADATA_KEY, TRIAL_TOKEN_ENV

    when = format_time(stamp)
    request = api_pb2.ReportObservationLogRequest(
        trial_name=trial,
        observation_log=api_pb2.ObservationLog(
            metric_logs=[
                api_pb2.MetricLog(
                    time_stamp=when, metric=api_pb2.Metric(name=name, value=format_value(v))
                )
                for name, v in values.items()
            ]
        ),
    )
    metadata = [(REPORT_ID_METADATA_KEY, uuid.uuid4().hex)]
    # The trial's own token: the DBManager refuses reports for other trials' names.
    token = os.environ.get(TRIAL_TOKEN_ENV)
    if token:
        metadata.append((TOKEN_METADATA_KEY, token))
    if step is not None:
        metadata.append((STEP_METADATA_KEY, str(int(step))))
    from tuner.tls import DBMANAGER_TLS_CA_ENV, TLSError, trial_channel_credentials

    try:
        credentials = trial_channel_credentials()
    except TLSError as e:
        raise RuntimeError(f"tuner.report_metrics: {e}") from e
    stub = api_pb2_grpc.DBManagerStub(_channel(address, credentials, grpc))
    retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    give_up = time.monotonic() + retry_seconds
    delay = _FIRST_DELAY
    while True:
        try:
            stub.ReportObservationLog(request, timeout=timeout, metadata=metadata)
            return
        except grpc.RpcError as e:
            code = e.code()
            left = give_up - time.monotonic()
            if code in retryable and left > 0:
                if delay == _FIRST_DELAY:
                    print(
                        f"tuner.report_metrics: the DBManager at {address} is not answering"
                        f" ({code.name}); trying again for up to {retry_seconds:g}s",
                        file=sys.stderr,
                    )
                time.sleep(min(left, random.uniform(0.5, 1.0) * delay))
                delay = min(delay * 2, _MAX_DELAY)
                continue
            how = (
                f"plaintext ({DBMANAGER_TLS_CA_ENV} is not set)"
                if credentials is None
                else f"TLS trusting {DBMANAGER_TLS_CA_ENV}={os.environ[DBMANAGER_TLS_CA_ENV]}"
            )
            raise RuntimeError(
                f"tuner.report_metrics: trial {trial!r} could not report to the DBManager at"
                f" {address}: {code.name}: {e.details()} (over {how})"
            ) from e


def _channel(address: str, credentials: Any, grpc: Any) -> Any:
    # One channel per process and address, reused by every report; keyed by pid because a
    # gRPC channel must not be used across fork().
    key = (os.getpid(), address, credentials is not None)
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            channel = _channels[key] = (
                grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
                if credentials is None
                else grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
            )
        return channel
