"""Controller service mode: `tuner controller` drives every submitted experiment of a store,
with leases so that several replicas share one database, and `tuner submit` feeds it.

`ControllerService(store, executor, ServiceSettings(...)).run()` is one replica;
`submit(store, experiments, suggestions, executor)` stores experiments for it.
docs/service.md describes leases, takeover, shutdown and the metrics.
"""

from __future__ import annotations

from tuner.service._driver import DriverOutcome, ExperimentDriver
from tuner.service._errors import AddressError, ServiceError, SubmitError
from tuner.service._http import DEFAULT_ADDRESS, MetricsServer, parse_address
from tuner.service._leases import LeaseKeeper, take_lease
from tuner.service._metrics import ServiceMetrics, StoreSnapshot
from tuner.service._service import ControllerService, Health, ServiceSettings
from tuner.service._submit import Checked, Submission, apply, check, describe_problem, submit
from tuner.service._workers import ExperimentLag, PoolStats, WorkerPool

__all__ = [
    "DEFAULT_ADDRESS",
    "AddressError",
    "Checked",
    "ControllerService",
    "DriverOutcome",
    "ExperimentLag",
    "ExperimentDriver",
    "Health",
    "LeaseKeeper",
    "MetricsServer",
    "PoolStats",
    "ServiceError",
    "ServiceMetrics",
    "ServiceSettings",
    "StoreSnapshot",
    "SubmitError",
    "Submission",
    "WorkerPool",
    "apply",
    "check",
    "describe_problem",
    "parse_address",
    "submit",
    "take_lease",
]
