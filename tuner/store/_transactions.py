"""Transactions of the store: read and write sessions, row lookups, database time, error mapping."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, bindparam, select, text
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.util import identity_key

from ._domain import utc_now
from ._engine import WRITE_OPTIONS
from ._errors import ExperimentNotFoundError, LeaseLostError, StoreError, TrialNotFoundError
from ._models import ExperimentRow, TrialRow

_RETRYABLE = (OperationalError, DisconnectionError, PoolTimeoutError)
# In the session of a `Transactions.transaction`: trial name -> (its row, its experiment's
# row, whether they were read locked), see `trial_row`.
_BATCH_ROWS = "tuner_batch_trial_rows"
# In the same session: trial name -> (trial id, experiment id), see `trial_ids`.
_BATCH_IDS = "tuner_batch_trial_ids"
# In the session of a write transaction: its connection, see `connection`.
_CONNECTION = "tuner_connection"

# Statements of the hot paths, built once (building one costs more than running it).
_LEASE_HOLDER = (
    select(ExperimentRow.lease_owner)
    .where(ExperimentRow.name == bindparam("name"))
    .with_for_update()
)
_TRIAL_IDS = select(TrialRow.id, TrialRow.experiment_id).where(TrialRow.name == bindparam("name"))


@dataclass(frozen=True)
class Fence:
    """Writes are allowed only while `owner` holds the lease of `experiment`."""

    experiment: str
    owner: str

    def check(self, session: Session, what: str) -> None:
        """Lock the experiment row and raise unless `owner` still holds its lease."""
        row = connection(session).execute(_LEASE_HOLDER, {"name": self.experiment}).one_or_none()
        if row is None:
            raise ExperimentNotFoundError(self.experiment)
        holder = row[0]
        if holder != self.owner:
            raise LeaseLostError(
                f"{what} refused: experiment {self.experiment!r} is leased to "
                f"{holder or 'nobody'}, no longer to {self.owner}"
            )


class _Batch(threading.local):
    """The transaction `Transactions.transaction` holds open in this thread, if any."""

    session: Session | None = None
    fence_checked = False


class Transactions:
    """Base of `Store`: one session and transaction per public call, errors translated;
    or, inside `transaction`, one for all the calls of the block.

    With a `fence`, every write transaction first checks it (see `Store.fenced`), except
    those that pass ``fenced=False`` (the lease methods, which compare owners themselves).
    """

    def __init__(self, engine: Engine, fence: Fence | None = None) -> None:
        self._engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._fence = fence
        self._batch = _Batch()

    @contextmanager
    def transaction(self, what: str = "a batch of changes") -> Iterator[None]:
        """Make every call of this store in the block, from this thread, one write
        transaction: committed when the block ends, rolled back (nothing of it stored) if
        it raises. Other threads' calls keep their own transactions. Nested blocks join
        the outer one. A caller that needs a change stored before it acts on the world (a
        trial's row before its launch) must leave the block first.

        On SQLite the block holds the database's write lock from its start (BEGIN
        IMMEDIATE): keep it short, with no waiting inside (see `commit_so_far`).
        """
        if self._batch.session is not None:
            yield
            return
        try:
            with self._sessions() as session:
                self._begin_batch(session)
                try:
                    yield
                    session.commit()
                finally:
                    self._batch.session = None  # closing the session rolls back the rest
        except SQLAlchemyError as e:
            raise translate(e, what) from e

    def commit_so_far(self, what: str = "a batch of changes") -> None:
        """Inside `transaction`: commit what the block has stored so far and go on in a new
        transaction, so that a long piece of work (a trial's huge log read in many
        batches) neither holds the database's write lock nor grows one transaction
        throughout. Outside a block, nothing to do (every call commits)."""
        session = self._batch.session
        if session is None:
            return
        try:
            session.commit()
            self._begin_batch(session)
        except SQLAlchemyError as e:
            raise translate(e, what) from e

    def _begin_batch(self, session: Session) -> None:
        session.begin()
        session.info[_CONNECTION] = session.connection(execution_options=WRITE_OPTIONS)
        session.info[_BATCH_ROWS] = {}
        session.info[_BATCH_IDS] = {}
        self._batch.session, self._batch.fence_checked = session, False

    @contextmanager
    def _read(self, what: str) -> Iterator[Session]:
        if self._batch.session is not None:
            with self._in_batch(what):
                yield self._batch.session
            return
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise translate(e, what) from e

    @contextmanager
    def _in_batch(
        self, what: str, on_conflict: Callable[[], StoreError] | None = None
    ) -> Iterator[None]:
        """A call inside `transaction`: its statements flushed at its end (so that its
        errors are its own), its errors translated; the commit is the block's."""
        session = self._batch.session
        assert session is not None
        try:
            yield
            session.flush()
        except IntegrityError as e:
            if on_conflict is not None:
                raise on_conflict() from e
            raise translate(e, what) from e
        except SQLAlchemyError as e:
            raise translate(e, what) from e

    @contextmanager
    def _write(
        self,
        what: str,
        on_conflict: Callable[[], StoreError] | None = None,
        *,
        fenced: bool = True,
    ) -> Iterator[Session]:
        """A write transaction; `on_conflict` makes the error for a unique-key violation."""
        batch = self._batch
        if batch.session is not None:
            with self._in_batch(what, on_conflict):
                if fenced and self._fence is not None and not batch.fence_checked:
                    # Once per transaction: the experiment row stays locked until it ends.
                    self._fence.check(batch.session, what)
                    batch.fence_checked = True
                yield batch.session
            return
        try:
            with self._sessions() as session, session.begin():
                session.info[_CONNECTION] = session.connection(execution_options=WRITE_OPTIONS)
                if fenced and self._fence is not None:
                    self._fence.check(session, what)
                yield session
        except IntegrityError as e:
            if on_conflict is not None:
                raise on_conflict() from e
            raise translate(e, what) from e
        except SQLAlchemyError as e:
            raise translate(e, what) from e


