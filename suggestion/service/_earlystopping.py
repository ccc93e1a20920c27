"""The api.v1.beta1.EarlyStopping servicer (medianstop, asha), and where its metric logs
come from.

As in Katib, ``GetEarlyStoppingRulesRequest.db_manager_address`` (``host:port``) names a
DBManager service; the objective's log of each succeeded trial is read from it with
``GetObservationLog(trial_name, metric_name)``. A succeeded trial's log never changes, so it
is cached per experiment (bounded LRU); a restarted server simply reads it again. When the
address is empty, each succeeded trial counts with a one-value history: the objective
value in its ``status.observation`` (an approximation for clients without a DBManager).

A per-trial algorithm (asha) reads every trial's log, running ones included (only finished
trials' logs are cached), with each report's step: tuner's DBManager sends the steps in the
trailing metadata ``tuner-steps`` when the request carries ``tuner-with-steps: true``. Its
answer is a tuner extension in the reply's trailing metadata (Katib's messages have no
place for it): ``tuner-stop-trials``, a JSON object trial name -> why, for the running trials
to stop now, and ``tuner-early-stopping-live: true``, which asks the client to call again
whenever a running trial reports (not only when a trial ends).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

import grpc

from suggestion import earlystopping
from suggestion.service import _convert
from suggestion.service._errors import UpstreamError, rpc
from tuner.protos import api_pb2, api_pb2_grpc

DB_TIMEOUT_SECONDS = 30.0

WITH_STEPS_METADATA = ("tuner-with-steps", "true")
"""Request metadata asking tuner's DBManager for each metric log's step."""
STEPS_METADATA_KEY = "tuner-steps"
"""Trailing metadata of GetObservationLog: the logs' steps, comma-separated, in order."""
STOP_TRIALS_METADATA_KEY = "tuner-stop-trials"
"""Trailing metadata of GetEarlyStoppingRules: JSON object, running trial -> why to stop it."""
LIVE_METADATA = ("tuner-early-stopping-live", "true")
"""Trailing metadata of GetEarlyStoppingRules: ask again whenever a running trial reports."""

_FINISHED = {
    api_pb2.TrialStatus.SUCCEEDED,
    api_pb2.TrialStatus.KILLED,
    api_pb2.TrialStatus.FAILED,
    api_pb2.TrialStatus.METRICSUNAVAILABLE,
    api_pb2.TrialStatus.EARLYSTOPPED,
}


