"""Database URLs and engines: the default SQLite file, driver mapping, SQLite pragmas, BEGIN."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from tuner.redact import mask_urls

from ._errors import StoreError

DEFAULT_SQLITE_FILE = "tuner.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A controller frozen inside a transaction (SIGSTOP, a paused VM) must not hold row locks
# forever: PostgreSQL ends a transaction left idle this long, so a live replica can take
# its experiments over. Kept when the server or the URL already sets a timeout.
POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000

WRITE_OPTIONS: dict[str, Any] = {"tuner_sqlite_begin": "IMMEDIATE"}
"""Execution options of a connection that will write.

On SQLite the write lock is taken at BEGIN: a deferred transaction that reads and then
writes fails at once with SQLITE_BUSY when another writer committed in between, whereas
BEGIN IMMEDIATE waits for the lock under busy_timeout. Other databases ignore the option.
"""

# Plain scheme -> the driver the `postgres` and `mysql` extras install.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def resolve_url(url: str | None = None, path: str | os.PathLike[str] | None = None) -> URL:
    """The SQLAlchemy URL for `Store.open`'s arguments.

    Nothing given: `tuner.db` in the working directory. A string without `://` is a file
    path. `postgresql://`, `postgres://`, `mysql://` and `mariadb://` get the drivers that
    tuner's extras install (psycopg 3, PyMySQL).
    """
    if url is not None and path is not None:
        raise ValueError("Store.open: give url or path, not both")
    if url is None or "://" not in url:
        file = Path(path if path is not None else (url or DEFAULT_SQLITE_FILE))
        # Absolute, so a later chdir of the process cannot move the database.
        return URL.create("sqlite", database=str(file.expanduser().resolve()))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        # ValueError: a port that is not a number.
        raise StoreError(mask_urls(f"database URL {url!r} is not valid: {e}")) from e
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    """True for `sqlite://` and `sqlite:///:memory:`, which live in one process only."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: URL) -> Engine:
    """An engine configured for the store's backend; no connection is made yet."""
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {
        # Refuse NaN/inf in JSON: PostgreSQL and MySQL reject it, SQLite would store
        # text that other JSON readers cannot parse. One encoder for every value (what
        # json.dumps(..., allow_nan=False) builds anew per call: ~5 values per trial).
        "json_serializer": json.JSONEncoder(allow_nan=False).encode,
    }
    if backend == "sqlite":
        if is_memory_sqlite(url):
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        kwargs["pool_pre_ping"] = True  # a long-lived controller outlives server connections
    if backend in ("mysql", "mariadb"):
        # InnoDB's default REPEATABLE READ would pin a snapshot per transaction; the
        # controller wants each statement to see the latest commits, as on PostgreSQL.
        kwargs["isolation_level"] = "READ COMMITTED"
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as e:
        extra = _EXTRAS.get(backend)
        hint = f"; install it with: pip install 'tuner[{extra}]'" if extra else ""
        raise StoreError(f"database driver for {url.drivername!r} is not installed{hint}") from e
    except ArgumentError as e:
        raise StoreError(f"database URL {url.render_as_string()!r} is not usable: {e}") from e
    if backend == "sqlite":
        _configure_sqlite(engine, memory=is_memory_sqlite(url))
    elif backend == "postgresql":
        _configure_postgresql(engine)
    return engine


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            if str(cursor.fetchone()[0]) == "0":
                cursor.execute(
                    "SET idle_in_transaction_session_timeout = "
                    f"{POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS}"
                )
        finally:
            cursor.close()
        # The driver opened a transaction for SHOW; a SET rolled back with it would be lost.
        dbapi_connection.commit()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting), waiting for other openers.

    Changing the journal mode needs an exclusive lock, and SQLite reports SQLITE_BUSY for it
    at once instead of calling the busy handler, so processes that open a fresh file
    together would fail; retry within the busy timeout instead. A file already in WAL mode
    needs no lock at all.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    give_up = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= give_up:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


_SQLITE_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE")}


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN skips SELECT and DDL; we emit BEGIN ourselves
        # (SQLAlchemy's documented recipe), so reads and migrations are transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                # WAL lets the CLI read while the controller writes; NORMAL sync is
                # durable across application crashes, which is what WAL needs.
                _enable_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("tuner_sqlite_begin", "DEFERRED")
        begin = _SQLITE_BEGIN.get(mode)
        if begin is None:
            raise ValueError(f"tuner_sqlite_begin: {mode!r} is not DEFERRED or IMMEDIATE")
        # Straight to the driver: two of these per trial on the controller's hot path, and
        # SQLAlchemy's statement execution (events, cursor, result) costs more than BEGIN.
        # Its errors are wrapped as SQLAlchemy wraps a statement's (SQLITE_BUSY past
        # busy_timeout: OperationalError), which it does not do for a begin event's.
        try:
            connection.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.Error as e:
            raise DBAPIError.instance(begin, None, e, sqlite3.Error) from e
