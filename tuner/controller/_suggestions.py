"""gRPC client of the Suggestion service: deadlines, retries with backoff, typed errors.

It takes and returns domain objects (the spec model, stored trials, `StoppingRule`s) and
converts them with `_wire` itself, so protobuf stays here. Requests are pure functions of
the experiment and its trials (the service is restart-safe), so repeating one after
UNAVAILABLE or a missed deadline is always safe: trial rows are created only from a reply
that arrived.
"""

from __future__ import annotations

import itertools
import logging
import operator
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc

from tuner.controller._decide import merge_settings
from tuner.controller._errors import InvalidSettingsError, SuggestionError
from tuner.controller._rules import EarlyStoppingAnswer
from tuner.controller._wire import Messages, parse_rules, parse_stops
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.space import OBJECTIVES_METADATA
from tuner.spec import Experiment
from tuner.store import TrialRecord

log = logging.getLogger(__name__)

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Trailing metadata our suggestion server sets on a reply cut short by exhaustion (a Katib
# service signals it only by the shorter reply, which is read the same way).
_EXHAUSTED_KEY = "tuner-search-exhausted"
# Trailing metadata of our EarlyStopping service for per-trial algorithms (asha): the running
# trials to stop (JSON: name -> why), and "call again whenever a running trial reports".
_STOP_TRIALS_KEY = "tuner-stop-trials"
_LIVE_KEY = "tuner-early-stopping-live"
# Incremental GetSuggestions (suggestion/README.md, "Incremental requests"): the request
# metadata offers deltas ("offer") or names the epoch a delta builds on, with the number of
# trials in all; the server answers with the epoch and the number it holds, or refuses a
# delta it cannot apply with FAILED_PRECONDITION and "resend: full". Katib's services send no
# epoch back, so they always get full requests.
_DELTA_KEY = "tuner-trials-delta"
_COUNT_KEY = "tuner-trials-count"
_EPOCH_KEY = "tuner-trials-epoch"
_RESEND_KEY = "tuner-trials-resend"
_OFFER = "offer"
# While retrying, say so at once and then this often.
_TELL_EVERY_SECONDS = 10.0


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a total time budget."""

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0
    budget: float = 60.0

    def delays(self) -> list[float]:
        """The capped backoff ceilings, in order, whose sum stays within ``budget``."""
        out: list[float] = []
        delay, spent = self.initial, 0.0
        while spent + delay <= self.budget:
            out.append(delay)
            spent += delay
            delay = min(self.maximum, delay * self.multiplier)
        return out


class _ResendFull(Exception):
    """The server refused a delta request: it does not hold the trials the delta builds on."""


@dataclass
class _Sent:
    """What the server holds of one experiment's trials under ``epoch``: each trial's record
    as last sent in a request that was answered (the controller replaces a record when its
    trial changes, so a record that is not the one sent is a change to send)."""

    experiment: str
    epoch: str
    records: dict[str, TrialRecord]
    order: list[TrialRecord]
    """The trials of the last answered request, in its order."""

    def changed(self, trials: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The records of ``trials`` that are not the ones sent. The controller keeps its
        trials in one order and appends, so a record that is the one in its place last
        time is skipped by a comparison in C; only the others are looked up by name."""
        candidates = [
            *itertools.compress(trials, map(operator.is_not, trials, self.order)),
            *trials[len(self.order) :],
        ]
        return [r for r in candidates if self.records.get(r.name) is not r]

    def update(self, changed: Sequence[TrialRecord], trials: Sequence[TrialRecord]) -> None:
        """The server answered a request of ``trials`` with the ``changed`` ones."""
        self.records.update((r.name, r) for r in changed)
        self.order = list(trials)


@dataclass(frozen=True)
class Suggestions:
    """One reply: wire assignments (name -> string value) and whether the space is used up.

    ``exhausted`` is True when the service says no more points will come: our server says
    so in the trailing metadata ``tuner-search-exhausted: true``; a Katib service by a reply
    shorter than requested, unless the reply carries algorithm settings (Katib's hyperband
    returns fewer while it promotes the best of a rung, and nothing with no settings at
    the end). ``names`` holds the trial names the service proposed (Katib allows it), else
    ""; ``labels`` the labels it asked to put on each trial (pbt: generation and parent).
    ``algorithm_settings`` are the settings the reply returned (``reply.algorithm``), None
    when it returned none.
    """

    assignments: list[dict[str, str]]
    exhausted: bool
    names: list[str] = field(default_factory=list)
    algorithm_settings: tuple[tuple[str, str], ...] | None = None
    labels: list[dict[str, str]] = field(default_factory=list)


class SuggestionClient:
    """A connection to one Suggestion service address (``HOST:PORT``).

    Thread-compatible: use one client per thread or guard calls (it keeps the messages of
    the last request, to convert only what changed, see `_wire.Messages`). Every call carries a
    deadline; UNAVAILABLE and DEADLINE_EXCEEDED are retried with backoff until the retry
    budget is spent, then raised as `SuggestionError` with ``retryable=True``. An exception
    that an interceptor raises (not an RPC error) is not retried and reaches the caller as is.

    GetSuggestions offers the server incremental requests (suggestion/README.md,
    "Incremental requests"); once tuner's server accepts, a request carries only the trials
    that are new or changed since the last one it answered (a Katib service never accepts
    and gets every trial). ``incremental=False``: never offer.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
        credentials: grpc.ChannelCredentials | None = None,
        incremental: bool = True,
    ) -> None:
        self.address = address
        self.incremental = incremental
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._messages = Messages()
        self._sent: _Sent | None = None
        options = [
            # gRPC's own reconnect backoff (1 s growing to 120 s) would outlast our retry
            # budget; keep reconnection attempts as frequent as our retries.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", int(self._retry.maximum * 1000)),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
        # TLS when given credentials (tuner.tls.channel_credentials), else plaintext.
        channel = (
            grpc.insecure_channel(address, options=options)
            if credentials is None
            else grpc.secure_channel(address, credentials, options=options)
        )
        # Interceptors see every call attempt (retries included): e.g. service mode's timing.
        self._channel = grpc.intercept_channel(channel, *interceptors) if interceptors else channel
        self._stub = api_pb2_grpc.SuggestionStub(self._channel)
        # Katib runs early stopping as its own service; ours shares the suggestion server.
        self._early_stopping = api_pb2_grpc.EarlyStoppingStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SuggestionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def validate(self, experiment: Experiment) -> None:
        """ValidateAlgorithmSettings; `InvalidSettingsError` carries the service's own message.
        A multi-objective experiment is refused unless the service says it read every
        objective (tuner's does; a Katib suggestion image optimises the first one only)."""
        request = api_pb2.ValidateAlgorithmSettingsRequest(
            experiment=self._messages.experiment(experiment)
        )
        _, call = self._call(
            "ValidateAlgorithmSettings", self._stub.ValidateAlgorithmSettings.with_call, request
        )
        objectives = experiment.spec.objective.objectives
        if len(objectives) > 1:
            read = dict(call.trailing_metadata() or ()).get(OBJECTIVES_METADATA)
            if read != str(len(objectives)):
                raise InvalidSettingsError(
                    f"spec.objective.additionalObjectives: the experiment has {len(objectives)}"
                    f" objectives and the suggestion service at {self.address} does not serve"
                    " several (it is not tuner's suggestion server: a Katib suggestion service"
                    f" optimises {objectives[0][0]!r} only); run it with tuner's own suggestion"
                    " server (omit --suggestion-address, or point it at `tuner"
                    " suggestion-server`), or drop additionalObjectives"
                )

    def suggest(
        self,
        experiment: Experiment,
        trials: Sequence[TrialRecord],
        count: int,
        total: int,
        algorithm_settings: Sequence[tuple[str, str]] = (),
    ) -> Suggestions:
        """GetSuggestions for ``count`` new assignments, given the experiment's ``trials``;
        ``total``: requested so far, these included. ``algorithm_settings``: what the service
        returned before, sent overriding the spec's settings of the same name (as Katib's
        controller does with its Suggestion's status)."""
        message = self._messages.experiment(experiment)
        if algorithm_settings:
            spec_settings = [(s.name, s.value) for s in message.spec.algorithm.algorithm_settings]
            message = api_pb2.Experiment()
            message.CopyFrom(self._messages.experiment(experiment))
            del message.spec.algorithm.algorithm_settings[:]
            message.spec.algorithm.algorithm_settings.extend(
                api_pb2.AlgorithmSetting(name=name, value=value)
                for name, value in merge_settings(spec_settings, algorithm_settings)
            )
        reply, call = self._get_suggestions(experiment, message, trials, count, total)
        flagged = any(
            key == _EXHAUSTED_KEY and value == "true"
            for key, value in (call.trailing_metadata() or ())
        )
        assignments = [
            {a.name: a.value for a in pa.assignments} for pa in reply.parameter_assignments
        ]
        if len(assignments) > count:
            raise SuggestionError(
                f"suggestion service at {self.address} returned {len(assignments)} assignments "
                f"for a request of {count}",
                code="INTERNAL",
            )
        names = [pa.trial_name for pa in reply.parameter_assignments]
        returned = (
            tuple((s.name, s.value) for s in reply.algorithm.algorithm_settings)
            if reply.HasField("algorithm")
            else None
        )
        short = len(assignments) < count
        labels = [dict(pa.labels) for pa in reply.parameter_assignments]
        return Suggestions(
            assignments,
            exhausted=flagged or (short and returned is None),
            names=names,
            algorithm_settings=returned,
            labels=labels,
        )

    def _get_suggestions(
        self,
        experiment: Experiment,
        message: api_pb2.Experiment,
        trials: Sequence[TrialRecord],
        count: int,
        total: int,
    ):  # noqa: ANN202
        """GetSuggestions with only the new or changed trials when the server holds the
        others (it said so with an epoch), else with every trial and the offer of deltas;
        a refused delta is sent again in full."""
        name = experiment.metadata.name
        sent = self._sent if self._sent is not None and self._sent.experiment == name else None
        if sent is not None:
            changed = sent.changed(trials)
            request = api_pb2.GetSuggestionsRequest(
                experiment=message,
                trials=self._messages.trials(experiment, changed, keep=False),
                current_request_number=count,
                total_request_number=total,
            )
            metadata = ((_DELTA_KEY, sent.epoch), (_COUNT_KEY, str(len(trials))))
            try:
                reply, call = self._call(
                    "GetSuggestions", self._stub.GetSuggestions.with_call, request, metadata
                )
            except _ResendFull:
                log.info("experiment %s: the suggestion service asks for all trials", name)
                self._sent = sent = None
            else:
                epoch = _metadata(call, _EPOCH_KEY)
                if epoch is None:
                    self._sent = None
                else:
                    sent.epoch = epoch
                    sent.update(changed, trials)
                return reply, call
        request = api_pb2.GetSuggestionsRequest(
            experiment=message,
            trials=self._messages.trials(experiment, trials),
            current_request_number=count,
            total_request_number=total,
        )
        reply, call = self._call(
            "GetSuggestions",
            self._stub.GetSuggestions.with_call,
            request,
            ((_DELTA_KEY, _OFFER),) if self.incremental else None,
        )
        epoch = _metadata(call, _EPOCH_KEY)
        self._sent = (
            None if epoch is None else _Sent(name, epoch, {r.name: r for r in trials}, list(trials))
        )
        return reply, call

    def validate_early_stopping(self, experiment: Experiment) -> None:
        """ValidateEarlyStoppingSettings of ``spec.earlyStopping``; `InvalidSettingsError`
        carries the service's message."""
        request = api_pb2.ValidateEarlyStoppingSettingsRequest(
            early_stopping=self._messages.experiment(experiment).spec.early_stopping
        )
        self._call(
            "ValidateEarlyStoppingSettings",
            self._early_stopping.ValidateEarlyStoppingSettings,
            request,
        )

    def early_stopping_rules(
        self,
        experiment: Experiment,
        trials: Sequence[TrialRecord],
        db_manager_address: str,
    ) -> EarlyStoppingAnswer:
        """GetEarlyStoppingRules: the rules running trials are checked against now (those
        tuner cannot apply left out with a warning, see `_wire.parse_rules`), and the trials
        a per-trial algorithm says to stop."""
        request = api_pb2.GetEarlyStoppingRulesRequest(
            experiment=self._messages.experiment(experiment),
            trials=self._messages.trials(experiment, trials),
            db_manager_address=db_manager_address,
        )
        reply, call = self._call(
            "GetEarlyStoppingRules", self._early_stopping.GetEarlyStoppingRules.with_call, request
        )
        metadata = dict(call.trailing_metadata() or ())
        return EarlyStoppingAnswer(
            parse_rules(reply.early_stopping_rules),
            parse_stops(metadata.get(_STOP_TRIALS_KEY)),
            live=metadata.get(_LIVE_KEY) == "true",
        )

    def set_trial_status(self, trial_name: str) -> None:
        """SetTrialStatus: tells the early-stopping service that a trial was stopped."""
        request = api_pb2.SetTrialStatusRequest(trial_name=trial_name)
        self._call("SetTrialStatus", self._early_stopping.SetTrialStatus, request)

    def _call(  # noqa: ANN202
        self,
        method: str,
        rpc: Callable,
        request: object,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ):
        delays: Iterator[float] | None = None  # made on the first failure: most calls have none
        retrying_since: float | None = None
        told = 0.0
        extra = {} if metadata is None else {"metadata": metadata}
        while True:
            try:
                return rpc(request, timeout=self._timeout, **extra)
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
                details = (e.details() if hasattr(e, "details") else None) or str(e)
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise InvalidSettingsError(details) from e
                if (
                    code == grpc.StatusCode.FAILED_PRECONDITION
                    and metadata is not None
                    and _metadata(e, _RESEND_KEY) == "full"
                ):
                    raise _ResendFull(details) from e
                if delays is None:
                    delays = iter(self._retry.delays())
                delay = next(delays, None) if code in _RETRYABLE else None
                if delay is None:
                    raise SuggestionError(
                        f"{method} at {self.address} failed: {code.name}: {details}",
                        code=code.name,
                        retryable=code in _RETRYABLE,
                    ) from e
                now = time.monotonic()
                if retrying_since is None or now - told >= _TELL_EVERY_SECONDS:
                    # A warning, so that the user sees why nothing happens (default level).
                    waited = 0.0 if retrying_since is None else now - retrying_since
                    log.warning(
                        "suggestion service at %s: %s %s (%s); retrying for up to %.0f s more",
                        self.address,
                        method,
                        "unreachable" if code == grpc.StatusCode.UNAVAILABLE else "timed out",
                        _cut(details),
                        max(0.0, self._retry.budget - waited),
                    )
                    retrying_since = now if retrying_since is None else retrying_since
                    told = now
                else:
                    log.info(
                        "%s at %s: %s, retrying in <= %.2fs", method, self.address, code.name, delay
                    )
                self._sleep(random.uniform(delay / 2, delay))


def _metadata(call: object, key: str) -> str | None:
    """The value of trailing metadata ``key`` of a call or an RPC error, None without it."""
    trailing = getattr(call, "trailing_metadata", None)
    for k, value in (trailing() if trailing is not None else None) or ():
        if k == key:
            return value
    return None
