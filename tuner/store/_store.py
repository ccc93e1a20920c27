"""`Store`: the controller's source of truth, one SQL transaction per method call.

Its methods come from mixins, one module each: `_experiments`, `_trial_reads`,
`_trial_writes`, `_observations` and `_leases`; here are opening, closing and fencing.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from . import _schema
from ._engine import create_store_engine, resolve_url
from ._experiments import ExperimentMethods
from ._leases import LeaseMethods
from ._observations import ObservationMethods
from ._transactions import Fence, translate
from ._trial_reads import TrialReadMethods
from ._trial_writes import TrialWriteMethods


class Store(
    ExperimentMethods, TrialReadMethods, TrialWriteMethods, LeaseMethods, ObservationMethods
):
    """Experiments, trials and observations in SQLite, PostgreSQL or MySQL/MariaDB.

    Open with `Store.open(...)`, which applies pending schema migrations. Every method is
    one transaction: it commits entirely or not at all. A `Store` may be shared by threads;
    several processes may open the same database (on SQLite: one writer at a time, any
    number of readers, thanks to WAL). Records returned are detached snapshots.

    Clock: every timestamp the store sets itself (created_at, updated_at, default
    started_at/completed_at, lease expiry) is the database server's clock, read once per
    transaction, so controllers on several hosts compare leases on one clock. SQLite is a
    local file, so there it is this process's clock. Timestamps passed in are kept as given.

    Raises `StoreError` (or a subclass) for database failures, with `retryable` set when a
    retry may succeed; `ValueError`/`TypeError` for malformed arguments.
    """

    def __init__(self, engine: Engine, *, _fence: Fence | None = None) -> None:
        """Wrap an engine whose schema is at head; prefer `Store.open`."""
        super().__init__(engine, _fence)

    def fenced(self, experiment: str, owner: str) -> Store:
        """This store as seen by the controller driving `experiment` for lease `owner`.

        A lease alone cannot stop a replica that was paused (SIGSTOP, a VM freeze, a stalled
        network) in the middle of a step: when it wakes up, its next write would land after a
        peer took the experiment over, e.g. marking a trial that the peer already finished as
        Running again. In the returned view every write transaction first locks the
        experiment row and checks that `owner` still holds the lease; otherwise it raises
        `LeaseLostError` (`ExperimentNotFoundError` once the experiment was deleted) and
        writes nothing. Takeover (`acquire_lease`) updates the same row, so the two are
        serialized by the database: a write either commits before the takeover (and the new
        owner sees it) or is refused. The lease methods are not fenced.

        Reads are unchanged. The view shares this store's engine and connection pool;
        closing it does nothing (this store's owner closes the engine).
        """
        return Store(self._engine, _fence=Fence(experiment, owner))

    @classmethod
    def open(cls, url: str | None = None, *, path: str | os.PathLike[str] | None = None) -> Store:
        """Open (creating if needed) the database and migrate it to the current schema.

        `url`: a SQLAlchemy URL (`sqlite:///file.db`, `postgresql://...`, `mysql://...`)
        or a bare file path; `path`: a SQLite file path. Neither: `tuner.db` in the working
        directory.
        """
        engine = create_store_engine(resolve_url(url, path))
        try:
            _schema.upgrade_to_head(engine)
        except SQLAlchemyError as e:
            engine.dispose()
            raise translate(e, f"opening database {_safe_url(engine.url)}") from e
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The underlying engine, for diagnostics and tests; write only through the store."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return _safe_url(self._engine.url)

    def close(self) -> None:
        """Close all pooled connections; the store must not be used afterwards.

        A fenced view (`fenced`) closes nothing: the store it came from owns the engine.
        """
        if self._fence is None:
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)