class _Histories:
    """Succeeded trials' objective logs, cached per (experiment, address, metric)."""

    def __init__(
        self, max_experiments: int = 256, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.max_experiments = max_experiments
        self.credentials = credentials
        self._cache: OrderedDict[tuple[str, str, str], dict[str, list[float]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, experiment: str, address: str, metric: str, trials: Sequence[api_pb2.Trial]
    ) -> dict[str, list[float]]:
        key = (experiment, address, metric)
        with self._lock:
            known = dict(self._cache.get(key, {}))
        missing = [t for t in trials if t.name not in known]
        if missing and address:
            known.update(_read_logs(address, metric, [t.name for t in missing], self.credentials))
        elif missing:
            for i, t in enumerate(missing):
                value = _convert.objective_value(t, metric, f"trials[{i}] ({t.name})")
                known[t.name] = [] if value is None else [value]
        with self._lock:
            self._cache[key] = known
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_experiments:
                self._cache.popitem(last=False)
        return {t.name: known[t.name] for t in trials}


def _dbmanager_channel(
    address: str, credentials: grpc.ChannelCredentials | None = None
) -> grpc.Channel:
    # Steps of long logs travel in the trailing metadata: allow more than gRPC's 8 KB.
    options = [("grpc.max_metadata_size", 16 << 20)]
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


class _Curves:
    """Every trial's objective reports with steps; finished trials' cached per (experiment,
    address, metric), running trials' read again at every call."""

    def __init__(
        self, max_experiments: int = 256, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.max_experiments = max_experiments
        self.credentials = credentials
        self._cache: OrderedDict[tuple[str, str, str], dict[str, list[earlystopping.Report]]]
        self._cache = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, experiment: str, address: str, metric: str, trials: Sequence[api_pb2.Trial]
    ) -> dict[str, list[earlystopping.Report]]:
        if not address:
            raise _convert.RequestError(
                "db_manager_address: empty; a per-trial early-stopping algorithm (asha) reads"
                " every trial's reports from a DBManager: give its host:port"
            )
        key = (experiment, address, metric)
        with self._lock:
            known = dict(self._cache.get(key, {}))
        missing = [t.name for t in trials if t.name not in known]
        curves = dict(known)
        curves.update(_read_curves(address, metric, missing, self.credentials))
        finished = {t.name for t in trials if t.status.condition in _FINISHED}
        with self._lock:
            cached = self._cache.setdefault(key, {})
            cached.update({n: c for n, c in curves.items() if n in finished})
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_experiments:
                self._cache.popitem(last=False)
        return {t.name: curves[t.name] for t in trials}


def _read_curves(
    address: str,
    metric: str,
    names: Sequence[str],
    credentials: grpc.ChannelCredentials | None = None,
) -> dict[str, list[earlystopping.Report]]:
    curves: dict[str, list[earlystopping.Report]] = {}
    if not names:
        return curves
    with _dbmanager_channel(address, credentials) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        for name in names:
            try:
                reply, call = stub.GetObservationLog.with_call(
                    api_pb2.GetObservationLogRequest(trial_name=name, metric_name=metric),
                    timeout=DB_TIMEOUT_SECONDS,
                    metadata=(WITH_STEPS_METADATA,),
                )
            except grpc.RpcError as e:
                raise UpstreamError(
                    f"reading the {metric!r} log of trial {name!r} from the DBManager at"
                    f" {address}: {e.code().name}: {e.details()}"
                ) from e
            steps = None
            for k, v in call.trailing_metadata() or ():
                if k == STEPS_METADATA_KEY:
                    steps = v.split(",") if v else []
            curves[name] = _convert.metric_reports(reply, metric, steps)
    return curves


def _read_logs(
    address: str,
    metric: str,
    names: Sequence[str],
    credentials: grpc.ChannelCredentials | None = None,
) -> dict[str, list[float]]:
    logs: dict[str, list[float]] = {}
    with _dbmanager_channel(address, credentials) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        for name in names:
            try:
                reply = stub.GetObservationLog(
                    api_pb2.GetObservationLogRequest(trial_name=name, metric_name=metric),
                    timeout=DB_TIMEOUT_SECONDS,
                )
            except grpc.RpcError as e:
                raise UpstreamError(
                    f"reading the {metric!r} log of trial {name!r} from the DBManager at"
                    f" {address}: {e.code().name}: {e.details()}"
                ) from e
            logs[name] = _convert.metric_values(reply, metric)
    return logs


class EarlyStoppingServicer(api_pb2_grpc.EarlyStoppingServicer):
    """Computes early-stopping rules (medianstop) or per-trial stops (asha) from the request's
    trials and the DBManager's logs, read over TLS with ``dbmanager_credentials`` if given."""

    def __init__(self, dbmanager_credentials: grpc.ChannelCredentials | None = None) -> None:
        self._histories = _Histories(credentials=dbmanager_credentials)
        self._curves = _Curves(credentials=dbmanager_credentials)

    @rpc()
    def GetEarlyStoppingRules(
        self, request: api_pb2.GetEarlyStoppingRulesRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetEarlyStoppingRulesReply:
        experiment = request.experiment
        name, raw = _convert.early_stopping(experiment.spec.early_stopping)
        algorithm = earlystopping.get(name)
        settings = algorithm.parse(raw)
        metric = _convert.objective_metric(experiment)
        goal = _convert.goal(experiment)
        if algorithm.per_trial:
            curves = self._curves.get(
                experiment.name, request.db_manager_address, metric, request.trials
            )
            stops = algorithm.stops(settings, goal, curves, set(_convert.running(request.trials)))
            context.set_trailing_metadata(
                (LIVE_METADATA, (STOP_TRIALS_METADATA_KEY, json.dumps(stops, sort_keys=True)))
            )
            return _convert.rules_reply(algorithm.rules(settings, goal, metric, {}))
        histories = self._histories.get(
            experiment.name,
            request.db_manager_address,
            metric,
            _convert.succeeded(request.trials),
        )
        return _convert.rules_reply(algorithm.rules(settings, goal, metric, histories))

    @rpc(unknown_algorithm=grpc.StatusCode.INVALID_ARGUMENT)
    def ValidateEarlyStoppingSettings(
        self,
        request: api_pb2.ValidateEarlyStoppingSettingsRequest,
        context: grpc.ServicerContext,
    ) -> api_pb2.ValidateEarlyStoppingSettingsReply:
        name, raw = _convert.early_stopping(request.early_stopping)
        earlystopping.get(name).parse(raw)
        return api_pb2.ValidateEarlyStoppingSettingsReply()

    @rpc()
    def SetTrialStatus(
        self, request: api_pb2.SetTrialStatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.SetTrialStatusReply:
        # Katib's medianstop patches the Trial resource to EarlyStopped here through the
        # Kubernetes API. In tuner the controller owns trial state and records the early stop
        # itself when it applies a rule, so the call is only acknowledged.
        return api_pb2.SetTrialStatusReply()
