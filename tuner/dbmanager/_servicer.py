"""The api.v1.beta1.DBManager servicer: Katib's observation-log API answered from the store."""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc

from tuner.dbmanager import _convert
from tuner.dbmanager._convert import Report, RequestError
from tuner.metrics import REPORT_ID_METADATA_KEY, STEP_METADATA_KEY
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.store import Store, StoreError, TrialNotFoundError
from tuner.tokens import TOKEN_METADATA_KEY, ReportPolicy

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Ids of recent reports, to store a retried report once; a retry comes within seconds.
_REMEMBERED_REPORT_IDS = 4096


def _rpc(method: F) -> F:
    """Abort with the status code an error maps to, keeping its message (cut: a status
    message travels in a header, which holds 16 KB at most, and a request may be huge)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        return method_with_statuses(self, request, _CuttingContext(context))

    def method_with_statuses(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except ReportRefused as e:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(e))
        except TrialNotFoundError as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except (RequestError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except StoreError as e:
            code = grpc.StatusCode.UNAVAILABLE if e.retryable else grpc.StatusCode.INTERNAL
            context.abort(code, str(e))
        except Exception as e:  # noqa: BLE001 - a bug: INTERNAL, with the exception kept
            log.exception("DBManager.%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    return wrapper  # type: ignore[return-value]


_MAX_STATUS_MESSAGE = 2000


class _CuttingContext:
    """A servicer context whose ``abort`` cuts the message to ``_MAX_STATUS_MESSAGE``."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        if len(details) > _MAX_STATUS_MESSAGE:
            details = details[:_MAX_STATUS_MESSAGE] + "..."
        self._context.abort(code, details)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class ReportRefused(Exception):
    """A report for a trial the caller has not shown to be (PERMISSION_DENIED)."""


class DBManagerServicer(api_pb2_grpc.DBManagerServicer):
    """Katib's DBManager over a :class:`Store`, for any trial the store holds.

    - ``ReportObservationLog``: values are Katib's strings and must be finite decimal
      numbers (``"0.25"``); Katib's placeholder ``"unavailable"`` is accepted and skipped;
      anything else refuses the whole request (INVALID_ARGUMENT, naming the metric and the
      value). A missing ``time_stamp`` is the time of arrival. The step of all values of a
      call is the metadata ``tuner-step`` if given, else each metric's next index among the
      trial's earlier reports (0, 1, 2...). A call with a ``tuner-report-id`` already stored is
      acknowledged without storing it again (a client's retry).
    - ``GetObservationLog``: ordered by timestamp; ``metric_name``, ``start_time`` and
      ``end_time`` (RFC 3339, inclusive) filter when not empty.
    - ``DeleteObservationLog``: removes every observation of the trial.

    An unknown trial is NOT_FOUND; a store error worth retrying is UNAVAILABLE.
    Thread-safe: gRPC calls it from many threads.

    With a ``policy`` (``tuner.tokens.ReportPolicy``), a report must carry the trial's token
    in the metadata ``tuner-trial-token``; a wrong token is PERMISSION_DENIED, and so is a
    missing one unless the policy allows tokenless reports (then only for its experiment's
    trials). Without a policy every report is accepted (an embedded DBManager).
    """

    def __init__(self, store: Store, policy: ReportPolicy | None = None) -> None:
        self.store = store
        self.policy = policy
        self._lock = threading.Lock()
        # (trial, metric) -> next step number, for reports without an explicit step; loaded
        # from the store the first time a trial reports through this servicer.
        self._next_steps: dict[str, dict[str, int]] = {}
        self._report_ids: OrderedDict[str, None] = OrderedDict()

    @_rpc
    def ReportObservationLog(
        self, request: api_pb2.ReportObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.ReportObservationLogReply:
        trial = _convert.parse_trial_name(request.trial_name)
        reports = _convert.parse_reports(request)
        metadata = dict(context.invocation_metadata() or ())
        step = _convert.parse_step(metadata.get(STEP_METADATA_KEY))
        self._authorize(trial, metadata.get(TOKEN_METADATA_KEY))
        report_id = metadata.get(REPORT_ID_METADATA_KEY)
        if report_id and not self._first_time(report_id):
            return api_pb2.ReportObservationLogReply()
        try:
            steps = self._steps(trial, reports, step)
            now = datetime.now(timezone.utc)
            self.store.add_observations(trial, _convert.observations(trial, reports, steps, now))
        except BaseException:
            with self._lock:
                self._next_steps.pop(trial, None)  # re-read from the store next time
                if report_id:
                    self._report_ids.pop(report_id, None)
            raise
        return api_pb2.ReportObservationLogReply()

    @_rpc
    def GetObservationLog(
        self, request: api_pb2.GetObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetObservationLogReply:
        found = self.store.get_observations(
            _convert.parse_trial_name(request.trial_name),
            request.metric_name or None,
            _convert.parse_time(request.start_time, "start_time"),
            _convert.parse_time(request.end_time, "end_time"),
        )
        return _convert.log_reply(found)

    @_rpc
    def DeleteObservationLog(
        self, request: api_pb2.DeleteObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.DeleteObservationLogReply:
        trial = _convert.parse_trial_name(request.trial_name)
        try:
            self.store.delete_observations(trial)
        finally:
            with self._lock:
                self._next_steps.pop(trial, None)
        return api_pb2.DeleteObservationLogReply()

    def _authorize(self, trial: str, token: str | bytes | None) -> None:
        policy = self.policy
        if policy is None:
            return
        if token:
            if isinstance(token, bytes) or not policy.is_token_of(trial, token):
                raise ReportRefused(
                    f"the report's token is not the token of trial {trial!r}: a trial may"
                    " report only its own metrics"
                )
            return
        if not policy.allow_tokenless:
            raise ReportRefused(
                f"a report for trial {trial!r} without a token: its experiment does not"
                " allow tokenless reports (annotation"
                ' tuner.kubeflow.org/allow-tokenless-reports: "true" allows them)'
            )
        if policy.experiment is not None:
            owner = self.store.get_trial(trial).experiment_name
            if owner != policy.experiment:
                raise ReportRefused(
                    f"trial {trial!r} is not a trial of experiment {policy.experiment!r},"
                    " whose DBManager this is"
                )

    def _first_time(self, report_id: str) -> bool:
        with self._lock:
            if report_id in self._report_ids:
                return False
            self._report_ids[report_id] = None
            while len(self._report_ids) > _REMEMBERED_REPORT_IDS:
                self._report_ids.popitem(last=False)
            return True

    def _steps(self, trial: str, reports: Sequence[Report], step: int | None) -> list[int | None]:
        """``step`` for each report if given, else the number of the trial's earlier reports
        of its metric (explicit steps count as reports too)."""
        with self._lock:
            counters = self._next_steps.get(trial)
        if counters is None:
            loaded: dict[str, int] = {}
            for obs in self.store.get_observations(trial):
                loaded[obs.metric_name] = loaded.get(obs.metric_name, 0) + 1
            with self._lock:
                counters = self._next_steps.setdefault(trial, loaded)
        out: list[int | None] = []
        with self._lock:
            for report in reports:
                count = counters.get(report.metric, 0)
                counters[report.metric] = count + 1
                out.append(count if step is None else step)
        return out
