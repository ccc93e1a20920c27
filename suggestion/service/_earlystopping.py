"""The api.v1.beta1.EarlyStopping servicer (medianstop), and where its metric logs come from.

As in Katib, ``GetEarlyStoppingRulesRequest.db_manager_address`` (``host:port``) names a
DBManager service; the objective's log of each succeeded trial is read from it with
``GetObservationLog(trial_name, metric_name)``. A succeeded trial's log never changes, so it
is cached per experiment (bounded LRU); a restarted server simply reads it again. When the
address is empty, each succeeded trial counts with a one-value history: the objective
value in its ``status.observation`` (an approximation for clients without a DBManager).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import grpc

from suggestion import earlystopping
from suggestion.service import _convert
from suggestion.service._errors import UpstreamError, rpc
from tuner.protos import api_pb2, api_pb2_grpc

DB_TIMEOUT_SECONDS = 30.0


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


def _read_logs(
    address: str,
    metric: str,
    names: Sequence[str],
    credentials: grpc.ChannelCredentials | None = None,
) -> dict[str, list[float]]:
    logs: dict[str, list[float]] = {}
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(address, credentials)
    )
    with channel:
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
    """Computes medianstop rules from the request's trials and the DBManager's logs, read
    over TLS with ``dbmanager_credentials`` if given."""

    def __init__(self, dbmanager_credentials: grpc.ChannelCredentials | None = None) -> None:
        self._histories = _Histories(credentials=dbmanager_credentials)

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
