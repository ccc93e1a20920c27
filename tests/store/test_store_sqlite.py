"""SQLite specifics: file location, pragmas, one writer beside readers in other processes; URLs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from tuner.store import ExperimentNotFoundError, Store, StoreError, _engine
from tuner.store._engine import SQLITE_BUSY_TIMEOUT_MS, resolve_url

_READ_NAMES = """
import json, sys
from tuner.store import Store
with Store.open(path=sys.argv[1]) as store:
    print(json.dumps([[e.name, e.message] for e in store.list_experiments()]))
"""

if TYPE_CHECKING:
    from store.conftest import Build


def test_default_database_is_tuner_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Build
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open() as store:
        build.experiment(store)
        assert str(tmp_path / "tuner.db") in store.url
    assert (tmp_path / "tuner.db").is_file()


def test_a_bare_path_or_path_argument_opens_that_file(tmp_path: Path, build: Build) -> None:
    with Store.open(str(tmp_path / "a.db")) as store:
        build.experiment(store)
    with Store.open(path=tmp_path / "a.db") as store:
        assert [e.name for e in store.list_experiments()] == ["exp"]
    with pytest.raises(ValueError, match="not both"):
        Store.open("sqlite:///x.db", path=tmp_path / "a.db")


def test_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    with Store.open(path=tmp_path / "tuner.db") as store, store.engine.connect() as connection:

        def pragma(name: str) -> object:
            return connection.execute(text(f"PRAGMA {name}")).scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 1  # NORMAL


def test_reader_process_sees_committed_data_while_a_writer_holds_the_lock(
    tmp_path: Path, build: Build
) -> None:
    path = tmp_path / "tuner.db"
    with Store.open(path=path) as store:
        build.experiment(store, "committed")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE experiments SET message = 'uncommitted'")
        # Opening an up-to-date store must not need the write lock, or this would wait.
        reader = subprocess.run(
            [sys.executable, "-c", _READ_NAMES, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        writer.rollback()
        writer.close()
    assert reader.returncode == 0, reader.stderr
    assert json.loads(reader.stdout) == [["committed", None]]


def test_a_write_that_cannot_get_the_lock_is_a_retryable_store_error(
    tmp_path: Path, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write's BEGIN IMMEDIATE waits busy_timeout for another process's write lock, then
    # fails; the store says so as it does for any statement, and the next write succeeds.
    monkeypatch.setattr(_engine, "SQLITE_BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "tuner.db"
    with Store.open(path=path) as store:
        build.experiment(store)
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="database is locked") as raised:
                store.create_trials("exp", [("exp-1", {})])
            assert raised.value.retryable
        finally:
            writer.rollback()
            writer.close()
        store.create_trials("exp", [("exp-1", {})])
        assert [t.name for t in store.list_trials("exp")] == ["exp-1"]


def test_writer_commits_while_a_reader_holds_a_snapshot(tmp_path: Path, build: Build) -> None:
    path = tmp_path / "tuner.db"
    with Store.open(path=path) as store:
        build.experiment(store, "first")
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            count = "SELECT count(*) FROM experiments"
            assert reader.execute(count).fetchone() == (1,)
            # Without WAL this commit would wait for the reader (then fail on busy_timeout).
            build.experiment(store, "second")
            assert reader.execute(count).fetchone() == (1,)
            reader.execute("COMMIT")
            assert reader.execute(count).fetchone() == (2,)
        finally:
            reader.close()


def test_in_memory_database_works_within_one_store(build: Build) -> None:
    with Store.open("sqlite://") as store:
        build.experiment(store)
        assert store.get_experiment("exp").name == "exp"
    with Store.open("sqlite://") as store, pytest.raises(ExperimentNotFoundError):
        store.get_experiment("exp")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@db/tuner", "postgresql+psycopg"),
        ("postgres://u@db/tuner", "postgresql+psycopg"),
        ("mysql://u@db/tuner", "mysql+pymysql"),
        ("mariadb://u@db/tuner", "mariadb+pymysql"),
        ("postgresql+psycopg2://u@db/tuner", "postgresql+psycopg2"),
    ],
)
def test_plain_server_urls_get_the_installed_drivers(given: str, driver: str) -> None:
    url = resolve_url(given)
    assert url.drivername == driver
    assert (url.host, url.database) == ("db", "tuner")
    if driver.endswith("pymysql"):
        assert url.query["charset"] == "utf8mb4"
