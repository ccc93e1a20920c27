"""The SQL store, source of truth for the controller: experiments, trials, observations.

`Store.open()` gives a SQLite file `tuner.db` in the working directory; a URL selects
PostgreSQL (`postgresql://`, psycopg 3) or MySQL/MariaDB (`mysql://`, PyMySQL). The schema
is migrated by Alembic on open.
"""

from __future__ import annotations

from ._domain import (
    ExperimentRecord,
    ExperimentStatus,
    MetricSummary,
    Observation,
    ObservationDrop,
    TrialRecord,
    TrialStatus,
    pareto_front,
)
from ._errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    LeaseLostError,
    StoreError,
    TrialExistsError,
    TrialNotFoundError,
)
from ._store import Store

__all__ = [
    "ExperimentExistsError",
    "ExperimentNotFoundError",
    "ExperimentRecord",
    "ExperimentStatus",
    "LeaseLostError",
    "MetricSummary",
    "Observation",
    "ObservationDrop",
    "Store",
    "StoreError",
    "TrialExistsError",
    "TrialNotFoundError",
    "TrialRecord",
    "TrialStatus",
    "pareto_front",
]
