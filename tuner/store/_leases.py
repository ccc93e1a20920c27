"""Lease methods of `Store`: which controller drives an experiment, for high availability."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ._convert import check_name
from ._models import ExperimentRow
from ._transactions import Transactions, db_now, experiment_row


class LeaseMethods(Transactions):
    """Compare-and-set leases on experiments, timed by the database clock (a mixin of `Store`).

    A controller acquires an experiment's lease before driving it and renews it well within
    the TTL; another controller takes over only once the lease has expired. These methods
    are never fenced (see `Store.fenced`): they compare owners already, and must still work
    (e.g. a release in a `finally`) once the lease is gone.
    """

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the experiment's lease if it is free, expired or already `owner`'s.

        An atomic compare-and-set: of several controllers racing, exactly one gets True.
        The lease then lasts `ttl_seconds` of database time. Raises `ExperimentNotFoundError`.
        """
        check_name("lease owner", owner)
        ttl = _ttl(ttl_seconds)
        with self._write(f"acquiring the lease of experiment {name!r}", fenced=False) as s:
            now = db_now(s)
            free = or_(
                ExperimentRow.lease_owner.is_(None),
                ExperimentRow.lease_owner == owner,
                ExperimentRow.lease_expires_at <= now,
            )
            return _set_lease(s, name, free, owner, now + ttl)

    def renew_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Extend `owner`'s lease to `ttl_seconds` from now; False if another owner holds it.

        A lease that expired but was not taken over yet is still `owner`'s to renew.
        `ttl_seconds=0` ends it at once, leaving it free for takeover.
        """
        check_name("lease owner", owner)
        ttl = _ttl(ttl_seconds)
        with self._write(f"renewing the lease of experiment {name!r}", fenced=False) as s:
            now = db_now(s)
            return _set_lease(s, name, ExperimentRow.lease_owner == owner, owner, now + ttl)

    def release_lease(self, name: str, owner: str) -> bool:
        """Give up `owner`'s lease; False (and nothing changed) if `owner` does not hold it."""
        with self._write(f"releasing the lease of experiment {name!r}", fenced=False) as s:
            return _set_lease(s, name, ExperimentRow.lease_owner == owner, None, None)


def _set_lease(
    s: Session, name: str, condition: Any, owner: str | None, expires: datetime | None
) -> bool:
    result = s.execute(
        update(ExperimentRow)
        .where(ExperimentRow.name == name, condition)
        .values(lease_owner=owner, lease_expires_at=expires),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    experiment_row(s, name)  # raises ExperimentNotFoundError if that is why nothing matched
    return False


def _ttl(ttl_seconds: float) -> timedelta:
    if ttl_seconds < 0:
        raise ValueError(f"ttl_seconds: {ttl_seconds} is negative")
    return timedelta(seconds=ttl_seconds)
