"""Store fixtures: SQLite always; PostgreSQL and MySQL/MariaDB when their URLs are set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from support.databases import server_url

from tuner.store import ExperimentRecord, Store
from tuner.store._engine import resolve_url
from tuner.store._schema import VERSION_TABLE

# Children first, so foreign keys never block a drop.
_TABLES = ("observations", "trials", "experiments", VERSION_TABLE)


def _on_server(url: str, statements: list[str]) -> None:
    engine = create_engine(resolve_url(url))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _drop_store_tables(url: str) -> None:
    _on_server(url, [f"DROP TABLE IF EXISTS {table}" for table in _TABLES])


@pytest.fixture(scope="session")
def _servers_used() -> Iterator[set[str]]:
    used: set[str] = set()
    yield used
    # Leave nothing behind for the next run (or anything else using the database).
    for url in used:
        _drop_store_tables(url)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def backend_url(
    request: pytest.FixtureRequest, tmp_path: Path, _servers_used: set[str]
) -> Iterator[str]:
    """The database URL of one backend: a new SQLite file, or this test process's database on
    a configured server (support.databases)."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    url = server_url(backend)
    _servers_used.add(url)
    yield url


@pytest.fixture
def db_url(backend_url: str) -> Iterator[str]:
    """A database without any of the store's tables (server ones wiped: each test process has
    its database to itself)."""
    server = not backend_url.startswith("sqlite")
    if server:
        _drop_store_tables(backend_url)
    yield backend_url
    if server:  # whatever schema the test left (even a future revision) is gone
        _drop_store_tables(backend_url)


@pytest.fixture
def store(backend_url: str) -> Iterator[Store]:
    """An open store on an empty, migrated database."""
    with Store.open(backend_url) as opened:
        if not backend_url.startswith("sqlite"):
            # Emptying the tables is much faster than recreating them on a server.
            _on_server(backend_url, [f"DELETE FROM {table}" for table in _TABLES[:3]])
        yield opened


class Build:
    """Small builders of store test data (a fixture, as tests cannot import conftest)."""

    @staticmethod
    def spec(goal: str = "minimize", **extra: Any) -> dict[str, Any]:
        """A small Katib-style experiment spec."""
        return {
            "objective": {"type": goal, "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "maxTrialCount": 4,
            **extra,
        }

    def experiment(
        self, store: Store, name: str = "exp", goal: str = "minimize"
    ) -> ExperimentRecord:
        return store.create_experiment(name, "default", self.spec(goal))

    def trials(self, store: Store, experiment: str, *names: str) -> None:
        store.create_trials(experiment, [(n, {"lr": f"0.{i + 1}"}) for i, n in enumerate(names)])


@pytest.fixture
def build() -> Build:
    return Build()
