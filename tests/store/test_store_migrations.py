"""Schema migrations applied on open, on every configured backend."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tuner.store import Store, StoreError
from tuner.store._models import Base
from tuner.store._schema import HEAD_REVISION, VERSION_TABLE, current_revision, head_revision

# Waits for a line on stdin, so the parent can release all children at the same instant.
_OPEN_WHEN_TOLD = """
import sys
from tuner.store import Store
print("ready", flush=True)
sys.stdin.readline()
with Store.open(sys.argv[1]) as store:
    print(len(store.list_experiments()), flush=True)
"""

if TYPE_CHECKING:
    from store.conftest import Build


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


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


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
