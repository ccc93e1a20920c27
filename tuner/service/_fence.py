"""Fencing: a view of the store whose writes succeed only while a given owner holds an
experiment's lease, checked inside each write transaction with the experiment row locked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuner.service._errors import ServiceError
from tuner.store import ExperimentNotFound, Store, StoreError
from tuner.store._models import ExperimentRow


class LeaseLost(ServiceError, StoreError):
    """A write was refused because another controller now holds the experiment's lease.
    Nothing of the transaction was written."""


class FencedStore(Store):
    """The store as seen by the controller driving ``experiment`` for ``owner``.

    A lease alone cannot stop a replica that was paused (SIGSTOP, a VM freeze, a stalled
    network) in the middle of a step: when it wakes up, its next write would land after a
    peer took the experiment over, e.g. marking a trial that the peer already finished as
    Running again. Here every write transaction first locks the experiment row and checks
    that ``owner`` still holds the lease; otherwise it raises `LeaseLost` (`ExperimentNotFound`
    once the experiment was deleted) and writes nothing.
    Takeover (`acquire_lease`) updates the same row, so the two are serialized by the
    database: a write either commits before the takeover (and the new owner sees it) or is
    refused. The lease methods themselves are not fenced (they compare owners already).

    Reads are unchanged. Shares the engine (and connection pool) of the store it wraps;
    closing it does nothing. Thread-safe like `Store`.
    """

    def __init__(self, store: Store, experiment: str, owner: str) -> None:
        super().__init__(store.engine)
        self._store = store
        self.experiment = experiment
        self.owner = owner

    def close(self) -> None:
        """The wrapped store's owner closes it."""

    @contextmanager
    def _write(
        self, what: str, on_conflict: Callable[[], StoreError] | None = None
    ) -> Iterator[Session]:
        with super()._write(what, on_conflict) as session:
            row = session.execute(
                select(ExperimentRow.lease_owner)
                .where(ExperimentRow.name == self.experiment)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise ExperimentNotFound(self.experiment)
            holder = row[0]
            if holder != self.owner:
                raise LeaseLost(
                    f"{what} refused: experiment {self.experiment!r} is leased to "
                    f"{holder or 'nobody'}, no longer to {self.owner}"
                )
            yield session

    # Lease calls go to the unfenced store: they are compare-and-set on the owner already,
    # and must still work (e.g. release in a `finally`) once the lease is gone.

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return self._store.acquire_lease(name, owner, ttl_seconds)

    def renew_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return self._store.renew_lease(name, owner, ttl_seconds)

    def release_lease(self, name: str, owner: str) -> bool:
        return self._store.release_lease(name, owner)
