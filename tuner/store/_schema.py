"""Schema migrations on open: Alembic, configured in code, run once under a database lock.

Two processes may open a fresh database at the same moment (a controller and a CLI, two
controllers): the upgrade runs inside a lock held for its whole duration (SQLite's write
lock via BEGIN IMMEDIATE, a PostgreSQL transaction advisory lock, MySQL's GET_LOCK), and the
revision is checked again once the lock is held, so the second process finds the work done.

A database without any of tuner's tables gets the head schema from the models directly
(``create_all``, then the head revision stamped), as Alembic's documentation suggests for
new databases: the same tables, columns, keys, indexes and table options as the migrations
build (tests compare the two on every backend), without importing Alembic, which costs a
few hundred milliseconds of a first `tuner run`. A migration must therefore only change the
schema in ways the models state; one that also writes rows or creates what the models
cannot express has to make this path go through Alembic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from ._engine import WRITE_OPTIONS
from ._errors import StoreError
from ._models import Base, add_mysql_table_options

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "tuner_alembic_version"
"""Alembic's bookkeeping table; named for tuner so a database shared with another
Alembic-managed application keeps both histories apart."""

HEAD_REVISION = "0005_experiment_annotations"
"""The newest packaged migration (tests check it against the scripts): a database already
there is opened without importing Alembic (a few hundred milliseconds of every start)."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_PG_LOCK_KEY = 0x7475_6E65_7200  # arbitrary constant: "tuner\0" in ASCII
_MYSQL_LOCK_NAME = "tuner.store.migrate"
_MYSQL_LOCK_TIMEOUT_S = 300


def alembic_config() -> Config:
    """An Alembic config for the packaged migrations; no alembic.ini is read."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision this version of tuner knows, from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head revision"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, None when it has no tuner tables yet."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the head revision; a no-op (read only) when it is there."""
    with engine.connect() as connection:
        if _stored_revision(connection) == HEAD_REVISION:
            return
    if _create_if_empty(engine):
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    with engine.connect() as connection:
        # Checked without any lock first, so readers of an up-to-date database never
        # wait for (or block) a writer.
        if _checked_revision(script, current_revision(connection)) == head:
            return
    try:
        with _migration_lock(engine) as connection:
            if _checked_revision(script, current_revision(connection)) != head:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    except (CommandError, RevisionError) as e:
        raise StoreError(f"database schema migration failed: {e}") from e


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that holds the migration lock (committed when the
    block ends, rolled back if it raises)."""
    with engine.connect() as connection:
        connection.execution_options(**WRITE_OPTIONS)
        dialect = connection.dialect.name
        if dialect in ("mysql", "mariadb"):
            _mysql_get_lock(connection)
        try:
            with connection.begin():
                if dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                    )
                yield connection
        finally:
            if dialect in ("mysql", "mariadb"):
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _MYSQL_LOCK_NAME})
                connection.commit()


def _create_if_empty(engine: Engine) -> bool:
    """Create the head schema if the database has none of tuner's tables (checked without a
    lock first, so that an existing database is never locked here); whether it did."""
    with engine.connect() as connection:
        if not _has_no_tuner_tables(connection):
            return False
    with _migration_lock(engine) as connection:
        if not _has_no_tuner_tables(connection):
            return False  # another process was first; Alembic's path finds its work
        if connection.dialect.name in ("mysql", "mariadb"):
            add_mysql_table_options()
        Base.metadata.create_all(connection)
        version = _version_table()
        version.create(connection)
        connection.execute(version.insert().values(version_num=HEAD_REVISION))
    return True


def _has_no_tuner_tables(connection: Connection) -> bool:
    ours = {*Base.metadata.tables, VERSION_TABLE}
    return not ours & set(inspect(connection).get_table_names())


def _version_table() -> Table:
    """Alembic's version table as Alembic creates it (``MigrationContext``), under our name."""
    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def _stored_revision(connection: Connection) -> str | None:
    """The revision in the version table, read with a plain query; None if there is none
    or it cannot be read (no table yet): then Alembic decides."""
    try:
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _checked_revision(script: ScriptDirectory, revision: str | None) -> str | None:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    if revision is not None:
        try:
            script.get_revision(revision)
        except (CommandError, RevisionError) as e:
            raise StoreError(
                f"database schema is at revision {revision!r}, which this version of tuner"
                f" does not know (newest known: {script.get_current_head()!r}); a newer tuner"
                " wrote it, so upgrade tuner"
            ) from e
    return revision


def _mysql_get_lock(connection: Connection) -> None:
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": _MYSQL_LOCK_NAME, "timeout": _MYSQL_LOCK_TIMEOUT_S},
    ).scalar()
    # GET_LOCK is held by the session, not the transaction: end this one so the
    # migration's own transaction starts fresh (and sees the latest commits).
    connection.commit()
    if got != 1:
        raise StoreError(
            f"timed out after {_MYSQL_LOCK_TIMEOUT_S}s waiting for lock {_MYSQL_LOCK_NAME!r}"
            " held by another process migrating the database",
            retryable=True,
        )
