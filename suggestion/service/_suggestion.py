"""The api.v1.beta1.Suggestion servicer: protobuf in, engine call, protobuf out."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from suggestion.service import _convert
from suggestion.service._deltas import (
    COUNT_KEY,
    DELTA_KEY,
    EPOCH_KEY,
    HELD_KEY,
    RESEND_KEY,
    ResendFullError,
    TrialLedger,
)
from suggestion.service._errors import BusyError, rpc
from suggestion.service._sessions import (
    SuggestionEngine,
    SuggestionRequest,
    request_space,
    validate,
)
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.space import OBJECTIVES_METADATA, Direction, SearchSpace

EXHAUSTED_METADATA = ("tuner-search-exhausted", "true")
"""Trailing metadata on a reply that holds fewer points than requested."""

MAX_CALLS_PER_EXPERIMENT = 8
"""GetSuggestions calls for one experiment in flight at once (running or waiting)."""


class Admission:
    """Bounds the GetSuggestions calls in flight per experiment (and optionally in all).

    Calls for one experiment run one at a time, so the others wait holding a server
    thread; without a bound one experiment's callers could take every thread and leave
    health checks and other experiments unanswered. Beyond a bound a call is refused at
    once with RESOURCE_EXHAUSTED. There is no bound in all by default: a controller sends
    one call per experiment at a time, and Katib's and ours treat RESOURCE_EXHAUSTED as a
    failure, so many experiments rather queue for a thread (each call's work is bounded by
    the request cap and stops when its caller gives up). Thread-safe.
    """

    def __init__(
        self,
        max_calls: int | None = None,
        max_per_experiment: int = MAX_CALLS_PER_EXPERIMENT,
    ) -> None:
        self.max_calls = max(1, max_calls) if max_calls is not None else None
        self.max_per_experiment = max(1, max_per_experiment)
        self._lock = threading.Lock()
        self._by_experiment: Counter[str] = Counter()
        self._total = 0

    @property
    def in_flight(self) -> int:
        return self._total

    @contextmanager
    def enter(self, experiment: str) -> Iterator[None]:
        with self._lock:
            if self._by_experiment[experiment] >= self.max_per_experiment:
                raise BusyError(
                    f"experiment {experiment!r} already has {self.max_per_experiment}"
                    " GetSuggestions calls in flight; retry when one has answered"
                )
            if self.max_calls is not None and self._total >= self.max_calls:
                raise BusyError(
                    f"the server already serves {self.max_calls} GetSuggestions calls; retry later"
                )
            self._by_experiment[experiment] += 1
            self._total += 1
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                self._by_experiment[experiment] -= 1
                if self._by_experiment[experiment] <= 0:
                    del self._by_experiment[experiment]


@dataclass(frozen=True)
class ReceivedRequest:
    """A `GetSuggestionsRequest` as the server received it: parsed, and its bytes, from
    which the trials are read (`_convert.received_trial_bytes`) instead of serialising the
    parsed request again."""

    request: api_pb2.GetSuggestionsRequest
    data: bytes

    @classmethod
    def parse(cls, data: bytes) -> ReceivedRequest:
        """The deserializer: protobuf's parse, whose errors gRPC reports as before."""
        return cls(api_pb2.GetSuggestionsRequest.FromString(data), data)


READ_EXPERIMENTS = 256
"""Experiments whose reading a servicer remembers; beyond it it starts over."""


@dataclass(frozen=True)
class ReadExperiment:
    """What the servicer reads from a request's experiment; the same for the same bytes."""

    algorithm: str
    settings: tuple[tuple[str, str], ...]
    space: SearchSpace
    """The space the request's trials are checked against (`request_space`)."""
    objectives: tuple[tuple[str, Direction], ...]
    goal: Direction

    @classmethod
    def of(cls, experiment: api_pb2.Experiment) -> ReadExperiment:
        """Raises the `RequestError`s and algorithm errors of reading it, in this order."""
        name, settings = _convert.algorithm(experiment)
        space = _convert.search_space(experiment)
        trial_space = request_space(name, settings, space)
        objectives = _convert.objectives(experiment)
        return cls(name, settings, trial_space, objectives, _convert.goal(experiment))


def add_suggestion_servicer(servicer: SuggestionServicer, server: grpc.Server) -> None:
    """`api_pb2_grpc.add_SuggestionServicer_to_server`, with GetSuggestions given the
    request's bytes beside the parsed request (`ReceivedRequest`)."""
    handlers = {
        "GetSuggestions": grpc.unary_unary_rpc_method_handler(
            servicer.GetSuggestions,
            request_deserializer=ReceivedRequest.parse,
            response_serializer=api_pb2.GetSuggestionsReply.SerializeToString,
        ),
        "ValidateAlgorithmSettings": grpc.unary_unary_rpc_method_handler(
            servicer.ValidateAlgorithmSettings,
            request_deserializer=api_pb2.ValidateAlgorithmSettingsRequest.FromString,
            response_serializer=api_pb2.ValidateAlgorithmSettingsReply.SerializeToString,
        ),
    }
    service = api_pb2.DESCRIPTOR.services_by_name["Suggestion"].full_name  # as generated
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


