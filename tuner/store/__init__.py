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
    TrialRecord,
    TrialStatus,
)
from ._errors import (
    ExperimentExists,
    ExperimentNotFound,
    StoreError,
    TrialExists,
    TrialNotFound,
)
from ._store import Store

__all__ = [
    "ExperimentExists",
    "ExperimentNotFound",
    "ExperimentRecord",
    "ExperimentStatus",
    "MetricSummary",
    "Observation",
    "Store",
    "StoreError",
    "TrialExists",
    "TrialNotFound",
    "TrialRecord",
    "TrialStatus",
]
