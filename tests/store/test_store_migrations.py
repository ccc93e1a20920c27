"""Schema migrations applied on open, on every configured backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from tuner.store import Store, StoreError
from tuner.store._engine import create_store_engine, resolve_url
from tuner.store._models import Base
from tuner.store._schema import (
    HEAD_REVISION,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
)

# Waits for a line on stdin, so the parent can release all children at the same instant.
_OPEN_WHEN_TOLD = """
import sys
from tuner.store import Store
print("ready", flush=True)
sys.stdin.readline()
with Store.open(sys.argv[1]) as store:
    print(len(store.list_experiments()), flush=True)
"""

# Opens (creates) a SQLite store and writes to it, then prints the dialects imported.
_OPEN_AND_LIST_DIALECTS = """
import sys
from tuner.store import Store
with Store.open(path=sys.argv[1]) as store:
    store.create_experiment("exp", "default", {}, {})
    store.create_trials("exp", [("exp-1", {})])
prefix = "sqlalchemy.dialects."
print(*sorted({m[len(prefix):].split(".")[0] for m in sys.modules if m.startswith(prefix)}
             - {"_typing"}))
"""

if TYPE_CHECKING:
    from store.conftest import Build


def migrated_with_alembic(url: str) -> Engine:
    """An engine on ``url`` (without tuner's tables), brought to head by the migrations."""
    engine = create_store_engine(resolve_url(url))
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


def schema_of(engine: Engine) -> dict[str, Any]:
    """Each table's columns (by name, whatever their order), keys, indexes and options, and
    the version table's rows, as the database reports them."""
    schema: dict[str, Any] = {}
    with engine.connect() as connection:
        found = inspect(connection)
        for table in found.get_table_names():
            columns = {
                c["name"]: (str(c["type"].compile(engine.dialect)), c["nullable"], c["default"])
                for c in found.get_columns(table)
            }
            foreign = [
                (f["name"], f["constrained_columns"], f["referred_table"], f["options"])
                for f in found.get_foreign_keys(table)
            ]
            schema[table] = {
                "columns": columns,
                "primary key": found.get_pk_constraint(table),
                "unique": sorted(
                    (u["name"], u["column_names"]) for u in found.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"], i["column_names"], i["unique"]) for i in found.get_indexes(table)
                ),
                "foreign keys": sorted(foreign, key=str),
                "options": found.get_table_options(table),
            }
        version = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    schema[VERSION_TABLE]["rows"] = version
    return schema


def test_open_migrates_an_empty_database_to_head(db_url: str) -> None:
    with Store.open(db_url) as store:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            tables = set(inspect(connection).get_table_names())
    assert {"experiments", "trials", "observations", VERSION_TABLE} <= tables


def test_the_known_head_is_the_newest_migration_script() -> None:
    # A database at HEAD_REVISION is opened without Alembic: a new migration must move it.
    assert HEAD_REVISION == head_revision()


def test_reopening_keeps_data_and_revision(db_url: str, build: Build) -> None:
    with Store.open(db_url) as store:
        build.experiment(store)
    with Store.open(db_url) as store:
        assert [e.name for e in store.list_experiments()] == ["exp"]
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert rows == [(head_revision(),)]


def test_migrations_create_exactly_the_models(db_url: str) -> None:
    engine = migrated_with_alembic(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_new_database_gets_the_schema_the_migrations_build(db_url: str) -> None:
    # Store.open creates an empty database's schema from the models, not through Alembic:
    # every table, column, key, index and table option must be what the migrations make.
    engine = migrated_with_alembic(db_url)
    try:
        migrated = schema_of(engine)
        with engine.begin() as connection:
            for table in ("observations", "trials", "experiments", VERSION_TABLE):
                connection.execute(text(f"DROP TABLE {table}"))
    finally:
        engine.dispose()

    with Store.open(db_url) as store:
        created = schema_of(store.engine)

    assert created == migrated
    assert set(created) == {"experiments", "trials", "observations", VERSION_TABLE}


def test_opening_an_empty_database_loads_no_alembic(db_url: str) -> None:
    code = (
        "import sys\nfrom tuner.store import Store\n"
        f"Store.open({db_url!r}).close()\nprint('alembic' in sys.modules)"
    )

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
    with Store.open(db_url) as store, store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_database_from_a_newer_tuner_is_refused(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    with pytest.raises(StoreError, match=r"'9999_future'.*upgrade tuner"):
        Store.open(db_url)


def test_processes_opening_a_fresh_database_at_once_all_succeed(db_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_WHEN_TOLD, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out == "0\n"
    with Store.open(db_url) as store, store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_a_sqlite_store_does_not_import_the_mysql_dialect(tmp_path: Path) -> None:
    # MySQL's types and table options are applied where MySQL is used: importing its
    # dialect cost every SQLite and PostgreSQL run ~10 ms of start-up.
    opened = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_LIST_DIALECTS, str(tmp_path / "tuner.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.split() == ["sqlite"]