class SuggestionServicer(api_pb2_grpc.SuggestionServicer):
    """Hosts every registered algorithm for many experiments, chosen per request by
    ``experiment.spec.algorithm.algorithm_name``.

    A call stops computing once its client cancels it or its deadline passes (CANCELLED).
    """

    def __init__(self, engine: SuggestionEngine, admission: Admission | None = None) -> None:
        self.engine = engine
        self.admission = admission or Admission()
        # experiment -> its trial decoder (warm calls decode only new or changed trials) and
        # the trials a client that sends deltas last sent (suggestion/README.md)
        # The engine, not the servicer: a lambda over self would be a reference cycle.
        self.ledger = TrialLedger(lambda: engine.max_experiments)
        # serialised experiment -> what it says (dict operations are atomic: thread-safe)
        self._experiments: dict[bytes, ReadExperiment] = {}

    @rpc()
    def GetSuggestions(
        self,
        request: api_pb2.GetSuggestionsRequest | ReceivedRequest,
        context: grpc.ServicerContext,
    ) -> api_pb2.GetSuggestionsReply:
        data: bytes | None = None
        if isinstance(request, ReceivedRequest):
            request, data = request.request, request.data
        experiment = request.experiment
        with self.admission.enter(experiment.name):
            read = self._read(experiment)
            name, settings, trial_space, objectives = (
                read.algorithm,
                read.settings,
                read.space,
                read.objectives,
            )
            count = _convert.count(request)
            # Refuse before decoding thousands of trials for a call that cannot run.
            _convert.check_count(count, self.engine.max_count)

            metadata = dict(context.invocation_metadata() or ())
            try:
                trials, epoch = self.ledger.trials(
                    experiment.name,
                    trial_space,
                    tuple(metric for metric, _ in objectives),
                    _convert.trial_bytes(request)
                    if data is None
                    else _convert.received_trial_bytes(data),
                    metadata.get(DELTA_KEY),
                    metadata.get(COUNT_KEY),
                )
            except ResendFullError:
                context.set_trailing_metadata(((RESEND_KEY, "full"),))
                raise

            def should_stop() -> bool:
                remaining = context.time_remaining()
                return not context.is_active() or (remaining is not None and remaining <= 0)

            result = self.engine.suggest(
                SuggestionRequest(
                    experiment=experiment.name,
                    algorithm=name,
                    settings=settings,
                    space=trial_space,
                    goal=read.goal,
                    goals=tuple(direction for _, direction in objectives),
                    trials=trials,
                    count=count,
                    should_stop=should_stop,
                )
            )
        trailing = []
        if result.exhausted:
            trailing.append(EXHAUSTED_METADATA)
        if epoch is not None:
            trailing += [(EPOCH_KEY, epoch), (HELD_KEY, str(len(trials)))]
        if trailing:
            context.set_trailing_metadata(tuple(trailing))
        return _convert.suggestions_reply(
            result.assignments, trial_space, result.state, result.labels
        )

    def _read(self, experiment: api_pb2.Experiment) -> ReadExperiment:
        """What a request's experiment says (`ReadExperiment.of`), remembered by its bytes:
        a controller sends the same experiment in every call of a run, and reading its
        search space again costs more than the rest of a small request."""
        key = experiment.SerializeToString(deterministic=True)
        read = self._experiments.get(key)
        if read is None:
            read = ReadExperiment.of(experiment)  # raises before anything is remembered
            if len(self._experiments) >= READ_EXPERIMENTS:
                self._experiments.clear()
            self._experiments[key] = read
        return read

    @rpc(unknown_algorithm=grpc.StatusCode.INVALID_ARGUMENT)
    def ValidateAlgorithmSettings(
        self, request: api_pb2.ValidateAlgorithmSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateAlgorithmSettingsReply:
        name, settings = _convert.algorithm(request.experiment)
        count = _convert.objective_count(request.experiment)
        validate(
            name,
            settings,
            _convert.search_space(request.experiment),
            request.experiment.spec.parallel_trial_count,
            count,
        )
        # Says that the objectives were read: a service that sends no such mark (a Katib
        # image) optimises the first one only, and tuner's controller refuses to use it.
        context.set_trailing_metadata(((OBJECTIVES_METADATA, str(count)),))
        return api_pb2.ValidateAlgorithmSettingsReply()