def connection(s: Session) -> Connection:
    """The connection of the session's transaction: the one a write transaction of
    `Transactions` began with (`Session.connection` walks the session's transaction state
    at every call, and the controller's hot path makes ~9 statements per trial), else the
    session's."""
    found: Connection | None = s.info.get(_CONNECTION)
    return found if found is not None else s.connection()


def experiment_row(s: Session, name: str, *, for_update: bool = False) -> ExperimentRow:
    """The experiment's row, or `ExperimentNotFoundError`."""
    stmt = select(ExperimentRow).where(ExperimentRow.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    row = s.scalars(stmt).one_or_none()
    if row is None:
        raise ExperimentNotFoundError(name)
    return row


def trial_row(s: Session, name: str, *, for_update: bool = False) -> tuple[TrialRow, ExperimentRow]:
    """The trial's row with its experiment's row, or `TrialNotFoundError`.

    Inside `Transactions.transaction` the rows are looked up once per transaction (the
    session's identity map would return the same objects anyway), and again only to lock
    them (`for_update`) where an earlier look-up did not. On SQLite the transaction holds
    the database's write lock from its start, so every look-up in it counts as locked.
    """
    known = s.info.get(_BATCH_ROWS)
    if known is not None and name in known:
        trial, exp, locked = known[name]
        if locked or not for_update:
            return trial, exp
    stmt = select(TrialRow, ExperimentRow).join(ExperimentRow).where(TrialRow.name == name)
    if for_update:
        # Locks the experiment row too: finishing trials of one experiment is serialized,
        # so two finishes cannot both think they beat the same incumbent.
        stmt = stmt.with_for_update()
    found = s.execute(stmt).one_or_none()
    if found is None:
        raise TrialNotFoundError(name)
    if known is not None:
        locked = for_update or s.get_bind().dialect.name == "sqlite"
        known[name] = (found[0], found[1], locked)
    return found[0], found[1]


def trial_ids(s: Session, name: str) -> tuple[int, int]:
    """(id, experiment id) of the trial, or `TrialNotFoundError`: one light Core query,
    remembered for the rest of a `Transactions.transaction` (ids never change).

    Locks nothing: a caller that must serialize with other writers of the trial locks
    its rows itself, or writes through a statement that locks them.
    """
    known = s.info.get(_BATCH_IDS)
    if known is not None:
        found = known.get(name)
        if found is not None:
            return found
    row = connection(s).execute(_TRIAL_IDS, {"name": name}).one_or_none()
    if row is None:
        raise TrialNotFoundError(name)
    ids = (int(row[0]), int(row[1]))
    if known is not None:
        known[name] = ids
    return ids


def remember_trial(s: Session, name: str, trial_id: int, experiment_id: int) -> None:
    """Within a `Transactions.transaction`: the ids of a trial a call read anyway, for
    `trial_ids` to answer later calls of the transaction without a query."""
    known = s.info.get(_BATCH_IDS)
    if known is not None:
        known[name] = (trial_id, experiment_id)


def forget_trials(s: Session) -> None:
    """Drop what `trial_ids` and `trial_row` remember in this transaction (trials were
    deleted in it)."""
    for key in (_BATCH_IDS, _BATCH_ROWS):
        known = s.info.get(key)
        if known is not None:
            known.clear()


def expire_cached(s: Session, entity: type[TrialRow] | type[ExperimentRow], id_: int) -> None:
    """After a Core UPDATE of the row `id_`: expire the session's ORM object of that row,
    if it holds one (an earlier call of the same transaction loaded it), so that it is
    read again rather than served stale."""
    obj = s.identity_map.get(identity_key(entity, id_))
    if obj is not None:
        s.expire(obj)


def db_now(s: Session) -> datetime:
    """The database's current UTC time (this process's clock for SQLite, a local file)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        value = s.scalar(text("SELECT statement_timestamp()"))
    elif dialect in ("mysql", "mariadb"):
        value = s.scalar(text("SELECT UTC_TIMESTAMP(6)"))
    else:
        return utc_now()
    assert isinstance(value, datetime)
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def translate(e: SQLAlchemyError, what: str) -> StoreError:
    """A `StoreError` saying what failed and why, retryable for lock and connection errors."""
    cause = getattr(e, "orig", None) or e
    return StoreError(f"{what} failed: {cause}", retryable=isinstance(e, _RETRYABLE))
